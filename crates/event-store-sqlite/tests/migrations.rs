//! The embedded migrations apply to a new SQLite file, and applying them again is a no-op.
#![allow(clippy::unwrap_used)] // test code

use event_store_sqlite::{MIGRATOR, SqliteEventStore, SqliteOptions};

#[tokio::test]
async fn migrations_apply_once_and_then_do_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteEventStore::open(dir.path().join("orders.db"), SqliteOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(store.reader())
        .await
        .unwrap();
    assert_eq!(applied, MIGRATOR.iter().count() as i64);
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.reader())
        .await
        .unwrap();
    assert_eq!(journal, "wal");
}
