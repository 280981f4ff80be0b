//! The integration event: what the topic carries, versioned separately from the storage row.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use event_store::FeedEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
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
/// `docs/adr/0008-outbox-from-the-global-feed.md`. A consumer reads `data` as a [`Value`] (the
/// default); the relay writes it as the stored JSON text ([`Published`]), never parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderEventV1<D = Value> {
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
    pub data: D,
}

/// The form the relay publishes: `data` is the stored payload's JSON text, copied verbatim.
pub type Published = OrderEventV1<Box<RawValue>>;

/// The metadata fields the integration event carries; every other field is skipped unread.
#[derive(Default, Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    correlation_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    causation_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    timestamp: Option<Cow<'a, str>>,
}

impl Published {
    /// The integration event for an event read from the feed. Only the three metadata fields it
    /// needs are read out of the stored metadata; the payload is not parsed at all. Metadata that
    /// does not have the expected shape (written by another tool, say) contributes nothing.
    pub fn from_feed(event: FeedEvent) -> Self {
        let Envelope {
            correlation_id,
            causation_id,
            timestamp,
        } = serde_json::from_str(event.metadata.get()).unwrap_or_default();
        let occurred_at = timestamp
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map_or(event.recorded_at, |t| t.with_timezone(&Utc));
        Self {
            schema: SCHEMA_V1.to_owned(),
            event_id: event.event_id,
            aggregate_type: event.aggregate_type,
            order_id: event.aggregate_id,
            order_version: event.version,
            position: event.position,
            event_type: event.event_type,
            event_schema_version: event.schema_version,
            occurred_at,
            recorded_at: event.recorded_at,
            correlation_id: correlation_id.map(Cow::into_owned),
            causation_id: causation_id.map(Cow::into_owned),
            data: event.payload,
        }
    }
}

impl<D> OrderEventV1<D> {
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

    fn stored(metadata: &str) -> FeedEvent {
        FeedEvent {
            event_id: Uuid::now_v7(),
            aggregate_id: Uuid::now_v7(),
            aggregate_type: "Order".into(),
            version: 3,
            position: 17,
            event_type: "OrderConfirmed".into(),
            schema_version: 1,
            payload: RawValue::from_string(r#"{"order_id": "x", "n": [1, 2.50]}"#.into())
                .unwrap_or_else(|e| panic!("{e}")),
            metadata: RawValue::from_string(metadata.into()).unwrap_or_else(|e| panic!("{e}")),
            recorded_at: Utc::now(),
        }
    }

    const METADATA: &str = r#"{"user": {"id": "u"}, "correlation_id": "c-1", "causation_id": "r\u002d1", "timestamp": "2026-01-02T03:04:05Z"}"#;

    #[test]
    fn maps_the_stored_event() {
        let feed = stored(METADATA);
        let event = Published::from_feed(feed.clone());
        assert_eq!(event.order_id, feed.aggregate_id);
        assert_eq!(event.order_version, 3);
        assert_eq!(event.position, 17);
        assert_eq!(event.correlation_id.as_deref(), Some("c-1"));
        assert_eq!(
            event.causation_id.as_deref(),
            Some("r-1"),
            "escapes are decoded"
        );
        assert_eq!(event.occurred_at.to_rfc3339(), "2026-01-02T03:04:05+00:00");
        assert_eq!(event.key(), feed.aggregate_id.to_string());
        let headers = event.headers();
        assert!(headers.contains(&(headers::STREAM_VERSION, "3".into())));
        assert!(headers.contains(&(headers::CAUSATION_ID, "r-1".into())));
    }

    #[test]
    fn metadata_without_the_fields_falls_back_to_the_commit() {
        for metadata in [r#"{}"#, r#"{"correlation_id": 7}"#, r#"[]"#] {
            let feed = stored(metadata);
            let event = Published::from_feed(feed.clone());
            assert_eq!(event.correlation_id, None, "{metadata}");
            assert_eq!(event.occurred_at, feed.recorded_at, "{metadata}");
        }
    }

    #[test]
    fn the_payload_is_published_verbatim_and_reads_back_as_a_value() {
        let event = Published::from_feed(stored(METADATA));
        let json = serde_json::to_string(&event).unwrap_or_default();
        assert!(json.contains(r#""schema":"orders.order-event/v1""#));
        assert!(
            json.contains(r#""data":{"order_id": "x", "n": [1, 2.50]}"#),
            "{json}"
        );
        let back: OrderEventV1 = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.data, json!({"order_id": "x", "n": [1, 2.50]}));
        assert_eq!(
            (
                back.event_id,
                back.order_id,
                back.position,
                back.correlation_id
            ),
            (event.event_id, event.order_id, 17, Some("c-1".to_owned()))
        );
    }
}
