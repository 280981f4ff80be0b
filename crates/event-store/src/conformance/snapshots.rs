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

/// The latest snapshot wins; saving an older one does not replace a newer one.
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
    store.save_snapshot(snapshot(id, 20)).await.unwrap();
    assert_eq!(
        store.load_snapshot(id).await.unwrap(),
        Some(snapshot(id, 20))
    );
}
