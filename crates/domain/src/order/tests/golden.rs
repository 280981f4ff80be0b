//! Golden fixtures: the stored JSON of every (event type, schema version) this service has ever
//! written, and of every snapshot schema version, as files under `crates/domain/fixtures/`.
//!
//! Each file is decoded through the codec (and so through its upcasters) and must equal the
//! event or state it was written from, in its current form. A (type, version) the codec writes
//! today without a file fails, so bumping a version forces a fixture of the new one; the old
//! files stay, untouched, for as long as stored events may be at their version.
//!
//! Names: `fixtures/events/<EventType>.v<N>[.<case>].json` holds the payload exactly as stored;
//! `fixtures/snapshots/<AggregateType>.v<N>.json` holds a snapshot's state.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::order::{
    OrderAggregate, OrderCancelled, OrderCreated, OrderEvent, ShippingAddressChanged,
};
use crate::testing::fixtures::*;
use crate::{Aggregate, DomainEvent, Personal, Sealed};

/// A sealed value of the fixture order as the service writes it (the domain never opens one, so
/// any ciphertext stands in).
fn sealed<T>(field_and_ciphertext: &str) -> Personal<T> {
    let text = format!(
        "enc:v1:01930c4e-8a00-7000-8000-000000000002:01930c4e-8a00-7000-8000-000000000001:{field_and_ciphertext}"
    );
    Personal::Sealed(Sealed::new(text).unwrap())
}

/// The fixture order's creation as the service stores it: address and contact sealed.
fn order_created_sealed() -> OrderEvent {
    let OrderEvent::Created(created) = order_created_without_address() else {
        unreachable!()
    };
    OrderEvent::Created(OrderCreated {
        shipping_address: Some(sealed("shipping_address:c2VhbGVkLWFkZHJlc3M")),
        contact: Some(sealed("contact:c2VhbGVkLWNvbnRhY3Q")),
        ..created
    })
}

fn fixtures(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(kind)
}

/// Every fixture file of `kind`, by file stem (`OrderShipped.v1.without-tracking`).
fn files(kind: &str) -> BTreeMap<String, Value> {
    let dir = fixtures(kind);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|x| x == "json"))
        .map(|path| {
            let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let json =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (stem, json)
        })
        .collect()
}

/// `(type, version)` of a stem `Type.vN[.case]`.
fn type_and_version(stem: &str) -> (&str, u32) {
    let mut parts = stem.split('.');
    let name = parts.next().unwrap();
    let version = parts
        .next()
        .and_then(|v| v.strip_prefix('v'))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("fixture {stem}: name it <Type>.v<N>[.<case>].json"));
    (name, version)
}

/// What each event fixture decodes to, in the current form.
fn expected_events() -> BTreeMap<&'static str, OrderEvent> {
    BTreeMap::from([
        // v1 had no address or contact: the upcaster adds none.
        ("OrderCreated.v1", order_created_without_address()),
        ("OrderCreated.v2", order_created()),
        ("OrderCreated.v2.sealed", order_created_sealed()),
        (
            "OrderCreated.v2.without-address",
            order_created_without_address(),
        ),
        ("ShippingAddressChanged.v1", shipping_address_changed()),
        (
            "ShippingAddressChanged.v1.sealed",
            OrderEvent::ShippingAddressChanged(ShippingAddressChanged {
                shipping_address: sealed("shipping_address:c2VhbGVkLWhhbWJ1cmc"),
            }),
        ),
        ("OrderConfirmed.v1", order_confirmed()),
        // Written before reasons were sealed: plain text, read as such.
        ("OrderCancelled.v1", order_cancelled()),
        (
            "OrderCancelled.v1.sealed",
            OrderEvent::Cancelled(OrderCancelled {
                reason: sealed("cancellation_reason:c2VhbGVkLXJlYXNvbg"),
            }),
        ),
        (
            "OrderCancelled.v1.erased",
            OrderEvent::Cancelled(OrderCancelled {
                reason: Personal::Sealed(Sealed::erased()),
            }),
        ),
        ("OrderShipped.v1", order_shipped()),
        (
            "OrderShipped.v1.without-tracking",
            OrderEvent::Shipped(Default::default()),
        ),
        ("OrderDelivered.v1", order_delivered()),
    ])
}

/// The state each snapshot fixture was taken of. Only the current version is ever decoded.
fn expected_snapshots() -> BTreeMap<&'static str, OrderAggregate> {
    BTreeMap::from([
        (
            "Order.v1",
            OrderAggregate::replay(&[
                order_created_without_address(),
                order_confirmed(),
                order_shipped(),
            ]),
        ),
        (
            "Order.v2",
            OrderAggregate::replay(&[order_created_sealed(), order_confirmed(), order_shipped()]),
        ),
        (
            "Order.v3",
            OrderAggregate::replay(&[order_created_sealed(), order_confirmed(), order_shipped()]),
        ),
    ])
}

#[test]
fn every_stored_event_fixture_decodes_to_its_current_form() {
    let files = files("events");
    let expected = expected_events();
    for (stem, payload) in &files {
        let want = expected
            .get(stem.as_str())
            .unwrap_or_else(|| panic!("fixture {stem} has no expected form in golden.rs"));
        let (event_type, version) = type_and_version(stem);
        let decoded = OrderEvent::from_stored(event_type, version, payload.clone())
            .unwrap_or_else(|e| panic!("fixture {stem}: {e}"));
        assert_eq!(&decoded, want, "fixture {stem}");
    }
    for stem in expected.keys() {
        assert!(
            files.contains_key(*stem),
            "expected fixture {stem}.json is missing"
        );
    }
}

#[test]
fn every_event_the_codec_writes_has_a_fixture_of_its_version() {
    let files = files("events");
    for event in expected_events().values() {
        let stem = format!("{}.v{}", event.event_type(), event.schema_version());
        assert!(
            files.contains_key(&stem),
            "the codec writes {stem} but crates/domain/fixtures/events/{stem}.json does not exist; \
             add it with this content (the stored payload), and keep the older versions' files:\n{}",
            event.to_payload()
        );
    }
}

#[test]
fn every_snapshot_fixture_decodes_and_the_current_version_has_one() {
    let files = files("snapshots");
    let expected = expected_snapshots();
    for (stem, state) in &files {
        let want = expected.get(stem.as_str()).unwrap_or_else(|| {
            panic!("snapshot fixture {stem} has no expected state in golden.rs")
        });
        let (aggregate_type, version) = type_and_version(stem);
        assert_eq!(aggregate_type, OrderAggregate::TYPE, "fixture {stem}");
        if version == OrderAggregate::SNAPSHOT_VERSION {
            let decoded: OrderAggregate = serde_json::from_value(state.clone())
                .unwrap_or_else(|e| panic!("snapshot fixture {stem}: {e}"));
            assert_eq!(&decoded, want, "snapshot fixture {stem}");
        }
        // Older snapshot versions are never decoded: the store ignores them and replays.
    }
    let current = format!(
        "{}.v{}",
        OrderAggregate::TYPE,
        OrderAggregate::SNAPSHOT_VERSION
    );
    let state = expected
        .get(current.as_str())
        .map(|state| serde_json::to_string(state).unwrap())
        .unwrap_or_default();
    assert!(
        files.contains_key(&current),
        "snapshots are written at {current} but crates/domain/fixtures/snapshots/{current}.json \
         does not exist; add it (and an expected state in golden.rs) with:\n{state}"
    );
}
