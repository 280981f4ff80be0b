//! Forgetting a customer: destroy the data key, then record it as a `CustomerForgotten` event.

use chrono::{DateTime, Utc};
use domain::EventMetadata;
use event_store::{AppendRequest, EventStore, EventStoreError, ExpectedVersion, NewEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::PersonalDataError;
use super::ring::KeyRing;

/// Aggregate type of the streams that record forgettings (one per customer, id = customer id).
pub const CUSTOMER: &str = "Customer";

/// Event type of the record; schema version 1.
pub const CUSTOMER_FORGOTTEN: &str = "CustomerForgotten";

/// The record that a customer was forgotten: who, when, which customer; no personal data. It is
/// on the global feed, so the Kafka relay publishes it (consumers erase their copies), and is
/// the first and only event of the stream named by the customer's id.
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

/// Forgets `customer_id`: destroys the key, then appends the record unless it exists. Both
/// steps are idempotent, so running it again finishes what a crash interrupted, and forgetting
/// twice answers the first forgetting.
pub async fn forget_customer<S: EventStore>(
    ring: &KeyRing,
    store: &S,
    customer_id: Uuid,
    by: &str,
) -> Result<CustomerForgotten, PersonalDataError> {
    let forgetting = ring.forget(customer_id, by).await?;
    let record = CustomerForgotten {
        customer_id,
        forgotten_at: forgetting.at,
        forgotten_by: forgetting.by,
    };
    let payload = serde_json::to_value(&record).unwrap_or_default();
    let metadata = EventMetadata::new(Uuid::now_v7(), Utc::now()).with_user(by.to_owned());
    let event = NewEvent {
        metadata: serde_json::to_value(&metadata).unwrap_or_default(),
        ..NewEvent::new(CUSTOMER, CUSTOMER_FORGOTTEN, 1, payload)
    };
    let request = AppendRequest {
        aggregate_id: customer_id,
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
