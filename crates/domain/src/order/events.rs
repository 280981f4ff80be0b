//! Order events: facts, stored forever. Their JSON is a versioned schema (see `codec.rs`);
//! they carry no timestamps (the envelope's metadata does).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::values::{Currency, Money, OrderItem};

/// An order was placed. Schema v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderCreated {
    /// The order's id.
    pub order_id: Uuid,
    /// The customer who placed it.
    pub customer_id: Uuid,
    /// The order currency.
    pub currency: Currency,
    /// The lines as ordered.
    pub items: Vec<OrderItem>,
    /// Sum of the line totals, computed when the order was placed.
    pub total: Money,
}

/// The order was accepted. Schema v1; payload `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderConfirmed {}

/// The order was cancelled. Schema v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderCancelled {
    /// Why, trimmed.
    pub reason: String,
}

/// The order was handed to a carrier. Schema v1.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderShipped {
    /// Carrier name, trimmed, if known.
    #[serde(default)]
    pub carrier: Option<String>,
    /// Tracking number, trimmed, if known.
    #[serde(default)]
    pub tracking_number: Option<String>,
}

/// The order arrived. Schema v1; payload `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderDelivered {}

/// Every event of the order aggregate ([`crate::Aggregate::Event`]).
///
/// Deliberately not `Serialize`: the stored form is [`crate::DomainEvent::to_payload`] plus the
/// event type and schema version, never an enum tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderEvent {
    /// See [`OrderCreated`].
    Created(OrderCreated),
    /// See [`OrderConfirmed`].
    Confirmed(OrderConfirmed),
    /// See [`OrderCancelled`].
    Cancelled(OrderCancelled),
    /// See [`OrderShipped`].
    Shipped(OrderShipped),
    /// See [`OrderDelivered`].
    Delivered(OrderDelivered),
}

macro_rules! into_event {
    ($($event:ident => $variant:ident),* $(,)?) => {$(
        impl From<$event> for OrderEvent {
            fn from(event: $event) -> Self {
                Self::$variant(event)
            }
        }
    )*};
}

into_event!(
    OrderCreated => Created,
    OrderConfirmed => Confirmed,
    OrderCancelled => Cancelled,
    OrderShipped => Shipped,
    OrderDelivered => Delivered,
);
