//! [`Sku`]: a stock-keeping unit code.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::order::errors::{OrderError, preview};
use crate::order::limits::MAX_SKU_LEN;

/// A stock-keeping unit: 1 to [`MAX_SKU_LEN`] characters of `A-Z a-z 0-9 - _ .`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Sku(String);

impl Sku {
    /// Validates the SKU; it is not trimmed or case-folded.
    pub fn new(sku: &str) -> Result<Self, OrderError> {
        let problem = if sku.is_empty() {
            Some("it is empty")
        } else if sku.chars().count() > MAX_SKU_LEN {
            Some("it is too long")
        } else if !sku.chars().all(is_sku_char) {
            Some("it contains a character that is not allowed")
        } else {
            None
        };
        match problem {
            Some(problem) => Err(OrderError::InvalidSku {
                sku: preview(sku),
                problem,
            }),
            None => Ok(Self(sku.to_owned())),
        }
    }

    /// The SKU text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_sku_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

impl TryFrom<String> for Sku {
    type Error = OrderError;

    fn try_from(sku: String) -> Result<Self, Self::Error> {
        Self::new(&sku)
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
