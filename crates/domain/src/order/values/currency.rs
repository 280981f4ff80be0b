//! [`Currency`]: an ISO 4217 code.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::order::errors::{OrderError, preview};

/// An ISO 4217 currency code such as `EUR`: exactly three ASCII uppercase letters.
///
/// Only the shape is checked, not membership in the ISO list: the list changes, and the payment
/// provider is the authority on which currencies it accepts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Currency(String);

impl Currency {
    /// Parses a code; anything but three ASCII uppercase letters is rejected.
    pub fn new(code: &str) -> Result<Self, OrderError> {
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
}

impl TryFrom<String> for Currency {
    type Error = OrderError;

    fn try_from(code: String) -> Result<Self, Self::Error> {
        Self::new(&code)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
