//! Converting between domain events and the store's rows.

use chrono::Utc;
use domain::{DomainEvent, EventMetadata};
use event_store::{NewEvent, RecordedEvent};
use uuid::Uuid;

use super::CommandContext;

/// Wraps a decided event for the store, with a fresh UUID v7 id and the context's metadata.
pub(crate) fn to_new_event<E: DomainEvent>(
    aggregate_type: &str,
    event: &E,
    context: &CommandContext,
) -> NewEvent {
    let mut metadata = EventMetadata::new(context.correlation_id, Utc::now());
    if let Some(causation) = context.causation_id {
        metadata = metadata.with_causation(causation);
    }
    if let Some(user) = &context.user_id {
        metadata = metadata.with_user(user.clone());
    }
    if let Some(traceparent) = &context.traceparent {
        metadata = metadata.with_traceparent(traceparent.clone());
    }
    NewEvent {
        event_id: Uuid::now_v7(),
        aggregate_type: aggregate_type.to_owned(),
        event_type: event.event_type().to_owned(),
        schema_version: event.schema_version(),
        payload: event.to_payload(),
        // EventMetadata is plain data; serializing it cannot fail.
        metadata: serde_json::to_value(&metadata).unwrap_or_default(),
    }
}

/// Decodes a stored event (upcasting older schema versions).
pub fn from_recorded<E: DomainEvent>(event: &RecordedEvent) -> Result<E, String> {
    E::from_stored(
        &event.event_type,
        event.schema_version,
        event.payload.clone(),
    )
    .map_err(|e| {
        format!(
            "event {} (version {} of stream {}): {e}",
            event.event_id, event.version, event.aggregate_id
        )
    })
}
