//! The conformance suite against a real SQLite file (one per test, in a temporary directory).
#![allow(clippy::unwrap_used)] // test set-up: a panic is the failure report

use event_store_sqlite::{SqliteEventStore, SqliteOptions};

async fn fresh_store() -> SqliteEventStore {
    let dir = tempfile::tempdir().unwrap();
    // Keep the directory for the whole test run; the OS cleans the temp dir.
    let path = dir.keep().join("events.db");
    let store = SqliteEventStore::open(&path, SqliteOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store
}

event_store::conformance_tests!(fresh_store());
