//! Personal data at rest (ADR 0016): sealed per customer, revealed at the edge, forgotten by
//! destroying the key.
//!
//! - [`master_key`]: the key that wraps every data key (configured or generated once);
//! - [`cipher`]: the ciphertext format and the wrapping of data keys;
//! - [`keys`]: the `customer_keys` table, on both backends;
//! - [`ring`]: [`KeyRing`], which seals a command's events, reveals responses and forgets;
//! - [`forget`]: forgetting a customer, recorded as a `CustomerForgotten` event.
//!
//! Invariant: a personal value reaches a store (events, snapshots, read models, the cache,
//! idempotency records) only sealed. The handler seals between `decide` and `evolve`, so the
//! state, and everything rendered from it, holds ciphertext; responses are revealed on their
//! way out (the HTTP layer's `reveal`), after authorisation. This crate knows no HTTP.

pub mod cipher;
pub mod forget;
pub mod keys;
pub mod master_key;
pub mod ring;
pub mod watch;

use domain::{Aggregate, OrderAggregate, OrderEvent, PersonalData, Sealer};
use uuid::Uuid;

pub use forget::{CUSTOMER_FORGOTTEN, CustomerForgotten, forget_customer};
pub use keys::{Forgetting, KeyTable, StoredKey};
pub use master_key::{MASTER_KEY_FILE, MasterKey};
pub use ring::{KEY_CACHE_TTL, KeyRing, PERSONAL_DATA_FIELD};

/// A personal value as stored, as JSON (for responses rendered from the state).
pub fn stored_json<T: serde::Serialize>(value: &domain::Personal<T>) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

/// Why personal data could not be sealed or revealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PersonalDataError {
    /// The customer was forgotten: no new personal data is accepted for them. HTTP 409.
    #[error(
        "customer {customer_id} was forgotten: no personal data can be stored for them any more; place new orders under a new customer id"
    )]
    CustomerForgotten {
        /// The customer.
        customer_id: Uuid,
    },
    /// The database holding the key table cannot be reached. HTTP 503, as any store outage.
    #[error("the key table cannot be reached: {0}")]
    Store(String),
    /// A data key cannot be unwrapped with the configured master key. HTTP 503.
    #[error("personal data is unavailable: {0}")]
    Unavailable(String),
}

/// An aggregate whose events may carry personal data, and whose customer owns it.
pub trait Sealable: Aggregate {
    /// The customer whose key seals `events` decided on `self` (from the state, or from the
    /// events when they create the aggregate); `None` for a state with no customer yet when
    /// `events` is empty.
    fn data_subject(&self, events: &[Self::Event]) -> Option<Uuid>;
    /// True while any event holds a plain personal value.
    fn has_plain_personal_data(events: &[Self::Event]) -> bool;
    /// Seals every plain personal value in `events`.
    fn seal_events<E>(events: &mut [Self::Event], seal: &mut Sealer<'_, E>) -> Result<(), E>;
}

impl Sealable for OrderAggregate {
    fn data_subject(&self, events: &[OrderEvent]) -> Option<Uuid> {
        self.customer_id().or_else(|| {
            events.iter().find_map(|event| match event {
                OrderEvent::Created(created) => Some(created.customer_id),
                _ => None,
            })
        })
    }

    fn has_plain_personal_data(events: &[OrderEvent]) -> bool {
        events.iter().any(PersonalData::has_plain_personal_data)
    }

    fn seal_events<E>(events: &mut [OrderEvent], seal: &mut Sealer<'_, E>) -> Result<(), E> {
        events
            .iter_mut()
            .try_for_each(|event| event.seal_personal_data(seal))
    }
}
