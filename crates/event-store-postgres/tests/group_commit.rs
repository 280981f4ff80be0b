//! Group commit on a real PostgreSQL: concurrent appends share statements, and each keeps its own
//! outcome (a refused neighbour never fails or half-writes another append).
#![allow(clippy::unwrap_used)] // test set-up: a panic is the failure report

use std::collections::HashSet;

use event_store::{
    AppendRequest, EventStore, EventStoreError, ExpectedVersion, IdempotencyRecord, NewEvent,
};
use event_store_postgres::{PostgresEventStore, PostgresOptions};
use futures::future::join_all;
use serde_json::json;
use uuid::Uuid;

async fn store() -> PostgresEventStore {
    let url = test_support::postgres::fresh_database_url().await;
    let store = PostgresEventStore::connect(&url, PostgresOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    store
}

fn events(n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|i| NewEvent::new("Test", "Tested", 1, json!({ "n": i })))
        .collect()
}

fn request(id: Uuid, expected: ExpectedVersion, n: usize) -> AppendRequest {
    AppendRequest {
        aggregate_id: id,
        expected,
        events: events(n),
        idempotency: None,
    }
}

/// Transactions that wrote the events of `ids` (events written by one statement share `xmin`).
async fn transactions(store: &PostgresEventStore, ids: &[Uuid]) -> usize {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT xmin::text) FROM events WHERE aggregate_id = ANY($1)",
    )
    .bind(ids)
    .fetch_one(store.pool())
    .await
    .unwrap();
    n as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_appends_do_not_fail_their_batch() {
    let store = store().await;
    // Streams that already exist, so that "no stream" appends to them must be refused.
    let taken: Vec<Uuid> = (0..8).map(|_| Uuid::now_v7()).collect();
    for id in &taken {
        store.append_events(*id, 0, events(1)).await.unwrap();
    }
    let fresh: Vec<Uuid> = (0..120).map(|_| Uuid::now_v7()).collect();
    let mut requests: Vec<AppendRequest> = fresh
        .iter()
        .enumerate()
        .map(|(i, id)| request(*id, ExpectedVersion::NoStream, 1 + i % 3))
        .collect();
    requests.extend(
        taken
            .iter()
            .map(|id| request(*id, ExpectedVersion::NoStream, 2)),
    );
    let outcomes = join_all(requests.iter().cloned().map(|r| {
        let store = store.clone();
        tokio::spawn(async move { store.append(r).await })
    }))
    .await;
    for (request, outcome) in requests.iter().zip(outcomes) {
        let outcome = outcome.unwrap();
        if taken.contains(&request.aggregate_id) {
            let error = outcome.unwrap_err();
            assert!(
                matches!(error, EventStoreError::Conflict { actual: 1, .. }),
                "{error:?}"
            );
            assert_eq!(
                store
                    .get_current_version(request.aggregate_id)
                    .await
                    .unwrap(),
                1
            );
        } else {
            let appended = outcome.unwrap();
            assert_eq!(
                (appended.first_version, appended.last_version),
                (1, request.events.len() as u64)
            );
            let stored = store.load_events(request.aggregate_id).await.unwrap();
            let ids: Vec<Uuid> = stored.iter().map(|e| e.event_id).collect();
            let sent: Vec<Uuid> = request.events.iter().map(|e| e.event_id).collect();
            assert_eq!(ids, sent, "events stored in order, all of them");
        }
    }
    // The point of it all: far fewer commits than appends.
    let commits = transactions(&store, &fresh).await;
    assert!(
        commits < fresh.len(),
        "{commits} commits for {} appends",
        fresh.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_that_fails_as_a_whole_is_retried_append_by_append() {
    let store = store().await;
    // An event id already stored in another stream makes the shared statement fail (unique
    // violation); its neighbours must still commit, and it must get its own precise error.
    let existing = NewEvent::new("Test", "Tested", 1, json!({}));
    store
        .append_events(Uuid::now_v7(), 0, vec![existing.clone()])
        .await
        .unwrap();
    let mut requests: Vec<AppendRequest> = (0..60)
        .map(|_| request(Uuid::now_v7(), ExpectedVersion::NoStream, 1))
        .collect();
    for at in [10, 30, 50] {
        requests[at].events = vec![existing.clone().with_event_id(existing.event_id)];
    }
    let outcomes = join_all(requests.iter().cloned().map(|r| {
        let store = store.clone();
        tokio::spawn(async move { store.append(r).await })
    }))
    .await;
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let outcome = outcome.unwrap();
        if [10, 30, 50].contains(&i) {
            let error = outcome.unwrap_err();
            assert!(
                matches!(error, EventStoreError::DuplicateEvent { .. }),
                "{error:?}"
            );
            assert_eq!(
                store
                    .get_current_version(requests[i].aggregate_id)
                    .await
                    .unwrap(),
                0
            );
        } else {
            assert_eq!(outcome.unwrap().last_version, 1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_idempotency_key_wins_once_whatever_the_batching() {
    let store = store().await;
    let key = IdempotencyRecord {
        scope: "customer-1".into(),
        key: "order-1".into(),
        request_hash: "h".into(),
        response: json!({ "status": 201 }),
    };
    let streams: Vec<Uuid> = (0..16).map(|_| Uuid::now_v7()).collect();
    let outcomes = join_all(streams.iter().map(|id| {
        let store = store.clone();
        let mut request = request(*id, ExpectedVersion::NoStream, 1);
        request.idempotency = Some(key.clone());
        tokio::spawn(async move { store.append(request).await })
    }))
    .await;
    let mut winners = Vec::new();
    for (id, outcome) in streams.iter().zip(outcomes) {
        match outcome.unwrap() {
            Ok(_) => winners.push(*id),
            Err(EventStoreError::IdempotencyKeyUsed { .. }) => {
                assert_eq!(store.get_current_version(*id).await.unwrap(), 0);
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one append may use the key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_to_one_stream_never_share_a_batch_and_never_gap() {
    let store = store().await;
    let id = Uuid::now_v7();
    let outcomes = join_all((0..40).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.append(request(id, ExpectedVersion::Any, 1)).await })
    }))
    .await;
    let mut versions = HashSet::new();
    for outcome in outcomes {
        assert!(versions.insert(outcome.unwrap().unwrap().last_version));
    }
    assert_eq!(versions, (1..=40).collect());
    let stored: Vec<u64> = store
        .load_events(id)
        .await
        .unwrap()
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(stored, (1..=40).collect::<Vec<_>>());
}
