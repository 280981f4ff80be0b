//! A checkpoint taken before `pg_dump` and restore still means the same place in the feed after
//! it: positions are plain data, not transaction ids.
#![allow(clippy::unwrap_used)] // test code

use std::process::Command;

use event_store::{EventStore, ExpectedVersion, Feed, NewEvent};
use event_store_postgres::{PostgresEventStore, PostgresOptions};
use serde_json::json;
use uuid::Uuid;

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program).args(args).output().unwrap_or_else(|e| {
        panic!("cannot run {program}: {e}; install the PostgreSQL client tools (apt-get install postgresql-client)")
    });
    assert!(
        output.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn a_checkpoint_survives_dump_and_restore() {
    let source = test_support::postgres::fresh_database_url().await;
    let store = PostgresEventStore::connect(&source, PostgresOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let id = Uuid::now_v7();
    let events = (0..5)
        .map(|i| NewEvent::new("Test", "Before", 1, json!({ "i": i })))
        .collect();
    store
        .append_events(id, ExpectedVersion::NoStream, events)
        .await
        .unwrap();
    let checkpoint = store.global_position(id, 5).await.unwrap();

    // Dump the source, restore into a new database.
    let target = test_support::postgres::fresh_database_url().await;
    let dump = std::env::temp_dir().join(format!("orders-dump-{}.sql", Uuid::now_v7()));
    let dump_path = dump.to_str().unwrap();
    run("pg_dump", &["--no-owner", "--file", dump_path, &source]);
    run(
        "psql",
        &[
            "--quiet",
            "--set",
            "ON_ERROR_STOP=1",
            "--file",
            dump_path,
            &target,
        ],
    );
    let _ = std::fs::remove_file(&dump);

    let restored = PostgresEventStore::connect(&target, PostgresOptions::default())
        .await
        .unwrap();
    restored.migrate().await.unwrap(); // already applied: a no-op
    let other = Uuid::now_v7();
    restored
        .append_events(
            other,
            ExpectedVersion::NoStream,
            vec![NewEvent::new("Test", "After", 1, json!({}))],
        )
        .await
        .unwrap();
    restored
        .append_events(
            id,
            ExpectedVersion::Exact(5),
            vec![NewEvent::new("Test", "After", 1, json!({}))],
        )
        .await
        .unwrap();
    restored.global_position(id, 6).await.unwrap();

    let after_checkpoint = restored.read_all(checkpoint, 100).await.unwrap();
    let types: Vec<&str> = after_checkpoint
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(
        types,
        ["After", "After"],
        "a reader resuming from its checkpoint sees exactly the new events"
    );
    assert_eq!(after_checkpoint[0].position, Some(checkpoint + 1));
    assert_eq!(restored.read_all(0, 100).await.unwrap().len(), 7);
}
