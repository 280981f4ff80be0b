//! Decoding a stored event: `orders::commands::decode` (the domain codec and its upcasters) on an
//! arbitrary event type, schema version and JSON payload.
//!
//! Input: `<event_type>\n<schema_version>\n<payload JSON>`. Checks that decoding never panics,
//! that a decoded event keeps its stored type, and that an event decoded once survives
//! re-encoding (payload, then JSON text, then decoding again) unchanged.
#![no_main]

use chrono::DateTime;
use domain::{Aggregate, DomainEvent, OrderAggregate, OrderEvent};
use event_store::RecordedEvent;
use libfuzzer_sys::fuzz_target;
use orders_fuzz::fixtures::{created_order, ORDER_ID};
use orders_fuzz::input::split_line;
use serde_json::Value;
use uuid::Uuid;

fuzz_target!(|data: &[u8]| {
    let Some((event_type, rest)) = split_line(data) else {
        return;
    };
    let Some((schema_version, payload)) = split_line(rest) else {
        return;
    };
    let Ok(schema_version) = schema_version.parse::<u32>() else {
        return;
    };
    // The stores hold payloads as JSON (JSONB or checked text): bytes that are not JSON never
    // reach the codec.
    let Ok(payload) = serde_json::from_slice::<Value>(payload) else {
        return;
    };
    let recorded = stored(event_type, schema_version, payload);
    let Ok(event) = orders::commands::decode::<OrderEvent>(&recorded) else {
        return;
    };
    assert_eq!(event.event_type(), event_type, "decoding changed the type");
    assert!(
        event.schema_version() >= schema_version,
        "an upcaster went back a version"
    );
    assert_round_trips(&event);
    // Folding a decoded event never fails: evolve is total. Only a creation places an order;
    // any other event first in a stream is corruption, and folding it invents nothing.
    let order = OrderAggregate::replay([&event]);
    match event {
        OrderEvent::Created(_) => {
            assert_ne!(order, OrderAggregate::default(), "{event:?} placed no order");
        }
        _ => assert_eq!(order, OrderAggregate::default(), "{event:?} invented an order"),
    }
    // On a placed order a second creation is ignored; folding anything else never panics.
    let mut placed = created_order().clone();
    placed.apply(&event);
    if matches!(event, OrderEvent::Created(_)) {
        assert_eq!(&placed, created_order(), "a second creation changed the order");
    }
});

/// A row as the store would hand it back.
fn stored(event_type: &str, schema_version: u32, payload: Value) -> RecordedEvent {
    RecordedEvent {
        event_id: Uuid::from_u128(1),
        aggregate_id: ORDER_ID,
        aggregate_type: OrderAggregate::TYPE.to_owned(),
        version: 1,
        position: Some(1),
        event_type: event_type.to_owned(),
        schema_version,
        payload,
        metadata: Value::Null,
        recorded_at: DateTime::UNIX_EPOCH,
    }
}

/// What the command handler writes for `event` decodes back to `event`, through the JSON text.
fn assert_round_trips(event: &OrderEvent) {
    let payload = event.to_payload();
    let text = serde_json::to_vec(&payload).expect("a payload serializes");
    let reparsed: Value = serde_json::from_slice(&text).expect("serialized JSON parses");
    assert_eq!(reparsed, payload, "the payload changed through its text");
    let again = OrderEvent::from_stored(event.event_type(), event.schema_version(), reparsed)
        .unwrap_or_else(|error| panic!("{event:?} does not decode after encoding: {error}"));
    assert_eq!(&again, event, "the event changed through encoding");
    assert_eq!(again.to_payload(), payload, "the encoding is not stable");
}
