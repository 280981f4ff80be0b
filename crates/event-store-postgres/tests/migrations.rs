//! The embedded migrations apply to an empty PostgreSQL database, and applying them again is a no-op.
#![allow(clippy::unwrap_used)] // test code

use event_store_postgres::{MIGRATOR, PostgresEventStore, PostgresOptions};

#[tokio::test]
async fn migrations_apply_once_and_then_do_nothing() {
    let url = test_support::postgres::fresh_database_url().await;
    let store = PostgresEventStore::connect(&url, PostgresOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(applied, MIGRATOR.iter().count() as i64);
    for table in ["events", "snapshots", "idempotency_keys"] {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(table)
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert!(exists, "table {table} missing after migration");
    }
}
