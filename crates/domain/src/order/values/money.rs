//! [`Money`]: an integer amount of minor units in a currency. Never a float.

use serde::{Deserialize, Serialize};

use super::Currency;
use crate::order::errors::OrderError;

/// An amount in minor units (cents for EUR, yen for JPY) with its currency.
///
/// Arithmetic is checked: overflow and mixed currencies are errors, never panics or silent
/// wrap-around. The amount may be negative (e.g. a refund); prices forbid that separately.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

impl Money {
    /// `amount_minor` minor units of `currency`.
    pub fn new(amount_minor: i64, currency: Currency) -> Self {
        Self {
            amount_minor,
            currency,
        }
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Self::new(0, currency)
    }

    /// The amount in minor units.
    pub fn amount_minor(&self) -> i64 {
        self.amount_minor
    }

    /// The currency.
    pub fn currency(&self) -> &Currency {
        &self.currency
    }

    /// `self + other`; fails on a currency mismatch or overflow.
    pub fn checked_add(&self, other: &Money) -> Result<Money, OrderError> {
        if self.currency != other.currency {
            return Err(OrderError::CurrencyMismatch {
                expected: self.currency.clone(),
                found: other.currency.clone(),
            });
        }
        let amount_minor = self
            .amount_minor
            .checked_add(other.amount_minor)
            .ok_or(OrderError::AmountOverflow)?;
        Ok(Self::new(amount_minor, self.currency.clone()))
    }

    /// `self × factor`; fails on overflow.
    pub fn checked_mul(&self, factor: u32) -> Result<Money, OrderError> {
        let amount_minor = self
            .amount_minor
            .checked_mul(i64::from(factor))
            .ok_or(OrderError::AmountOverflow)?;
        Ok(Self::new(amount_minor, self.currency.clone()))
    }
}
