//! Order events: facts, stored forever. Their JSON is a versioned schema (see `codec.rs`);
//! they carry no timestamps (the envelope's metadata does).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::values::{Contact, Currency, Money, OrderItem, ShippingAddress};
use crate::personal::Personal;

/// An order was placed. Schema v2 (v1 had no `shipping_address` or `contact`; its upcaster sets
/// both to `null`: an order placed before addresses existed has none, and cannot ship until one
/// is set).
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
    /// Where it goes, if given at once; sealed once the service has handled the command.
    /// Required in the payload (`null` when absent): the v1 → v2 upcaster adds it.
    #[serde(deserialize_with = "Option::deserialize")]
    pub shipping_address: Option<Personal<ShippingAddress>>,
    /// How to reach the customer about it, if given; sealed likewise. Required like the address.
    #[serde(deserialize_with = "Option::deserialize")]
    pub contact: Option<Personal<Contact>>,
}

/// The shipping address was set or replaced before the order shipped. Schema v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShippingAddressChanged {
    /// The new address; sealed once the service has handled the command.
    pub shipping_address: Personal<ShippingAddress>,
}

/// The order was accepted. Schema v1; payload `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderConfirmed {}

/// The order was cancelled. Schema v1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderCancelled {
    /// Why, trimmed: the customer's free text, so personal data. Sealed since addresses came
    /// in; events written before hold it in plain text (the same shape: a string), and
    /// [`crate::Sealed::erased`] when the customer had already been forgotten.
    pub reason: Personal<String>,
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
    /// See [`ShippingAddressChanged`].
    ShippingAddressChanged(ShippingAddressChanged),
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
    ShippingAddressChanged => ShippingAddressChanged,
);
