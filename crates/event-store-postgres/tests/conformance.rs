//! The conformance suite against a real PostgreSQL (one fresh database per test binary run), with
//! group commit on (the default) and off.
#![allow(clippy::unwrap_used)] // test set-up: a panic is the failure report

use event_store_postgres::{PostgresEventStore, PostgresOptions};
use tokio::sync::OnceCell;

/// One migrated database for every test of this binary; tests use their own stream ids.
static DATABASE_URL: OnceCell<String> = OnceCell::const_new();

async fn database_url() -> &'static str {
    DATABASE_URL
        .get_or_init(|| async {
            let url = test_support::postgres::fresh_database_url().await;
            let store = PostgresEventStore::connect(&url, PostgresOptions::default())
                .await
                .unwrap();
            store.migrate().await.unwrap();
            url
        })
        .await
}

async fn fresh_store() -> PostgresEventStore {
    PostgresEventStore::connect(database_url().await, PostgresOptions::default())
        .await
        .unwrap()
}

event_store::conformance_tests!(fresh_store());

/// The same suite with group commit off: every append is its own statement.
mod appends_alone {
    use super::*;

    async fn fresh_store() -> PostgresEventStore {
        let options = PostgresOptions {
            group_commit: None,
            ..PostgresOptions::default()
        };
        PostgresEventStore::connect(database_url().await, options)
            .await
            .unwrap()
    }

    event_store::conformance_tests!(fresh_store());
}
