//! Appending and loading one stream.

use serde_json::json;
use uuid::Uuid;

use super::events;
use crate::{
    AppendRequest, EventStore, EventStoreError, ExpectedVersion, IdempotencyRecord, NewEvent,
};

/// One event in, the same event out, at version 1.
pub async fn appends_and_loads_one_event<S: EventStore>(store: S) {
    let id = Uuid::now_v7();
    let event = NewEvent::new("Test", "Tested", 3, json!({"amount_minor": 1050}))
        .with_metadata(json!({"correlation_id": Uuid::now_v7()}));
    let result = store
        .append_events(id, ExpectedVersion::NoStream, vec![event.clone()])
        .await
        .unwrap();
    assert_eq!(
        (
            result.first_version,
            result.last_version,
            result.deduplicated
        ),
        (1, 1, false)
    );

    let loaded = store.load_events(id).await.unwrap();
    assert_eq!(loaded.len(), 1);
    let stored = &loaded[0];
    assert_eq!(stored.event_id, event.event_id);
    assert_eq!(stored.aggregate_id, id);
    assert_eq!(stored.aggregate_type, "Test");
    assert_eq!(stored.version, 1);
    assert_eq!(stored.event_type, "Tested");
    assert_eq!(stored.schema_version, 3);
    assert_eq!(stored.payload, event.payload);
    assert_eq!(stored.metadata, event.metadata);
}

/// A batch gets contiguous versions in batch order, after what was there.
pub async fn appends_and_loads_many_events_in_order<S: EventStore>(store: S) {
    let id = Uuid::now_v7();
    store
        .append_events(id, ExpectedVersion::NoStream, events(3))
        .await
        .unwrap();
    let result = store
        .append_events(id, ExpectedVersion::Exact(3), events(5))
        .await
        .unwrap();
    assert_eq!((result.first_version, result.last_version), (4, 8));

    let loaded = store.load_events(id).await.unwrap();
    let versions: Vec<u64> = loaded.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=8).collect::<Vec<_>>());
    let order: Vec<i64> = loaded
        .iter()
        .map(|e| e.payload["n"].as_i64().unwrap())
        .collect();
    assert_eq!(order, vec![0, 1, 2, 0, 1, 2, 3, 4]);
}

/// The seed design's `append_events(id, 0, …)` still means "create the stream".
pub async fn zero_from_old_callers_creates_a_new_stream<S: EventStore>(store: S) {
    let id = Uuid::now_v7();
    store.append_events(id, 0, events(1)).await.unwrap();
    let err = store.append_events(id, 0, events(1)).await.unwrap_err();
    assert!(err.is_conflict(), "{err:?}");
    let err = store
        .append_events(id, -3_i64, events(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, EventStoreError::InvalidExpectedVersion(-3)),
        "{err:?}"
    );
    assert_eq!(store.get_current_version(id).await.unwrap(), 1);
}

