//! Forgetting a customer: destroy the data key, then record it as a `CustomerForgotten` event.

use chrono::{DateTime, Utc};
use domain::EventMetadata;
use event_store::{AppendRequest, EventStore, EventStoreError, ExpectedVersion, NewEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::PersonalDataError;
use super::ring::KeyRing;

/// Aggregate type of the streams that record forgettings (one per customer, see [`stream_id`]).
pub const CUSTOMER: &str = "Customer";

/// The id of the stream that records `customer_id`'s forgetting: a UUID v5 of the customer id,
/// so that it can never be an order's id (orders get v7 ids) whatever ids customers have.
pub fn stream_id(customer_id: Uuid) -> Uuid {
    /// Namespace of the customers' record streams (a fixed random v4).
    const NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a3e_5b7d_4c8a_9e0f_1a2b_3c4d_5e6f);
    Uuid::new_v5(&NAMESPACE, customer_id.as_bytes())
}

/// Event type of the record; schema version 1.
pub const CUSTOMER_FORGOTTEN: &str = "CustomerForgotten";

/// The record that a customer was forgotten: who, when, which customer; no personal data. It is
/// on the global feed, so the Kafka relay publishes it (consumers erase their copies), and is
/// the first and only event of the stream [`stream_id`] names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerForgotten {
    /// The customer.
    pub customer_id: Uuid,
    /// When the key was destroyed.
    pub forgotten_at: DateTime<Utc>,
    /// The token subject that asked (`cli` from the command line).
    pub forgotten_by: String,
}

/// Forgets `customer_id` at the request of `metadata`'s user: destroys the key, then appends
/// the record (with `metadata`) unless it exists. Both
/// steps are idempotent, so running it again finishes what a crash interrupted, and forgetting
/// twice answers the first forgetting.
pub async fn forget_customer<S: EventStore>(
    ring: &KeyRing,
    store: &S,
    customer_id: Uuid,
    metadata: EventMetadata,
) -> Result<CustomerForgotten, PersonalDataError> {
    let by = metadata
        .user_id
        .clone()
        .unwrap_or_else(|| "unknown".to_owned());
    let forgetting = ring.forget(customer_id, &by).await?;
    let record = CustomerForgotten {
        customer_id,
        forgotten_at: forgetting.at,
        forgotten_by: forgetting.by,
    };
    let payload = serde_json::to_value(&record).unwrap_or_default();
    let event = NewEvent {
        metadata: serde_json::to_value(&metadata).unwrap_or_default(),
        ..NewEvent::new(CUSTOMER, CUSTOMER_FORGOTTEN, 1, payload)
    };
    let request = AppendRequest {
        aggregate_id: stream_id(customer_id),
        expected: ExpectedVersion::NoStream,
        events: vec![event],
        idempotency: None,
    };
    match store.append(request).await {
        Ok(_) | Err(EventStoreError::Conflict { .. }) => Ok(record),
        Err(error) => Err(PersonalDataError::Store(format!(
            "the key is destroyed, but recording it failed ({error}); run the forget again to record it"
        ))),
    }
}
