//! Many writers, one stream.

use futures::future::join_all;
use uuid::Uuid;

use super::events;
use crate::{EventStore, EventStoreError, ExpectedVersion};

/// Writers in the race; more than the pool sizes the backends use in tests, so some wait.
const WRITERS: usize = 32;

async fn race<S>(
    store: &S,
    id: Uuid,
    expected: ExpectedVersion,
) -> Vec<Result<u64, EventStoreError>>
where
    S: EventStore + Clone + 'static,
{
    let tasks = (0..WRITERS).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .append_events(id, expected, events(2))
                .await
                .map(|r| r.last_version)
        })
    });
    join_all(tasks)
        .await
        .into_iter()
        .map(|joined| joined.expect("writer task panicked"))
        .collect()
}

fn assert_contiguous(versions: &[u64]) {
    let expected: Vec<u64> = (1..=versions.len() as u64).collect();
    assert_eq!(versions, expected, "versions must be 1..=n with no gap");
}

/// Writers that all expect version 1: exactly one wins, the others get a conflict.
pub async fn concurrent_appends_to_one_stream_have_one_winner<S>(store: S)
where
    S: EventStore + Clone + 'static,
{
    let id = Uuid::now_v7();
    store
        .append_events(id, ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    let results = race(&store, id, ExpectedVersion::Exact(1)).await;
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "exactly one writer may win: {results:?}");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(EventStoreError::is_conflict)
    );
    let loaded = store.load_events(id).await.unwrap();
    assert_contiguous(&loaded.iter().map(|e| e.version).collect::<Vec<_>>());
    assert_eq!(loaded.len(), 3);
}

/// Writers that all create the same stream: exactly one wins.
pub async fn concurrent_creation_of_one_stream_has_one_winner<S>(store: S)
where
    S: EventStore + Clone + 'static,
{
    let id = Uuid::now_v7();
    let results = race(&store, id, ExpectedVersion::NoStream).await;
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "exactly one creator may win: {results:?}");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(EventStoreError::is_conflict)
    );
    assert_eq!(store.get_current_version(id).await.unwrap(), 2);
}

/// Writers with no expectation all succeed, one after another, with no gap.
pub async fn concurrent_any_appends_leave_no_gaps<S>(store: S)
where
    S: EventStore + Clone + 'static,
{
    let id = Uuid::now_v7();
    let results = race(&store, id, ExpectedVersion::Any).await;
    assert!(
        results.iter().all(Result::is_ok),
        "`any` appends must all succeed: {results:?}"
    );
    let loaded = store.load_events(id).await.unwrap();
    assert_eq!(loaded.len(), WRITERS * 2);
    assert_contiguous(&loaded.iter().map(|e| e.version).collect::<Vec<_>>());
}
