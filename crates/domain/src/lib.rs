//! # domain
//!
//! The pure core of the orders service: the [`Order`] aggregate with its commands, events and
//! value objects, and the [`Aggregate`] and [`DomainEvent`] traits that the event store codes
//! against.
//!
//! **Invariant: this crate does no I/O.** It touches no database, network, clock or random
//! number generator and knows nothing of tokio, sqlx or axum. Event ids, aggregate ids and
//! timestamps are passed in. [`Aggregate::decide`] holds every business rule and never mutates;
//! [`Aggregate::evolve`] applies a fact and never fails.
//!
//! Money is never a float: [`Money`] is an `i64` amount in minor units plus a [`Currency`].
//!
//! ```
//! use domain::{Aggregate, CreateOrder, Currency, OrderAggregate, OrderItem, OrderStatus};
//! use uuid::Uuid;
//!
//! let eur = Currency::new("EUR")?;
//! let create = CreateOrder {
//!     order_id: Uuid::from_u128(1),
//!     customer_id: Uuid::from_u128(2),
//!     currency: eur.clone(),
//!     items: vec![OrderItem::new(Uuid::from_u128(3), "BOOK-42", 2, 1_250, eur)?],
//!     shipping_address: None,
//!     contact: None,
//! };
//!
//! let mut order = OrderAggregate::default();
//! let mut history = order.create(&create)?;
//! history.iter().for_each(|event| order.apply(event));
//! assert_eq!(order.status(), OrderStatus::Created);
//! assert_eq!(order.total().map(|total| total.amount_minor()), Some(2_500));
//!
//! let confirmed = order.confirm()?;
//! confirmed.iter().for_each(|event| order.apply(event));
//! history.extend(confirmed);
//! assert_eq!(order.status(), OrderStatus::Confirmed);
//!
//! // The state is a pure fold over the events.
//! assert_eq!(OrderAggregate::replay(&history), order);
//! # Ok::<(), domain::OrderError>(())
//! ```

mod aggregate;
mod envelope;
mod error;
mod event;
pub mod order;
mod personal;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use aggregate::Aggregate;
pub use envelope::{EventEnvelope, EventMetadata};
pub use error::{DomainError, ErrorKind};
pub use event::{DomainEvent, EventDecodeError};
pub use order::{
    AddressInput, CancelOrder, ChangeShippingAddress, ConfirmOrder, Contact, ContactInput,
    CreateOrder, Currency, DeliverOrder, MAX_ADDRESS_LINE_LEN, MAX_CANCELLATION_REASON_LEN,
    MAX_CARRIER_LEN, MAX_CITY_LEN, MAX_EMAIL_LEN, MAX_ITEMS, MAX_ORDER_TOTAL_MINOR, MAX_PHONE_LEN,
    MAX_POSTAL_CODE_LEN, MAX_QUANTITY, MAX_RECIPIENT_NAME_LEN, MAX_SKU_LEN,
    MAX_TRACKING_NUMBER_LEN, Money, ORDER_CREATED, ORDER_EVENT_TYPES, Order, OrderAggregate,
    OrderCancelled, OrderCommand, OrderConfirmed, OrderCreated, OrderDelivered, OrderError,
    OrderEvent, OrderItem, OrderShipped, OrderStatus, Quantity, ShipOrder, ShippingAddress,
    ShippingAddressChanged, Sku,
};
pub use personal::{ERASED, Personal, PersonalData, PersonalField, SEALED_PREFIX, Sealed, Sealer};
