//! [`Quantity`]: how many units of one SKU.

use serde::{Deserialize, Serialize};

use crate::order::errors::OrderError;
use crate::order::limits::MAX_QUANTITY;

/// Units on one line: `1..=MAX_QUANTITY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32")]
pub struct Quantity(u32);

impl Quantity {
    /// Rejects zero and anything above [`MAX_QUANTITY`].
    pub fn new(value: u32) -> Result<Self, OrderError> {
        if value == 0 || value > MAX_QUANTITY {
            return Err(OrderError::InvalidQuantity { quantity: value });
        }
        Ok(Self(value))
    }

    /// The number of units.
    pub fn value(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Quantity {
    type Error = OrderError;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}
