//! The `Order` aggregate: an order's lifecycle from creation to delivery or cancellation.
//!
//! Lifecycle: `Created → Confirmed → Shipped → Delivered`; `Cancelled` only from `Created` or
//! `Confirmed`. Every other transition is rejected with [`OrderError::InvalidTransition`].
//!
//! Duplicate SKUs on one order are **rejected** ([`OrderError::DuplicateSku`]) rather than merged,
//! so that what the customer sent is exactly what is stored.

mod codec;
mod commands;
mod decide;
mod errors;
mod events;
mod limits;
mod state;
mod status;
mod values;

#[cfg(test)]
mod tests;

pub use commands::{CancelOrder, ConfirmOrder, CreateOrder, DeliverOrder, OrderCommand, ShipOrder};
pub use errors::OrderError;
pub use events::{
    OrderCancelled, OrderConfirmed, OrderCreated, OrderDelivered, OrderEvent, OrderShipped,
};
pub use limits::{
    MAX_CANCELLATION_REASON_LEN, MAX_CARRIER_LEN, MAX_ITEMS, MAX_ORDER_TOTAL_MINOR, MAX_QUANTITY,
    MAX_SKU_LEN, MAX_TRACKING_NUMBER_LEN,
};
pub use state::OrderAggregate;
pub use status::OrderStatus;
pub use values::{Currency, Money, OrderItem, Quantity, Sku};

/// Short name for [`OrderAggregate`].
pub type Order = OrderAggregate;
