//! The global feed under concurrency, on a real PostgreSQL: many writers over many streams, some
//! transactions rolled back on purpose, one deliberately slow transaction, and readers running the
//! whole time. Each reader must receive every committed event exactly once, in per-stream version
//! order, densely numbered, and never an event that was rolled back.
#![allow(clippy::unwrap_used)] // test code

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use event_store::{EventStore, ExpectedVersion, Feed, NewEvent, RecordedEvent};
use event_store_postgres::{PostgresEventStore, PostgresOptions};
use serde_json::json;
use tokio::sync::Mutex;
use uuid::Uuid;

const WRITERS: usize = 12;
const APPENDS_PER_WRITER: usize = 40;
const STREAMS_PER_WRITER: usize = 4;
const ROLLBACKS: usize = 30;
const READERS: usize = 3;

async fn store() -> PostgresEventStore {
    let url = test_support::postgres::fresh_database_url().await;
    let options = PostgresOptions {
        max_connections: 40,
        ..Default::default()
    };
    let store = PostgresEventStore::connect(&url, options).await.unwrap();
    store.migrate().await.unwrap();
    store
}

/// Inserts one event the way an append does (event row plus sequencer queue row) inside an
/// explicit transaction, holds it open for `hold`, then commits or rolls back. Returns its id.
async fn write_in_transaction(
    store: &PostgresEventStore,
    event_type: &str,
    hold: Duration,
    commit: bool,
) -> Uuid {
    let event_id = Uuid::now_v7();
    let mut tx = store.pool().begin().await.unwrap();
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO events (event_id, aggregate_id, aggregate_type, version, event_type, schema_version, payload, metadata)
         VALUES ($1, $2, 'Test', 1, $3, 1, '{}', '{}') RETURNING seq",
    )
    .bind(event_id)
    .bind(Uuid::now_v7())
    .bind(event_type)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    sqlx::query("INSERT INTO feed_queue (seq) VALUES ($1)")
        .bind(seq)
        .execute(&mut *tx)
        .await
        .unwrap();
    tokio::time::sleep(hold).await;
    if commit {
        tx.commit().await.unwrap();
    } else {
        tx.rollback().await.unwrap();
    }
    event_id
}

async fn read_until(
    store: PostgresEventStore,
    done: Arc<Mutex<Option<usize>>>,
) -> Vec<RecordedEvent> {
    let (mut seen, mut after) = (Vec::new(), 0);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let page = store.read_all(after, 97).await.unwrap();
        if let Some(last) = page.last() {
            after = last.position.unwrap();
        }
        let empty = page.is_empty();
        seen.extend(page);
        if empty {
            if done.lock().await.is_some_and(|total| seen.len() >= total) {
                return seen;
            }
            assert!(
                Instant::now() < deadline,
                "reader stalled at position {after}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_see_every_committed_event_exactly_once_in_stream_order() {
    let store = store().await;
    let done = Arc::new(Mutex::new(None));
    let readers: Vec<_> = (0..READERS)
        .map(|_| tokio::spawn(read_until(store.clone(), done.clone())))
        .collect();

    let slow = {
        let store = store.clone();
        tokio::spawn(async move {
            write_in_transaction(&store, "Slow", Duration::from_secs(2), true).await
        })
    };
    let rollbacks = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..ROLLBACKS {
                ids.push(
                    write_in_transaction(&store, "RolledBack", Duration::from_millis(5), false)
                        .await,
                );
            }
            ids
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let streams: Vec<Uuid> = (0..STREAMS_PER_WRITER).map(|_| Uuid::now_v7()).collect();
                let mut versions = [0_u64; STREAMS_PER_WRITER];
                let mut committed = Vec::new();
                for i in 0..APPENDS_PER_WRITER {
                    let s = (i + w) % STREAMS_PER_WRITER;
                    let batch: Vec<NewEvent> = (0..1 + i % 3)
                        .map(|n| {
                            NewEvent::new(
                                "Test",
                                "Written",
                                1,
                                json!({ "writer": w, "i": i, "n": n }),
                            )
                        })
                        .collect();
                    committed.extend(batch.iter().map(|e| e.event_id));
                    let result = store
                        .append_events(streams[s], ExpectedVersion::Exact(versions[s]), batch)
                        .await
                        .unwrap();
                    versions[s] = result.last_version;
                }
                committed
            })
        })
        .collect();

    let mut committed: HashSet<Uuid> = HashSet::new();
    for writer in writers {
        committed.extend(writer.await.unwrap());
    }
    committed.insert(slow.await.unwrap());
    let rolled_back: HashSet<Uuid> = rollbacks.await.unwrap().into_iter().collect();
    *done.lock().await = Some(committed.len());

    for reader in readers {
        let seen = reader.await.unwrap();
        let positions: Vec<u64> = seen.iter().map(|e| e.position.unwrap()).collect();
        assert_eq!(
            positions,
            (1..=seen.len() as u64).collect::<Vec<_>>(),
            "positions must be dense, each once"
        );
        let ids: HashSet<Uuid> = seen.iter().map(|e| e.event_id).collect();
        assert_eq!(ids.len(), seen.len(), "an event was delivered twice");
        assert_eq!(
            ids, committed,
            "the feed must hold exactly the committed events"
        );
        assert!(
            ids.is_disjoint(&rolled_back),
            "a rolled-back event reached a reader"
        );
        let mut last_version: HashMap<Uuid, u64> = HashMap::new();
        for event in &seen {
            let previous = last_version
                .insert(event.aggregate_id, event.version)
                .unwrap_or(0);
            assert_eq!(
                event.version,
                previous + 1,
                "stream {} out of order in the feed",
                event.aggregate_id
            );
        }
    }
}
