//! The store-wide feed.

use uuid::Uuid;

use super::events;
use crate::{EventStore, EventStoreError, ExpectedVersion, RecordedEvent};

async fn read_from<S: EventStore>(
    store: &S,
    mut after: u64,
    until: (Uuid, u64),
) -> Vec<RecordedEvent> {
    let mut all = Vec::new();
    loop {
        let page = store.read_all(after, 7).await.unwrap();
        assert!(!page.is_empty(), "the feed ended before {until:?}");
        after = page.last().and_then(|e| e.position).unwrap();
        let done = page.iter().any(|e| (e.aggregate_id, e.version) == until);
        all.extend(page);
        if done {
            return all;
        }
    }
}

/// Positions are dense (each one more than the last) and each stream appears in version order.
pub async fn read_all_is_dense_and_in_stream_order<S: EventStore>(store: S) {
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    let first = store
        .append_events(a, ExpectedVersion::NoStream, events(3))
        .await
        .unwrap();
    let start = store.global_position(a, first.first_version).await.unwrap() - 1;
    store
        .append_events(b, ExpectedVersion::NoStream, events(2))
        .await
        .unwrap();
    store
        .append_events(a, ExpectedVersion::Exact(3), events(2))
        .await
        .unwrap();
    store
        .append_events(b, ExpectedVersion::Exact(2), events(1))
        .await
        .unwrap();
    store.global_position(b, 3).await.unwrap();

    let feed = read_from(&store, start, (b, 3)).await;
    for pair in feed.windows(2) {
        assert_eq!(
            pair[1].position.unwrap(),
            pair[0].position.unwrap() + 1,
            "feed must be dense"
        );
    }
    for stream in [a, b] {
        let versions: Vec<u64> = feed
            .iter()
            .filter(|e| e.aggregate_id == stream)
            .map(|e| e.version)
            .collect();
        let expected: Vec<u64> = (1..=versions.len() as u64).collect();
        assert_eq!(
            versions, expected,
            "stream {stream} out of order in the feed"
        );
    }
    assert_eq!(feed.iter().filter(|e| e.aggregate_id == a).count(), 5);
    assert_eq!(feed.iter().filter(|e| e.aggregate_id == b).count(), 3);
}

/// `global_position` agrees with the position the feed and `load_events` report.
pub async fn global_position_matches_the_feed<S: EventStore>(store: S) {
    let id = Uuid::now_v7();
    store
        .append_events(id, ExpectedVersion::NoStream, events(2))
        .await
        .unwrap();
    let position = store.global_position(id, 2).await.unwrap();
    let at = store.read_all(position - 1, 1).await.unwrap();
    assert_eq!((at[0].aggregate_id, at[0].version), (id, 2));
    let loaded = store.load_events(id).await.unwrap();
    assert_eq!(loaded[1].position, Some(position));
    let err = store.global_position(id, 3).await.unwrap_err();
    assert!(
        matches!(err, crate::EventStoreError::EventNotFound { .. }),
        "{err:?}"
    );
}

/// `position_of` never waits: once the feed has numbered an event it agrees with
/// `global_position`; an event that is not stored is `EventNotFound`.
pub async fn position_of_agrees_with_the_feed<S: EventStore>(store: S) {
    let id = Uuid::now_v7();
    let appended = store.append_events(id, 0, super::events(2)).await.unwrap();
    if let Some(position) = appended.last_position {
        assert_eq!(store.position_of(id, 2).await.unwrap(), Some(position));
    }
    let numbered = store.global_position(id, 2).await.unwrap();
    assert_eq!(store.position_of(id, 2).await.unwrap(), Some(numbered));
    assert_eq!(store.position_of(id, 1).await.unwrap(), Some(numbered - 1));
    let missing = store.position_of(id, 3).await.unwrap_err();
    assert!(
        matches!(missing, EventStoreError::EventNotFound { version: 3, .. }),
        "{missing:?}"
    );
    let loaded = store.load_events(id).await.unwrap();
    assert_eq!(loaded[1].position, Some(numbered));
}

