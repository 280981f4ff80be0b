//! The conformance suite against a real PostgreSQL (one fresh database per test binary run).
#![allow(clippy::unwrap_used)] // test set-up: a panic is the failure report

use event_store_postgres::{PostgresEventStore, PostgresOptions};
use tokio::sync::OnceCell;

/// One migrated database for every test of this binary; tests use their own stream ids.
static DATABASE_URL: OnceCell<String> = OnceCell::const_new();

async fn fresh_store() -> PostgresEventStore {
    let url = DATABASE_URL
        .get_or_init(|| async {
            let url = test_support::postgres::fresh_database_url().await;
            let store = PostgresEventStore::connect(&url, PostgresOptions::default())
                .await
                .unwrap();
            store.migrate().await.unwrap();
            url
        })
        .await;
    PostgresEventStore::connect(url, PostgresOptions::default())
        .await
        .unwrap()
}

event_store::conformance_tests!(fresh_store());
