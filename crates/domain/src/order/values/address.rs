//! [`ShippingAddress`]: where an order goes, and to whom.

use serde::{Deserialize, Serialize};

use super::text::checked_text;
use crate::order::errors::OrderError;
use crate::order::limits::{
    MAX_ADDRESS_LINE_LEN, MAX_CITY_LEN, MAX_POSTAL_CODE_LEN, MAX_RECIPIENT_NAME_LEN,
};

/// A shipping address as a client sends it: raw text, checked by [`ShippingAddress::new`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressInput {
    /// Who receives the parcel.
    pub recipient_name: String,
    /// Street and number.
    pub line1: String,
    /// Flat, floor, company (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    /// Postal code, as the country writes it.
    pub postal_code: String,
    /// City or town.
    pub city: String,
    /// ISO 3166-1 alpha-2 code, e.g. `DE`.
    pub country: String,
}

/// A checked shipping address: every text field trimmed, printable and bounded, and the country
/// an assigned ISO 3166-1 alpha-2 code in capitals. Personal data: events hold it sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "AddressInput", into = "AddressInput")]
pub struct ShippingAddress(AddressInput);

impl ShippingAddress {
    /// Checks `input`; the first field at fault is named in the error.
    pub fn new(input: AddressInput) -> Result<Self, OrderError> {
        let text = |field: &'static str, value: &str, max: usize| {
            checked_text(value, max)
                .map(str::to_owned)
                .map_err(|problem| OrderError::InvalidShippingAddress {
                    field,
                    problem: problem.describe(max),
                })
        };
        let recipient_name = text(
            "recipient_name",
            &input.recipient_name,
            MAX_RECIPIENT_NAME_LEN,
        )?;
        let line1 = text("line1", &input.line1, MAX_ADDRESS_LINE_LEN)?;
        let line2 = match &input.line2 {
            Some(line) if !line.trim().is_empty() => {
                Some(text("line2", line, MAX_ADDRESS_LINE_LEN)?)
            }
            _ => None,
        };
        let postal_code = text("postal_code", &input.postal_code, MAX_POSTAL_CODE_LEN)?;
        let city = text("city", &input.city, MAX_CITY_LEN)?;
        let country = input.country.trim();
        let assigned = country.len() == 2
            && country.chars().all(|c| c.is_ascii_uppercase())
            && isocountry::CountryCode::for_alpha2(country).is_ok();
        if !assigned {
            return Err(OrderError::InvalidShippingAddress {
                field: "country",
                problem: "must be an ISO 3166-1 alpha-2 code in capitals, such as DE or FR"
                    .to_owned(),
            });
        }
        Ok(Self(AddressInput {
            recipient_name,
            line1,
            line2,
            postal_code,
            city,
            country: country.to_owned(),
        }))
    }

    /// Every code [`ShippingAddress::new`] accepts as a country: the assigned ISO 3166-1
    /// alpha-2 codes (for the API document).
    pub fn country_codes() -> Vec<&'static str> {
        isocountry::CountryCode::iter_alpha2()
            .map(|code| code.alpha2())
            .collect()
    }

    /// Who receives the parcel.
    pub fn recipient_name(&self) -> &str {
        &self.0.recipient_name
    }

    /// Street and number.
    pub fn line1(&self) -> &str {
        &self.0.line1
    }

    /// The second line, if any.
    pub fn line2(&self) -> Option<&str> {
        self.0.line2.as_deref()
    }

    /// The postal code.
    pub fn postal_code(&self) -> &str {
        &self.0.postal_code
    }

    /// The city.
    pub fn city(&self) -> &str {
        &self.0.city
    }

    /// ISO 3166-1 alpha-2 country code.
    pub fn country(&self) -> &str {
        &self.0.country
    }
}

impl TryFrom<AddressInput> for ShippingAddress {
    type Error = OrderError;

    fn try_from(input: AddressInput) -> Result<Self, Self::Error> {
        Self::new(input)
    }
}

impl From<ShippingAddress> for AddressInput {
    fn from(address: ShippingAddress) -> Self {
        address.0
    }
}
