//! The integration event: what the topic carries, versioned separately from the storage row.

use chrono::{DateTime, Utc};
use event_store::RecordedEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The value of [`OrderEventV1::schema`]; a consumer must reject what it does not know.
pub const SCHEMA_V1: &str = "orders.order-event/v1";

/// Names of the Kafka headers every message carries (values are UTF-8 text).
pub mod headers {
    /// [`super::SCHEMA_V1`]: the shape of the value.
    pub const SCHEMA: &str = "schema";
    /// The event's id (UUID): the same on every redelivery.
    pub const EVENT_ID: &str = "event_id";
    /// Stable event type name, e.g. `OrderConfirmed`.
    pub const EVENT_TYPE: &str = "event_type";
    /// Schema version of the event's `data` for its type.
    pub const SCHEMA_VERSION: &str = "schema_version";
    /// The event's version in its order's stream (1, 2, 3, …): the dedupe key with the message key.
    pub const STREAM_VERSION: &str = "stream_version";
    /// Correlation id of the request that caused the event.
    pub const CORRELATION_ID: &str = "correlation_id";
    /// Causation id (the request id), when the event has one.
    pub const CAUSATION_ID: &str = "causation_id";
}

/// One order event as published: the message value, JSON.
///
/// Consumers dedupe on (`order_id`, `order_version`): see the consumer contract in
/// `docs/adr/0008-outbox-from-the-global-feed.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderEventV1 {
    /// Always [`SCHEMA_V1`].
    pub schema: String,
    /// The event's id.
    pub event_id: Uuid,
    /// The aggregate type (`Order`).
    pub aggregate_type: String,
    /// The order (stream) the event belongs to; also the message key.
    pub order_id: Uuid,
    /// Version of the event in the order's stream, contiguous from 1.
    pub order_version: u64,
    /// Position in the store-wide feed (informational: consumers must not rely on its density).
    pub position: u64,
    /// Stable event type name.
    pub event_type: String,
    /// Schema version of `data` for `event_type`.
    pub event_schema_version: u32,
    /// When the command was decided (the metadata's timestamp; the commit time if absent).
    pub occurred_at: DateTime<Utc>,
    /// When the store committed the event.
    pub recorded_at: DateTime<Utc>,
    /// Correlation id, when the metadata has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Causation id, when the metadata has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    /// The event's payload as stored for its schema version.
    pub data: Value,
}

impl OrderEventV1 {
    /// The integration event for a stored event read from the feed (which always has a position).
    pub fn from_recorded(event: RecordedEvent) -> Self {
        let text = |field: &str| {
            event
                .metadata
                .get(field)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let occurred_at = text("timestamp")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map_or(event.recorded_at, |t| t.with_timezone(&Utc));
        Self {
            schema: SCHEMA_V1.to_owned(),
            event_id: event.event_id,
            aggregate_type: event.aggregate_type,
            order_id: event.aggregate_id,
            order_version: event.version,
            position: event.position.unwrap_or(0),
            event_type: event.event_type,
            event_schema_version: event.schema_version,
            occurred_at,
            recorded_at: event.recorded_at,
            correlation_id: text("correlation_id"),
            causation_id: text("causation_id"),
            data: event.payload,
        }
    }

    /// The message key: the order id, so an order's events share a partition and keep their order.
    pub fn key(&self) -> String {
        self.order_id.to_string()
    }

    /// The message headers, as (name, value) pairs.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            (headers::SCHEMA, self.schema.clone()),
            (headers::EVENT_ID, self.event_id.to_string()),
            (headers::EVENT_TYPE, self.event_type.clone()),
            (
                headers::SCHEMA_VERSION,
                self.event_schema_version.to_string(),
            ),
            (headers::STREAM_VERSION, self.order_version.to_string()),
        ];
        if let Some(id) = &self.correlation_id {
            out.push((headers::CORRELATION_ID, id.clone()));
        }
        if let Some(id) = &self.causation_id {
            out.push((headers::CAUSATION_ID, id.clone()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn recorded() -> RecordedEvent {
        RecordedEvent {
            event_id: Uuid::now_v7(),
            aggregate_id: Uuid::now_v7(),
            aggregate_type: "Order".into(),
            version: 3,
            position: Some(17),
            event_type: "OrderConfirmed".into(),
            schema_version: 1,
            payload: json!({"order_id": "x"}),
            metadata: json!({"correlation_id": "c-1", "causation_id": "r-1", "timestamp": "2026-01-02T03:04:05Z"}),
            recorded_at: Utc::now(),
        }
    }

    #[test]
    fn maps_the_stored_event() {
        let stored = recorded();
        let event = OrderEventV1::from_recorded(stored.clone());
        assert_eq!(event.order_id, stored.aggregate_id);
        assert_eq!(event.order_version, 3);
        assert_eq!(event.position, 17);
        assert_eq!(event.correlation_id.as_deref(), Some("c-1"));
        assert_eq!(event.occurred_at.to_rfc3339(), "2026-01-02T03:04:05+00:00");
        assert_eq!(event.key(), stored.aggregate_id.to_string());
        let headers = event.headers();
        assert!(headers.contains(&(headers::STREAM_VERSION, "3".into())));
        assert!(headers.contains(&(headers::CAUSATION_ID, "r-1".into())));
    }

    #[test]
    fn round_trips_as_json() {
        let event = OrderEventV1::from_recorded(recorded());
        let json = serde_json::to_string(&event).unwrap_or_default();
        assert!(json.contains(r#""schema":"orders.order-event/v1""#));
        let back: OrderEventV1 = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, event);
    }
}
