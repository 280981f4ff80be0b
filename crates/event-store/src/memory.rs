//! An in-memory event store for unit tests of logic. Not durable, not a stand-in for a database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use uuid::Uuid;

use crate::retry::{StoredEventRef, classify_existing};
use crate::{
    AppendRequest, AppendResult, EventStore, EventStoreError, Feed, FeedBacklog, FeedWakeups,
    IdempotencyRecord, RecordedEvent, Result, Snapshot,
};

#[derive(Default)]
struct State {
    streams: HashMap<Uuid, Vec<RecordedEvent>>,
    /// Global feed: (stream, index in stream), position = index + 1.
    feed: Vec<(Uuid, usize)>,
    snapshots: HashMap<Uuid, Snapshot>,
    /// Each record with the moment it was stored.
    idempotency: HashMap<(String, String), (IdempotencyRecord, std::time::Instant)>,
}

/// An event store in a `Mutex`: every operation is atomic by construction. Cheap to clone; clones
/// share the same data.
#[derive(Clone)]
pub struct InMemoryEventStore {
    state: Arc<Mutex<State>>,
    /// Ticked after every append that wrote events.
    appended: Arc<watch::Sender<()>>,
}

impl Default for InMemoryEventStore {
    fn default() -> Self {
        Self {
            state: Arc::default(),
            appended: Arc::new(watch::Sender::new(())),
        }
    }
}

impl InMemoryEventStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-applied append (appends mutate only
        // after every check), so a poisoned lock is still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    fn find(&self, event_id: Uuid) -> Option<StoredEventRef> {
        self.streams.iter().find_map(|(aggregate_id, events)| {
            events
                .iter()
                .find(|e| e.event_id == event_id)
                .map(|e| StoredEventRef {
                    event_id,
                    aggregate_id: *aggregate_id,
                    version: e.version,
                    position: e.position,
                })
        })
    }
}

impl EventStore for InMemoryEventStore {
    async fn append(&self, request: AppendRequest) -> Result<AppendResult> {
        request.validate()?;
        let mut state = self.lock();
        let found: Vec<_> = request
            .events
            .iter()
            .filter_map(|e| state.find(e.event_id))
            .collect();
        if let Some(retried) = classify_existing(&request, &found)? {
            return Ok(retried);
        }
        let actual = state
            .streams
            .get(&request.aggregate_id)
            .map_or(0, |s| s.len() as u64);
        if !request.expected.is_satisfied_by(actual) {
            return Err(EventStoreError::Conflict {
                aggregate_id: request.aggregate_id,
                expected: request.expected,
                actual,
            });
        }
        if let Some(record) = &request.idempotency {
            let key = (record.scope.clone(), record.key.clone());
            if state.idempotency.contains_key(&key) {
                return Err(EventStoreError::IdempotencyKeyUsed {
                    scope: key.0,
                    key: key.1,
                });
            }
            state
                .idempotency
                .insert(key, (record.clone(), std::time::Instant::now()));
        }
        let now = Utc::now();
        let count = request.events.len() as u64;
        for (offset, event) in request.events.into_iter().enumerate() {
            let position = state.feed.len() as u64 + 1;
            let stream = state.streams.entry(request.aggregate_id).or_default();
            stream.push(RecordedEvent {
                event_id: event.event_id,
                aggregate_id: request.aggregate_id,
                aggregate_type: event.aggregate_type,
                version: actual + offset as u64 + 1,
                position: Some(position),
                event_type: event.event_type,
                schema_version: event.schema_version,
                payload: event.payload,
                metadata: event.metadata,
                recorded_at: now,
            });
            let index = stream.len() - 1;
            state.feed.push((request.aggregate_id, index));
        }
        let last_position = state.feed.len() as u64;
        drop(state);
        self.appended.send_replace(());
        Ok(AppendResult {
            aggregate_id: request.aggregate_id,
            first_version: actual + 1,
            last_version: actual + count,
            last_position: Some(last_position),
            deduplicated: false,
        })
    }

    async fn load_events_from_version(
        &self,
        aggregate_id: Uuid,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>> {
        let state = self.lock();
        let events = state
            .streams
            .get(&aggregate_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        Ok(events
            .iter()
            .filter(|e| e.version >= from_version)
            .cloned()
            .collect())
    }

    async fn get_current_version(&self, aggregate_id: Uuid) -> Result<u64> {
        Ok(self
            .lock()
            .streams
            .get(&aggregate_id)
            .map_or(0, |s| s.len() as u64))
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        let mut state = self.lock();
        let keep_existing = state
            .snapshots
            .get(&snapshot.aggregate_id)
            .is_some_and(|existing| existing.version > snapshot.version);
        if !keep_existing {
            state.snapshots.insert(snapshot.aggregate_id, snapshot);
        }
        Ok(())
    }

    async fn load_snapshot(&self, aggregate_id: Uuid) -> Result<Option<Snapshot>> {
        Ok(self.lock().snapshots.get(&aggregate_id).cloned())
    }

    async fn global_position(&self, aggregate_id: Uuid, version: u64) -> Result<u64> {
        let state = self.lock();
        let index = usize::try_from(version.saturating_sub(1)).unwrap_or(usize::MAX);
        state
            .streams
            .get(&aggregate_id)
            .and_then(|s| s.get(index))
            .and_then(|e| e.position)
            .ok_or(EventStoreError::EventNotFound {
                aggregate_id,
                version,
            })
    }

    async fn position_of(&self, aggregate_id: Uuid, version: u64) -> Result<Option<u64>> {
        self.global_position(aggregate_id, version).await.map(Some)
    }

    async fn find_idempotency_record(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>> {
        Ok(self
            .lock()
            .idempotency
            .get(&(scope.to_owned(), key.to_owned()))
            .map(|(record, _)| record.clone()))
    }

    async fn purge_idempotency_records(&self, older_than: std::time::Duration) -> Result<u64> {
        let mut state = self.lock();
        let before = state.idempotency.len();
        state
            .idempotency
            .retain(|_, (_, stored)| stored.elapsed() <= older_than);
        Ok((before - state.idempotency.len()) as u64)
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

impl Feed for InMemoryEventStore {
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>> {
        let state = self.lock();
        let start = usize::try_from(after).unwrap_or(usize::MAX);
        Ok(state
            .feed
            .iter()
            .skip(start)
            .take(limit)
            .map(|(stream, index)| state.streams[stream][*index].clone())
            .collect())
    }

    async fn head(&self) -> Result<u64> {
        Ok(self.lock().feed.len() as u64)
    }

    async fn committed_at(&self, position: u64) -> Result<Option<DateTime<Utc>>> {
        let state = self.lock();
        let index = usize::try_from(position)
            .ok()
            .and_then(|p| p.checked_sub(1));
        Ok(index
            .and_then(|i| state.feed.get(i))
            .map(|(stream, index)| state.streams[stream][*index].recorded_at))
    }

    async fn backlog(&self) -> Result<FeedBacklog> {
        Ok(FeedBacklog::default()) // numbered inside the append
    }

    fn wakeups(&self) -> FeedWakeups {
        FeedWakeups::new(self.appended.subscribe())
    }
}