/// `NoStream` fails on a stream that exists and reports its version.
pub async fn no_stream_rejects_an_existing_stream<S: EventStore>(store: S) {
    let id = Uuid::now_v7();
    store
        .append_events(id, ExpectedVersion::NoStream, events(2))
        .await
        .unwrap();
    let err = store
        .append_events(id, ExpectedVersion::NoStream, events(1))
        .await
        .unwrap_err();
    match err {
        EventStoreError::Conflict {
            aggregate_id,
            expected,
            actual,
        } => {
            assert_eq!(
                (aggregate_id, expected, actual),
                (id, ExpectedVersion::NoStream, 2)
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// `StreamExists` fails on a missing stream and succeeds on any existing one.
pub async fn stream_exists_requires_the_stream<S: EventStore>(store: S) {
    let id = Uuid::now_v7();
    let err = store
        .append_events(id, ExpectedVersion::StreamExists, events(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, EventStoreError::Conflict { actual: 0, .. }),
        "{err:?}"
    );
    assert_eq!(store.get_current_version(id).await.unwrap(), 0);

    store
        .append_events(id, ExpectedVersion::NoStream, events(2))
        .await
        .unwrap();
    let result = store
        .append_events(id, ExpectedVersion::StreamExists, events(1))
        .await
        .unwrap();
    assert_eq!(result.last_version, 3);
}

/// `Exact(n)` fails whether the stream is behind or ahead of `n`.
pub async fn exact_version_must_match<S: EventStore>(store: S) {
    let id = Uuid::now_v7();
    store
        .append_events(id, ExpectedVersion::Exact(0), events(2))
        .await
        .unwrap();
    for wrong in [1, 3, 7] {
        let err = store
            .append_events(id, ExpectedVersion::Exact(wrong), events(1))
            .await
            .unwrap_err();
        match err {
            EventStoreError::Conflict {
                expected, actual, ..
            } => {
                assert_eq!((expected, actual), (ExpectedVersion::Exact(wrong), 2));
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    let ok = store
        .append_events(id, ExpectedVersion::Exact(2), events(1))
        .await
        .unwrap();
    assert_eq!(ok.last_version, 3);
}

/// `Any` creates or extends.
pub async fn any_appends_after_whatever_is_there<S: EventStore>(store: S) {
    let id = Uuid::now_v7();
    assert_eq!(
        store
            .append_events(id, ExpectedVersion::Any, events(2))
            .await
            .unwrap()
            .last_version,
        2
    );
    assert_eq!(
        store
            .append_events(id, ExpectedVersion::Any, events(1))
            .await
            .unwrap()
            .last_version,
        3
    );
}

/// All or nothing: a batch that fails its check leaves the stream as it was.
pub async fn a_rejected_append_writes_nothing<S: EventStore>(store: S) {
    let id = Uuid::now_v7();
    store
        .append_events(id, ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    let rejected = events(3);
    store
        .append_events(id, ExpectedVersion::Exact(5), rejected.clone())
        .await
        .unwrap_err();
    assert_eq!(store.load_events(id).await.unwrap().len(), 1);
    // The rejected ids are free: the same batch appends cleanly with the right version.
    let ok = store
        .append_events(id, ExpectedVersion::Exact(1), rejected)
        .await
        .unwrap();
    assert_eq!(
        (ok.first_version, ok.last_version, ok.deduplicated),
        (2, 4, false)
    );
}

/// A retry of an append that already succeeded reports the original result and writes nothing,
/// even though its expected version is now stale.
pub async fn reappending_the_same_events_is_a_no_op<S: EventStore>(store: S) {
    let id = Uuid::now_v7();
    store
        .append_events(id, ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    let batch = events(2);
    let first = store
        .append_events(id, ExpectedVersion::Exact(1), batch.clone())
        .await
        .unwrap();
    for expected in [
        ExpectedVersion::Exact(1),
        ExpectedVersion::Any,
        ExpectedVersion::NoStream,
    ] {
        let again = store
            .append_events(id, expected, batch.clone())
            .await
            .unwrap();
        assert!(again.deduplicated);
        assert_eq!(
            (again.first_version, again.last_version),
            (first.first_version, first.last_version)
        );
    }
    assert_eq!(store.get_current_version(id).await.unwrap(), 3);
}

/// Re-using some ids of an earlier batch, or an id of another stream, is not a retry.
pub async fn a_partial_or_foreign_duplicate_is_rejected<S: EventStore>(store: S) {
    let (id, other) = (Uuid::now_v7(), Uuid::now_v7());
    let batch = events(2);
    store
        .append_events(id, ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();

    let mut partial = vec![batch[0].clone()];
    partial.extend(events(1));
    let err = store
        .append_events(id, ExpectedVersion::Any, partial)
        .await
        .unwrap_err();
    assert!(
        matches!(err, EventStoreError::DuplicateEvent { .. }),
        "{err:?}"
    );

    let err = store
        .append_events(other, ExpectedVersion::Any, vec![batch[1].clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(err, EventStoreError::DuplicateEvent { .. }),
        "{err:?}"
    );
    assert_eq!(store.get_current_version(id).await.unwrap(), 2);
    assert_eq!(store.get_current_version(other).await.unwrap(), 0);
}

/// Empty batches, mixed aggregate types and repeated ids are refused before any write.
pub async fn invalid_appends_are_rejected<S: EventStore>(store: S) {
    let id = Uuid::now_v7();
    let err = store
        .append_events(id, ExpectedVersion::Any, vec![])
        .await
        .unwrap_err();
    assert!(matches!(err, EventStoreError::InvalidAppend(_)), "{err:?}");

    let mixed = vec![
        events(1).remove(0),
        NewEvent::new("Other", "Tested", 1, json!({})),
    ];
    let err = store
        .append_events(id, ExpectedVersion::Any, mixed)
        .await
        .unwrap_err();
    assert!(matches!(err, EventStoreError::InvalidAppend(_)), "{err:?}");

    let one = events(1).remove(0);
    let err = store
        .append_events(id, ExpectedVersion::Any, vec![one.clone(), one])
        .await
        .unwrap_err();
    assert!(matches!(err, EventStoreError::InvalidAppend(_)), "{err:?}");
    assert_eq!(store.get_current_version(id).await.unwrap(), 0);
}

/// `load_events_from_version(n)` returns the events with version ≥ n.
pub async fn load_from_version_returns_the_tail<S: EventStore>(store: S) {
    let id = Uuid::now_v7();
    store
        .append_events(id, ExpectedVersion::NoStream, events(10))
        .await
        .unwrap();
    let tail = store.load_events_from_version(id, 7).await.unwrap();
    assert_eq!(
        tail.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![7, 8, 9, 10]
    );
    assert!(
        store
            .load_events_from_version(id, 11)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.load_events(Uuid::now_v7()).await.unwrap().is_empty());
}

/// The current version is the number of events; 0 for a stream that does not exist.
pub async fn current_version_counts_events<S: EventStore>(store: S) {
    let id = Uuid::now_v7();
    assert_eq!(store.get_current_version(id).await.unwrap(), 0);
    store
        .append_events(id, ExpectedVersion::NoStream, events(4))
        .await
        .unwrap();
    assert_eq!(store.get_current_version(id).await.unwrap(), 4);
}

/// A 1 MiB payload is stored and loaded intact.
pub async fn large_payloads_round_trip<S: EventStore>(store: S) {
    let id = Uuid::now_v7();
    let blob = "x".repeat(1024 * 1024);
    let event = NewEvent::new("Test", "Large", 1, json!({ "blob": blob }));
    store
        .append_events(id, ExpectedVersion::NoStream, vec![event])
        .await
        .unwrap();
    let loaded = store.load_events(id).await.unwrap();
    assert_eq!(
        loaded[0].payload["blob"].as_str().map(str::len),
        Some(1024 * 1024)
    );
}

/// Non-ASCII text in payload, metadata and type names survives.
pub async fn unicode_round_trips<S: EventStore>(store: S) {
    let id = Uuid::now_v7();
    let text = "Zürich – 東京 – Ελλάδα – 🚚📦 – \u{202e}rtl";
    let event = NewEvent::new("Test", "Geliefert✓", 1, json!({ "note": text }))
        .with_metadata(json!({ "user_id": "josé" }));
    store
        .append_events(id, ExpectedVersion::NoStream, vec![event])
        .await
        .unwrap();
    let loaded = store.load_events(id).await.unwrap();
    assert_eq!(loaded[0].event_type, "Geliefert✓");
    assert_eq!(loaded[0].payload["note"], text);
    assert_eq!(loaded[0].metadata["user_id"], "josé");
}

fn record(scope: &str, key: &str) -> IdempotencyRecord {
    IdempotencyRecord {
        scope: scope.into(),
        key: key.into(),
        request_hash: "h1".into(),
        response: json!({"status": 201}),
    }
}

/// The idempotency record is readable after the append that carried it.
pub async fn idempotency_record_is_written_with_the_append<S: EventStore>(store: S) {
    let (id, scope) = (Uuid::now_v7(), Uuid::now_v7().to_string());
    assert_eq!(
        store.find_idempotency_record(&scope, "k1").await.unwrap(),
        None
    );
    let request = AppendRequest {
        aggregate_id: id,
        expected: ExpectedVersion::NoStream,
        events: events(1),
        idempotency: Some(record(&scope, "k1")),
    };
    store.append(request).await.unwrap();
    assert_eq!(
        store.find_idempotency_record(&scope, "k1").await.unwrap(),
        Some(record(&scope, "k1"))
    );
    // Keys are per scope.
    assert_eq!(
        store
            .find_idempotency_record("someone-else", "k1")
            .await
            .unwrap(),
        None
    );
}

/// Purging removes the records older than the given age, and only those; a purged key can be
/// used again. (Other tests sharing the database keep their records: they are younger than the
/// second this waits.)
pub async fn idempotency_records_expire<S: EventStore>(store: S) {
    let (id, scope) = (Uuid::now_v7(), Uuid::now_v7().to_string());
    let append = |id, expected| AppendRequest {
        aggregate_id: id,
        expected,
        events: events(1),
        idempotency: Some(record(&scope, "k")),
    };
    store
        .append(append(id, ExpectedVersion::NoStream))
        .await
        .unwrap();
    let young = store
        .purge_idempotency_records(std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(young, 0, "no record of a test database is an hour old");
    assert_eq!(
        store.find_idempotency_record(&scope, "k").await.unwrap(),
        Some(record(&scope, "k")),
        "a record younger than the age is kept"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let purged = store
        .purge_idempotency_records(std::time::Duration::from_secs(1))
        .await
        .unwrap();
    assert!(purged >= 1, "purged {purged}");
    assert_eq!(
        store.find_idempotency_record(&scope, "k").await.unwrap(),
        None,
        "an older record is gone"
    );
    assert_eq!(
        store.load_events(id).await.unwrap().len(),
        1,
        "events are never purged"
    );
    let again = store
        .append(append(Uuid::now_v7(), ExpectedVersion::NoStream))
        .await
        .unwrap();
    assert!(!again.deduplicated, "the key is free again: {again:?}");
}

/// An append under a key already used fails and leaves the stream untouched.
pub async fn a_used_idempotency_key_writes_nothing<S: EventStore>(store: S) {
    let (id, scope) = (Uuid::now_v7(), Uuid::now_v7().to_string());
    let append = |events| AppendRequest {
        aggregate_id: id,
        expected: ExpectedVersion::Any,
        events,
        idempotency: Some(record(&scope, "k")),
    };
    store.append(append(events(1))).await.unwrap();
    let err = store.append(append(events(2))).await.unwrap_err();
    assert!(
        matches!(err, EventStoreError::IdempotencyKeyUsed { .. }),
        "{err:?}"
    );
    assert_eq!(store.get_current_version(id).await.unwrap(), 1);
}
