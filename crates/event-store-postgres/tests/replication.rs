//! The store on a primary with a streaming standby (private clusters started by the test): it
//! finds the primary in a multi-host URL, follows it after a promotion, waits rather than
//! acknowledges while the synchronous standby is gone, and shows the feed only up to what the
//! standby has.
#![allow(clippy::unwrap_used)] // test set-up: a panic is the failure report

use std::time::{Duration, Instant};

use event_store::{EventStore, Feed, NewEvent};
use event_store_postgres::{
    PostgresEventStore, PostgresOptions, ServerList, Servers, SessionAttrs,
};
use serde_json::json;
use sqlx::{Connection, PgConnection};
use test_support::cluster::Cluster;
use test_support::eventually;
use uuid::Uuid;

fn event() -> Vec<NewEvent> {
    vec![NewEvent::new("Test", "Tested", 1, json!({ "n": 1 }))]
}

fn url(ports: &[u16]) -> String {
    let hosts: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    format!("postgres://postgres@{}/postgres", hosts.join(","))
}

/// A primary whose commits wait for the standby `s1`, and that standby, streaming.
fn synchronous_pair() -> (Cluster, Cluster) {
    let primary = Cluster::start_with(&["synchronous_standby_names=s1"]);
    let standby = Cluster::standby_of(&primary, "s1", &[]);
    (primary, standby)
}

async fn admin(cluster: &Cluster) -> PgConnection {
    PgConnection::connect(&cluster.url()).await.unwrap()
}

