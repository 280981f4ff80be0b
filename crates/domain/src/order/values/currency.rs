//! [`Currency`]: an ISO 4217 code.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::order::errors::{OrderError, preview};

/// An ISO 4217 currency code such as `EUR`.
///
/// A new order's currency must be on the ISO 4217 list (the `iso_currency` crate's copy of it:
/// `ABC` is refused). A stored event's is only checked for its shape (three ASCII uppercase
/// letters): the list changes (codes are withdrawn), and an event written under an older list must
/// keep loading.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Currency(String);

impl Currency {
    /// Parses the code of a new order: an active ISO 4217 code, nothing else.
    pub fn new(code: &str) -> Result<Self, OrderError> {
        match iso_currency::Currency::from_code(code) {
            Some(_) => Ok(Self(code.to_owned())),
            None => Err(OrderError::InvalidCurrency {
                code: preview(code),
            }),
        }
    }

    /// Reads a stored code: three ASCII uppercase letters, listed or not (see the type's docs).
    pub fn from_stored(code: &str) -> Result<Self, OrderError> {
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(code.to_owned()))
        } else {
            Err(OrderError::InvalidCurrency {
                code: preview(code),
            })
        }
    }

    /// The three-letter code.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// How many decimal places its minor unit has (2 for EUR, 0 for JPY, 3 for KWD); `None` for
    /// codes without one (such as XAU, gold) or no longer on the list.
    pub fn minor_unit_exponent(&self) -> Option<u16> {
        iso_currency::Currency::from_code(&self.0).and_then(|currency| currency.exponent())
    }

    /// Every code [`Currency::new`] accepts, sorted (the API document lists them).
    pub fn all_codes() -> Vec<&'static str> {
        let mut codes: Vec<&'static str> =
            <iso_currency::Currency as iso_currency::IntoEnumIterator>::iter()
                .map(|currency| currency.code())
                .collect();
        codes.sort_unstable();
        codes
    }
}

impl TryFrom<String> for Currency {
    type Error = OrderError;

    fn try_from(code: String) -> Result<Self, Self::Error> {
        Self::from_stored(&code)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
