//! The stored JSON of every event: insta snapshots of the current version and rejection of what
//! this build cannot read (the golden fixtures of every version ever written are in `golden.rs`).

use serde_json::json;

use crate::order::OrderEvent;
use crate::testing::fixtures::*;
use crate::{DomainEvent, EventDecodeError, EventEnvelope, EventMetadata};

#[test]
fn order_created_payload() {
    insta::assert_json_snapshot!(order_created().to_payload());
}

#[test]
fn order_confirmed_payload() {
    insta::assert_json_snapshot!(order_confirmed().to_payload());
}

#[test]
fn order_cancelled_payload() {
    insta::assert_json_snapshot!(order_cancelled().to_payload());
}

#[test]
fn order_shipped_payload() {
    insta::assert_json_snapshot!(order_shipped().to_payload());
}

#[test]
fn shipping_address_changed_payload() {
    insta::assert_json_snapshot!(shipping_address_changed().to_payload());
}

#[test]
fn order_delivered_payload() {
    insta::assert_json_snapshot!(order_delivered().to_payload());
}

#[test]
fn event_types_and_versions_are_stable() {
    let stored: Vec<_> = [
        order_created(),
        order_confirmed(),
        order_cancelled(),
        order_shipped(),
        order_delivered(),
    ]
    .iter()
    .map(|e| (e.event_type(), e.schema_version()))
    .collect();
    assert_eq!(
        stored,
        [
            ("OrderCreated", 2),
            ("OrderConfirmed", 1),
            ("OrderCancelled", 1),
            ("OrderShipped", 1),
            ("OrderDelivered", 1),
        ]
    );
}

#[test]
fn an_unknown_event_type_is_rejected() {
    let error = OrderEvent::from_stored("OrderTeleported", 1, json!({})).unwrap_err();
    assert!(
        matches!(error, EventDecodeError::UnknownType { event_type } if event_type == "OrderTeleported")
    );
}

#[test]
fn a_future_or_zero_schema_version_is_rejected() {
    for version in [0, 2, u32::MAX] {
        let error = OrderEvent::from_stored("OrderConfirmed", version, json!({})).unwrap_err();
        assert!(
            matches!(error, EventDecodeError::UnsupportedVersion { schema_version, latest: 1, .. } if schema_version == version),
            "{error}"
        );
    }
}

#[test]
fn a_malformed_or_invalid_payload_is_rejected() {
    let bad = [
        ("OrderCancelled", json!({})),
        ("OrderCancelled", json!({ "reason": 42 })),
        ("OrderConfirmed", json!({ "unexpected": true })),
        ("OrderCreated", json!([])),
        ("OrderShipped", json!("DHL")),
    ];
    for (event_type, payload) in bad {
        let error = OrderEvent::from_stored(event_type, 1, payload).unwrap_err();
        assert!(
            matches!(error, EventDecodeError::InvalidPayload { .. }),
            "{error}"
        );
    }
}

#[test]
fn a_stored_payload_breaking_a_value_rule_is_rejected() {
    let mut created = order_created().to_payload();
    created["items"][0]["quantity"] = json!(0);
    let error = OrderEvent::from_stored("OrderCreated", 1, created).unwrap_err();
    assert!(
        error.to_string().contains("quantity must be between 1 and"),
        "{error}"
    );
}

#[test]
fn envelope_metadata_omits_absent_optional_fields() {
    let timestamp = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    let bare = EventMetadata::new(CUSTOMER_ID, timestamp);
    insta::assert_json_snapshot!("metadata_bare", bare);
    let full = bare
        .with_causation(ORDER_ID)
        .with_user("user-7")
        .with_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    insta::assert_json_snapshot!("metadata_full", full);
    let envelope = EventEnvelope::new(BOOK_ID, ORDER_ID, "Order", 1, "payload", full.clone());
    assert_eq!((envelope.version, envelope.metadata), (1, full));
}
