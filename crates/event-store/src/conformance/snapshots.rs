//! Snapshots.

use serde_json::json;
use uuid::Uuid;

use crate::{EventStore, Snapshot};

fn snapshot(id: Uuid, version: u64) -> Snapshot {
    Snapshot {
        aggregate_id: id,
        aggregate_type: "Test".into(),
        version,
        schema_version: 2,
        state: json!({ "seen": version, "name": "Ünïcode" }),
    }
}

/// The latest snapshot wins; saving an older one does not replace a newer one, and one at the same
/// version replaces the one there.
pub async fn snapshots_keep_the_latest<S: EventStore>(store: S) {
    let id = Uuid::now_v7();
    assert_eq!(store.load_snapshot(id).await.unwrap(), None);
    store.save_snapshot(snapshot(id, 10)).await.unwrap();
    assert_eq!(
        store.load_snapshot(id).await.unwrap(),
        Some(snapshot(id, 10))
    );
    store.save_snapshot(snapshot(id, 20)).await.unwrap();
    store.save_snapshot(snapshot(id, 15)).await.unwrap();
    assert_eq!(
        store.load_snapshot(id).await.unwrap(),
        Some(snapshot(id, 20))
    );
    // Another snapshot at the same version (a new schema of the state, say) replaces it.
    let mut rewritten = snapshot(id, 20);
    rewritten.schema_version = 3;
    rewritten.state = json!({ "seen": 20, "rewritten": true });
    store.save_snapshot(rewritten.clone()).await.unwrap();
    assert_eq!(store.load_snapshot(id).await.unwrap(), Some(rewritten));
}

fn filter(schema_version: u32) -> crate::SnapshotFilter {
    crate::SnapshotFilter {
        aggregate_type: "Test".into(),
        schema_version,
    }
}

/// `load_stream` starts after a snapshot only if it matches the filter; without one it returns
/// the whole stream. A stream that does not exist loads as empty.
pub async fn load_stream_starts_after_a_matching_snapshot<S: EventStore>(store: S) {
    let id = Uuid::now_v7();
    let empty = store
        .load_stream(crate::LoadRequest::stream(id))
        .await
        .unwrap();
    assert_eq!(
        (empty.snapshot, empty.events.len(), empty.idempotency),
        (None, 0, None)
    );

    store.append_events(id, 0, super::events(3)).await.unwrap();
    store.save_snapshot(snapshot(id, 2)).await.unwrap();
    let versions =
        |load: &crate::StreamLoad| load.events.iter().map(|e| e.version).collect::<Vec<_>>();

    let mut request = crate::LoadRequest::stream(id);
    request.snapshot = Some(filter(2));
    let from_snapshot = store.load_stream(request.clone()).await.unwrap();
    assert_eq!(from_snapshot.snapshot, Some(snapshot(id, 2)));
    assert_eq!(versions(&from_snapshot), vec![3]);
    assert_eq!(from_snapshot.events[0].payload, json!({ "n": 2 }));

    request.snapshot = Some(filter(1)); // another schema: ignored, the whole stream replayed
    let other_schema = store.load_stream(request.clone()).await.unwrap();
    assert_eq!(
        (&other_schema.snapshot, versions(&other_schema)),
        (&None, vec![1, 2, 3])
    );

    request.snapshot = Some(crate::SnapshotFilter {
        aggregate_type: "Other".into(),
        schema_version: 2,
    });
    let other_type = store.load_stream(request).await.unwrap();
    assert_eq!(
        (&other_type.snapshot, versions(&other_type)),
        (&None, vec![1, 2, 3])
    );

    let whole = store
        .load_stream(crate::LoadRequest::stream(id))
        .await
        .unwrap();
    assert_eq!((&whole.snapshot, versions(&whole)), (&None, vec![1, 2, 3]));

    store.save_snapshot(snapshot(id, 3)).await.unwrap();
    let mut request = crate::LoadRequest::stream(id);
    request.snapshot = Some(filter(2));
    let covered = store.load_stream(request).await.unwrap();
    assert_eq!(
        (covered.snapshot.map(|s| s.version), covered.events.len()),
        (Some(3), 0)
    );
}

/// `load_stream` returns the idempotency record it is asked for, and only that one.
pub async fn load_stream_returns_the_idempotency_record<S: EventStore>(store: S) {
    let id = Uuid::now_v7();
    let scope = format!("scope-{id}");
    let record = crate::IdempotencyRecord {
        scope: scope.clone(),
        key: "k1".into(),
        request_hash: "h1".into(),
        response: json!({ "status": 201 }),
    };
    store
        .append(crate::AppendRequest {
            aggregate_id: id,
            expected: crate::ExpectedVersion::NoStream,
            events: super::events(1),
            idempotency: Some(record.clone()),
        })
        .await
        .unwrap();
    let lookup = |key: &str| crate::IdempotencyLookup {
        scope: scope.clone(),
        key: key.into(),
    };
    let mut request = crate::LoadRequest::stream(id);
    request.idempotency = Some(lookup("k1"));
    let found = store.load_stream(request.clone()).await.unwrap();
    assert_eq!(found.idempotency, Some(record));
    assert_eq!(found.events.len(), 1);

    request.idempotency = Some(lookup("k2"));
    assert_eq!(
        store
            .load_stream(request.clone())
            .await
            .unwrap()
            .idempotency,
        None
    );

    // The record is found even when the stream asked about is another one (or does not exist).
    request.aggregate_id = Uuid::now_v7();
    request.idempotency = Some(lookup("k1"));
    let elsewhere = store.load_stream(request).await.unwrap();
    assert_eq!(
        (elsewhere.idempotency.is_some(), elsewhere.events.len()),
        (true, 0)
    );
}

/// A snapshot beyond the stream's last event (damaged, or restored from another database) is
/// ignored by `load_stream`: the whole stream is returned instead of nothing.
pub async fn load_stream_ignores_a_snapshot_beyond_the_stream<S: EventStore>(store: S) {
    let id = Uuid::now_v7();
    store.append_events(id, 0, super::events(3)).await.unwrap();
    store.save_snapshot(snapshot(id, 10)).await.unwrap();
    let mut request = crate::LoadRequest::stream(id);
    request.snapshot = Some(filter(2));
    let loaded = store.load_stream(request.clone()).await.unwrap();
    assert_eq!(
        loaded.snapshot, None,
        "a snapshot at 10 of a 3-event stream"
    );
    assert_eq!(
        loaded.events.iter().map(|e| e.version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    // Once the stream reaches it, the same snapshot is used, and nothing follows it.
    store.append_events(id, 3, super::events(7)).await.unwrap();
    let loaded = store.load_stream(request).await.unwrap();
    assert_eq!(loaded.snapshot.map(|s| s.version), Some(10));
    assert!(loaded.events.is_empty());
}