/// Cancels every backend waiting for the synchronous standby (what `statement_timeout` or an
/// operator's `pg_cancel_backend` does); returns how many it cancelled.
async fn cancel_waits_for_the_standby(admin: &mut PgConnection) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FILTER (WHERE pg_cancel_backend(pid)) FROM pg_stat_activity
         WHERE wait_event = 'SyncRep'",
    )
    .fetch_one(admin)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_host_url_skips_a_standby_and_lands_on_the_primary() {
    let primary = Cluster::start();
    let standby = Cluster::standby_of(&primary, "s1", &[]);
    // The standby first: read-write (the default) must pass over it.
    let store = PostgresEventStore::connect(
        &url(&[standby.port(), primary.port()]),
        PostgresOptions::default(),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let primary_label = format!("127.0.0.1:{}", primary.port());
    assert_eq!(store.servers().current(), Some(primary_label.as_str()));
    store
        .append_events(Uuid::now_v7(), 0, event())
        .await
        .unwrap();
    store.ping().await.unwrap();

    // `standby` asks for the other one; with only the standby, read-write finds nothing.
    let standby_only = Servers::new(
        ServerList::parse(
            &format!(
                "{}?target_session_attrs=standby",
                url(&[primary.port(), standby.port()])
            ),
            SessionAttrs::ReadWrite,
        )
        .unwrap(),
    );
    standby_only.connect().await.unwrap();
    assert_eq!(
        standby_only.current(),
        Some(format!("127.0.0.1:{}", standby.port()).as_str())
    );
    let refused = PostgresEventStore::connect(&url(&[standby.port()]), PostgresOptions::default())
        .await
        .unwrap_err();
    let why = format!("{:?}", std::error::Error::source(&refused));
    assert!(why.contains("standby"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_promotion_the_store_follows_the_new_primary_without_a_restart() {
    let primary = Cluster::start();
    let standby = Cluster::standby_of(&primary, "s1", &[]);
    let store = PostgresEventStore::connect(
        &url(&[primary.port(), standby.port()]),
        PostgresOptions::default(),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let before = Uuid::now_v7();
    store.append_events(before, 0, event()).await.unwrap();
    let position = store.global_position(before, 1).await.unwrap();
    let mut wakeups = store.wakeups();
    // Let the standby replay everything, then lose the primary and promote the standby.
    let mut on_primary = admin(&primary).await;
    let written: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(&mut on_primary)
        .await
        .unwrap();
    let mut on_standby = admin(&standby).await;
    eventually(Duration::from_secs(30), "the standby replays", async || {
        sqlx::query_scalar::<_, bool>("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn")
            .bind(&written)
            .fetch_one(&mut on_standby)
            .await
            .unwrap()
    })
    .await;
    drop(on_primary);
    primary.crash();
    standby.promote();

    let after = Uuid::now_v7();
    let started = Instant::now();
    loop {
        match store.append_events(after, 0, event()).await {
            Ok(_) => break,
            Err(error) => {
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "no write accepted within 30 s of the promotion: {error}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    println!(
        "first write accepted {:?} after the promotion",
        started.elapsed()
    );
    let standby_label = format!("127.0.0.1:{}", standby.port());
    assert_eq!(store.servers().current(), Some(standby_label.as_str()));
    // The sequencer numbers on the new primary, right after the old head; the feed listener
    // listens there again (its reconnection ticks).
    let next = store.global_position(after, 1).await.unwrap();
    assert_eq!(
        next,
        position + 1,
        "the feed stays dense across the failover"
    );
    tokio::time::timeout(Duration::from_secs(10), wakeups.changed())
        .await
        .expect("the feed's listener came back on the new primary");
    let feed = store.read_all(0, 10).await.unwrap();
    assert_eq!(
        feed.iter().map(|e| e.aggregate_id).collect::<Vec<_>>(),
        [before, after]
    );
    store.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_synchronous_standby_a_write_waits_instead_of_being_acknowledged() {
    let (primary, standby) = synchronous_pair();
    let store = PostgresEventStore::connect(&url(&[primary.port()]), PostgresOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store
        .append_events(Uuid::now_v7(), 0, event())
        .await
        .unwrap();

    standby.stop_server();
    let id = Uuid::now_v7();
    let writer = store.clone();
    let mut write = tokio::spawn(async move { writer.append_events(id, 0, event()).await });
    assert!(
        tokio::time::timeout(Duration::from_secs(3), &mut write)
            .await
            .is_err(),
        "a write was acknowledged while it was on one server only"
    );
    standby.start_server();
    tokio::time::timeout(Duration::from_secs(30), write)
        .await
        .expect("the write completes once the standby is back")
        .unwrap()
        .unwrap();
    assert_eq!(store.get_current_version(id).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_skipped_the_standby_stays_out_of_the_feed_until_the_standby_has_it() {
    let (primary, standby) = synchronous_pair();
    let store = PostgresEventStore::connect(&url(&[primary.port()]), PostgresOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let durable = Uuid::now_v7();
    store.append_events(durable, 0, event()).await.unwrap();
    assert_eq!(store.global_position(durable, 1).await.unwrap(), 1);
    assert_eq!(store.head().await.unwrap(), 1);

    // Without the standby, an append and then the sequencer's numbering of it wait for it; both
    // waits are cancelled, so both commits are visible on the primary alone (Patroni #1412).
    standby.stop_server();
    let mut admin = admin(&primary).await;
    let lone = Uuid::now_v7();
    let writer = store.clone();
    let write = tokio::spawn(async move { writer.append_events(lone, 0, event()).await });
    eventually(
        Duration::from_secs(30),
        "the lone event is numbered on the primary",
        async || {
            cancel_waits_for_the_standby(&mut admin).await;
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM event_positions")
                .fetch_one(&mut admin)
                .await
                .unwrap()
                == 2
        },
    )
    .await;
    // PostgreSQL acknowledges a commit whose wait was cancelled (with a warning): the store
    // itself never cancels one (docs/adr/0020).
    write.await.unwrap().unwrap();

    assert_eq!(
        store.head().await.unwrap(),
        1,
        "the head stops at the durable event"
    );
    let feed = store.read_all(0, 10).await.unwrap();
    assert_eq!(
        feed.iter().map(|e| e.aggregate_id).collect::<Vec<_>>(),
        [durable]
    );
    assert_eq!(store.position_of(lone, 1).await.unwrap(), None);
    let events = store.load_events_from_version(lone, 1).await.unwrap();
    assert_eq!(events.len(), 1, "the event itself is committed");
    assert_eq!(events[0].position, None, "its position is not shown yet");
    let load = store
        .load_stream(event_store::LoadRequest::stream(lone))
        .await
        .unwrap();
    assert_eq!(load.events[0].position, None);

    standby.start_server();
    eventually(
        Duration::from_secs(30),
        "the feed shows the event once the standby has it",
        async || store.head().await.unwrap() == 2,
    )
    .await;
    let feed = store.read_all(0, 10).await.unwrap();
    assert_eq!(
        feed.iter().map(|e| e.aggregate_id).collect::<Vec<_>>(),
        [durable, lone]
    );
    assert_eq!(store.position_of(lone, 1).await.unwrap(), Some(2));
    let events = store.load_events_from_version(lone, 1).await.unwrap();
    assert_eq!(events[0].position, Some(2));
}
