//! [`OrderItem`]: one line of an order.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Currency, Money, Quantity, Sku};
use crate::order::errors::OrderError;

/// One order line: a product, how many, and the unit price (never negative).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "OrderItemData")]
pub struct OrderItem {
    product_id: Uuid,
    sku: Sku,
    quantity: Quantity,
    unit_price: Money,
}

impl OrderItem {
    /// Validates and builds a line from raw input.
    pub fn new(
        product_id: Uuid,
        sku: &str,
        quantity: u32,
        unit_price_minor: i64,
        currency: Currency,
    ) -> Result<Self, OrderError> {
        Self::from_parts(
            product_id,
            Sku::new(sku)?,
            Quantity::new(quantity)?,
            Money::new(unit_price_minor, currency),
        )
    }

    /// Builds a line from already-validated parts; rejects a negative unit price.
    pub fn from_parts(
        product_id: Uuid,
        sku: Sku,
        quantity: Quantity,
        unit_price: Money,
    ) -> Result<Self, OrderError> {
        if unit_price.amount_minor() < 0 {
            return Err(OrderError::NegativePrice {
                sku: sku.as_str().to_owned(),
                amount_minor: unit_price.amount_minor(),
            });
        }
        Ok(Self {
            product_id,
            sku,
            quantity,
            unit_price,
        })
    }

    /// The catalogue product.
    pub fn product_id(&self) -> Uuid {
        self.product_id
    }

    /// The stock-keeping unit.
    pub fn sku(&self) -> &Sku {
        &self.sku
    }

    /// Units ordered.
    pub fn quantity(&self) -> Quantity {
        self.quantity
    }

    /// Price of one unit.
    pub fn unit_price(&self) -> &Money {
        &self.unit_price
    }

    /// `unit_price × quantity`; fails on overflow.
    pub fn line_total(&self) -> Result<Money, OrderError> {
        self.unit_price.checked_mul(self.quantity.value())
    }
}

/// Wire shape of [`OrderItem`], so deserialization runs the same checks as construction.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderItemData {
    product_id: Uuid,
    sku: Sku,
    quantity: Quantity,
    unit_price: Money,
}

impl TryFrom<OrderItemData> for OrderItem {
    type Error = OrderError;

    fn try_from(data: OrderItemData) -> Result<Self, Self::Error> {
        Self::from_parts(data.product_id, data.sku, data.quantity, data.unit_price)
    }
}