/// `read_feed` hands out the very events `read_all` does, payload and metadata as JSON text that
/// parses to the stored values (unicode and nesting included).
pub async fn read_feed_agrees_with_read_all<S: EventStore>(store: S) {
    let id = Uuid::now_v7();
    let stored = vec![
        crate::NewEvent::new(
            "Test",
            "Tested",
            2,
            serde_json::json!({"text": "crème brûlée ✓ \"quoted\"", "nested": {"n": [1, 2.5, null]}}),
        )
        .with_metadata(serde_json::json!({"correlation_id": "c-1", "user": {"id": "u-1"}})),
        crate::NewEvent::new("Test", "Tested", 1, serde_json::json!({})),
    ];
    store
        .append_events(id, ExpectedVersion::NoStream, stored)
        .await
        .unwrap();
    let first = store.global_position(id, 1).await.unwrap();
    let last = store.global_position(id, 2).await.unwrap();
    let limit = usize::try_from(last - first + 1).unwrap();
    let parsed = store.read_all(first - 1, limit).await.unwrap();
    let raw = store.read_feed(first - 1, limit).await.unwrap();
    assert_eq!(raw.len(), limit);
    for (raw, parsed) in raw.iter().zip(&parsed) {
        assert_eq!(
            (
                raw.event_id,
                raw.aggregate_id,
                raw.version,
                Some(raw.position)
            ),
            (
                parsed.event_id,
                parsed.aggregate_id,
                parsed.version,
                parsed.position
            )
        );
        assert_eq!(
            (&raw.event_type, raw.schema_version, raw.recorded_at),
            (
                &parsed.event_type,
                parsed.schema_version,
                parsed.recorded_at
            )
        );
        let payload: serde_json::Value = serde_json::from_str(raw.payload.get()).unwrap();
        let metadata: serde_json::Value = serde_json::from_str(raw.metadata.get()).unwrap();
        assert_eq!((&payload, &metadata), (&parsed.payload, &parsed.metadata));
    }
    let ours: Vec<_> = raw.iter().filter(|e| e.aggregate_id == id).collect();
    assert_eq!(ours.len(), 2);
    assert_eq!((ours[0].position, ours[1].position), (first, last));
    assert_eq!(ours[0].schema_version, 2);
    let text: serde_json::Value = serde_json::from_str(ours[0].payload.get()).unwrap();
    assert_eq!(text["text"], "crème brûlée ✓ \"quoted\"");
}

/// The head covers every numbered event, and a position's commit time is its event's.
pub async fn head_and_commit_times_follow_the_feed<S: EventStore>(store: S) {
    let id = Uuid::now_v7();
    store
        .append_events(id, ExpectedVersion::NoStream, events(2))
        .await
        .unwrap();
    let position = store.global_position(id, 2).await.unwrap();
    assert!(store.head().await.unwrap() >= position);
    let event = store.read_all(position - 1, 1).await.unwrap().remove(0);
    assert_eq!((event.aggregate_id, event.version), (id, 2));
    assert_eq!(
        store.committed_at(position).await.unwrap(),
        Some(event.recorded_at)
    );
    let beyond = store.head().await.unwrap() + 1_000_000;
    assert_eq!(store.committed_at(beyond).await.unwrap(), None);
    assert_eq!(store.committed_at(0).await.unwrap(), None);
}

/// A wake-up receiver ticks until an append is readable: a consumer that reads on every tick
/// (and polls as well) never sleeps past a new event.
pub async fn wakeups_tick_until_an_append_is_readable<S: EventStore>(store: S) {
    let mut first = store.wakeups();
    let mut second = store.wakeups();
    let id = Uuid::now_v7();
    store
        .append_events(id, ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    for wakeups in [&mut first, &mut second] {
        loop {
            let woke =
                tokio::time::timeout(std::time::Duration::from_secs(10), wakeups.changed()).await;
            assert!(woke.is_ok(), "no wake-up within 10 s of an append");
            if store.position_of(id, 1).await.unwrap().is_some() {
                break;
            }
        }
    }
}

/// A running store numbers what commits: nothing waits long for a position.
pub async fn the_feed_is_not_held_back<S: EventStore>(store: S) {
    let id = Uuid::now_v7();
    store
        .append_events(id, ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    store.global_position(id, 1).await.unwrap();
    let backlog = store.backlog().await.unwrap();
    assert!(
        backlog.oldest_age < std::time::Duration::from_secs(10),
        "{backlog:?}"
    );
    if backlog.events == 0 {
        assert_eq!(backlog.oldest_age, std::time::Duration::ZERO);
    }
}
