//! The `Order` aggregate: an order's lifecycle from creation to delivery or cancellation.
//!
//! Lifecycle: `Created → Confirmed → Shipped → Delivered`; `Cancelled` only from `Created` or
//! `Confirmed`. Every other transition is rejected with [`OrderError::InvalidTransition`]. The
//! shipping address may be set or changed while `Created` or `Confirmed`, and `ship` needs one.
//!
//! Duplicate SKUs on one order are **rejected** ([`OrderError::DuplicateSku`]) rather than merged,
//! so that what the customer sent is exactly what is stored.

mod codec;
mod commands;
mod decide;
mod errors;
mod events;
mod limits;
mod personal;
mod state;
mod status;
mod values;

#[cfg(test)]
mod tests;

pub use codec::{CREATED as ORDER_CREATED, ORDER_EVENT_TYPES};
pub use commands::{
    CancelOrder, ChangeShippingAddress, ConfirmOrder, CreateOrder, DeliverOrder, OrderCommand,
    ShipOrder,
};
pub use errors::OrderError;
pub use events::{
    OrderCancelled, OrderConfirmed, OrderCreated, OrderDelivered, OrderEvent, OrderShipped,
    ShippingAddressChanged,
};
pub use limits::{
    MAX_ADDRESS_LINE_LEN, MAX_CANCELLATION_REASON_LEN, MAX_CARRIER_LEN, MAX_CITY_LEN,
    MAX_EMAIL_LEN, MAX_ITEMS, MAX_ORDER_TOTAL_MINOR, MAX_PHONE_LEN, MAX_POSTAL_CODE_LEN,
    MAX_QUANTITY, MAX_RECIPIENT_NAME_LEN, MAX_SKU_LEN, MAX_TRACKING_NUMBER_LEN,
};
pub use personal::{CANCELLATION_REASON, CONTACT, SHIPPING_ADDRESS};
pub use state::OrderAggregate;
pub use status::OrderStatus;
pub use values::{
    AddressInput, Contact, ContactInput, Currency, Money, OrderItem, Quantity, ShippingAddress, Sku,
};

/// Short name for [`OrderAggregate`].
pub type Order = OrderAggregate;
