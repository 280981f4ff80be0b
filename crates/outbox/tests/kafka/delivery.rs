//! Every committed event arrives exactly once after dedupe, in version order per order, with the
//! right key and headers; an event of a rolled-back transaction never arrives.

use std::collections::HashMap;
use std::time::Duration;

use event_store::EventStore;
use event_store_postgres::PostgresEventStore;
use event_store_sqlite::SqliteEventStore;
use outbox::event::headers;
use uuid::Uuid;

use crate::harness::{Setup, assert_matches_store, consume, load, setup, setup_sqlite};

/// A write that rolls back, on a backend's own tables.
pub trait RolledBackWrite {
    /// Inserts an event the way an append does in an explicit transaction, holds it open a
    /// moment, then rolls it back; returns its event id.
    fn rolled_back_write(&self, order: Uuid, version: i64) -> impl Future<Output = Uuid> + Send;
}

impl RolledBackWrite for PostgresEventStore {
    async fn rolled_back_write(&self, order: Uuid, version: i64) -> Uuid {
        let event_id = Uuid::now_v7();
        let mut tx = self.pool().begin().await.unwrap();
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO events (event_id, aggregate_id, aggregate_type, version, event_type, schema_version, payload, metadata)
             VALUES ($1, $2, 'Order', $3, 'RolledBack', 1, '{}', '{}') RETURNING seq",
        )
        .bind(event_id)
        .bind(order)
        .bind(version)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        sqlx::query("INSERT INTO feed_queue (seq) VALUES ($1)")
            .bind(seq)
            .execute(&mut *tx)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.rollback().await.unwrap();
        event_id
    }
}

impl RolledBackWrite for SqliteEventStore {
    async fn rolled_back_write(&self, order: Uuid, version: i64) -> Uuid {
        let event_id = Uuid::now_v7();
        let mut tx = self.writer().begin().await.unwrap();
        // The position is taken at insert (AUTOINCREMENT); a rollback gives it back.
        sqlx::query(
            "INSERT INTO events (event_id, aggregate_id, aggregate_type, version, event_type, schema_version, payload, metadata, recorded_at)
             VALUES (?1, ?2, 'Order', ?3, 'RolledBack', 1, '{}', '{}', '2026-01-01T00:00:00Z')",
        )
        .bind(event_id.hyphenated().to_string())
        .bind(order.hyphenated().to_string())
        .bind(version)
        .execute(&mut *tx)
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.rollback().await.unwrap();
        event_id
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_event_arrives_once_in_order_and_no_rolled_back_one() {
    every_committed_event_arrives_once(setup().await).await;
}

/// The same on SQLite, the default backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_every_committed_event_arrives_once_in_order_and_no_rolled_back_one() {
    every_committed_event_arrives_once(setup_sqlite().await).await;
}

async fn every_committed_event_arrives_once<S>(setup: Setup<S>)
where
    S: EventStore + RolledBackWrite + Clone + Send + Sync + 'static,
{
    // Some events before the relay starts, more while it runs, with rollbacks among them.
    let early = load(&setup.store, 10, 3, 4).await;
    let relay = setup.relay(100);
    let store = setup.store.clone();
    let rollbacks = tokio::spawn(async move {
        let mut ids = Vec::new();
        for i in 0..10 {
            // A new order that never commits, and a version 4 of an existing one.
            ids.push(store.rolled_back_write(Uuid::now_v7(), 1).await);
            ids.push(store.rolled_back_write(early[i % early.len()], 4).await);
        }
        ids
    });
    let late = load(&setup.store, 20, 5, 4).await;
    let rolled_back = rollbacks.await.unwrap();
    setup.wait_published(&relay, 130).await;

    let stored = setup.stored().await;
    let total: usize = stored.values().map(Vec::len).sum();
    assert_eq!(total, 10 * 3 + 20 * 5);
    let (checker, received) = consume(
        &setup.broker.bootstrap(),
        total as u64,
        Duration::from_secs(2),
        Duration::from_secs(60),
    )
    .await;
    assert_matches_store(&checker, &stored);
    assert_eq!(checker.duplicates(), 0, "no fault, so no redelivery");
    assert!(late.iter().all(|id| checker.versions()[id] == 5));

    // Nothing from a rolled-back transaction.
    for message in &received {
        let event = message.event.as_ref().unwrap();
        assert!(
            !rolled_back.contains(&event.event_id),
            "rolled-back event {} arrived",
            event.event_id
        );
        assert_ne!(event.event_type, "RolledBack");
    }

    // Key and headers, against the stored rows; an order stays on one partition.
    let by_id: HashMap<Uuid, _> = stored.values().flatten().map(|e| (e.event_id, e)).collect();
    let mut partition_of: HashMap<Uuid, i32> = HashMap::new();
    for message in &received {
        let event = message.event.as_ref().unwrap();
        let row = by_id[&event.event_id];
        assert_eq!(
            message.key.as_deref(),
            Some(row.aggregate_id.to_string().as_str())
        );
        assert_eq!(message.headers[headers::EVENT_ID], row.event_id.to_string());
        assert_eq!(message.headers[headers::EVENT_TYPE], row.event_type);
        assert_eq!(message.headers[headers::SCHEMA_VERSION], "1");
        assert_eq!(
            message.headers[headers::STREAM_VERSION],
            row.version.to_string()
        );
        assert_eq!(
            message.headers[headers::CORRELATION_ID],
            row.metadata["correlation_id"].as_str().unwrap()
        );
        assert_eq!(
            message.headers[headers::CAUSATION_ID],
            row.metadata["causation_id"].as_str().unwrap()
        );
        assert_eq!(event.data, row.payload);
        assert_eq!(event.position, row.position.unwrap());
        let partition = *partition_of
            .entry(row.aggregate_id)
            .or_insert(message.partition);
        assert_eq!(
            partition, message.partition,
            "order {} moved partition",
            row.aggregate_id
        );
    }
    let partitions: std::collections::HashSet<i32> = partition_of.values().copied().collect();
    assert!(
        partitions.len() > 1,
        "30 orders should spread over several partitions"
    );
}
