//! The event store trait.

use std::future::Future;

use uuid::Uuid;

use crate::{
    AppendRequest, AppendResult, EventStoreError, ExpectedVersion, Feed, IdempotencyRecord,
    LoadRequest, NewEvent, RecordedEvent, Result, Snapshot, StreamLoad,
};

/// An append-only store of event streams with a store-wide feed.
///
/// Guarantees every backend proves with the [conformance suite](crate::conformance):
/// - an append is atomic (all its events or none) and checks its [`ExpectedVersion`] atomically;
///   concurrent appends to one stream have exactly one winner and never leave a version gap;
/// - an append that repeats an earlier one (the same event ids in the same stream) succeeds without
///   writing, whatever version it expected;
/// - every event gets a dense global position in the store's [`Feed`], which returns events in
///   position order and never skips one that commits later.
pub trait EventStore: Feed {
    /// Appends `events` to the stream `aggregate_id` if it is at `expected_version`.
    ///
    /// `expected_version` takes an [`ExpectedVersion`], a `u64`, or a signed integer as older
    /// callers pass it (`0` = new stream).
    fn append_events<V>(
        &self,
        aggregate_id: Uuid,
        expected_version: V,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<AppendResult>> + Send
    where
        V: TryInto<ExpectedVersion> + Send,
        V::Error: Into<EventStoreError>,
    {
        let expected = expected_version.try_into().map_err(Into::into);
        async move {
            self.append(AppendRequest {
                aggregate_id,
                expected: expected?,
                events,
                idempotency: None,
            })
            .await
        }
    }

    /// Appends as described by `request`, storing its idempotency record in the same transaction.
    fn append(&self, request: AppendRequest) -> impl Future<Output = Result<AppendResult>> + Send;

    /// Every event of a stream, in version order (empty if the stream does not exist).
    fn load_events(
        &self,
        aggregate_id: Uuid,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>>> + Send {
        self.load_events_from_version(aggregate_id, 1)
    }

    /// The events of a stream with `version >= from_version`, in version order.
    fn load_events_from_version(
        &self,
        aggregate_id: Uuid,
        from_version: u64,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>>> + Send;

    /// The stream's version: its number of events, 0 if it does not exist.
    fn get_current_version(&self, aggregate_id: Uuid) -> impl Future<Output = Result<u64>> + Send;

    /// Stores a snapshot, replacing an older one of the same stream (a newer one is kept).
    fn save_snapshot(&self, snapshot: Snapshot) -> impl Future<Output = Result<()>> + Send;

    /// The latest snapshot of a stream, if any.
    fn load_snapshot(
        &self,
        aggregate_id: Uuid,
    ) -> impl Future<Output = Result<Option<Snapshot>>> + Send;

    /// The global position of a stored event, waiting (bounded) until it is assigned.
    fn global_position(
        &self,
        aggregate_id: Uuid,
        version: u64,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// The global position of a stored event if the feed has numbered it yet, without waiting:
    /// `Ok(None)` while PostgreSQL's sequencer has not reached it, `EventNotFound` if there is no
    /// such event. Read-your-writes resolves a write's consistency token with this.
    fn position_of(
        &self,
        aggregate_id: Uuid,
        version: u64,
    ) -> impl Future<Output = Result<Option<u64>>> + Send;

    /// The snapshot, the events after it and the idempotency record a command needs, as one
    /// consistent read. Backends answer it in one round trip where they can; this default asks
    /// the three questions one after another, the key last: an append and its idempotency record
    /// commit together, so events that include a keyed write are always answered with its record
    /// (asked first, the key could miss a write the events then show, and a retry of it would be
    /// refused by the rules instead of answered from the record).
    ///
    /// A snapshot is only a shortcut, so a damaged one never fails a load: one whose stored state
    /// does not decode, or whose version is beyond the stream's last event, is not returned (the
    /// events are then loaded from the start).
    fn load_stream(&self, request: LoadRequest) -> impl Future<Output = Result<StreamLoad>> + Send {
        async move {
            let id = request.aggregate_id;
            let mut snapshot = match &request.snapshot {
                Some(filter) => match self.load_snapshot(id).await {
                    Ok(found) => found.filter(|s| {
                        s.aggregate_type == filter.aggregate_type
                            && s.schema_version == filter.schema_version
                    }),
                    Err(EventStoreError::Corrupt(reason)) => {
                        tracing::warn!(%id, %reason, "ignoring a snapshot that does not decode");
                        None
                    }
                    Err(error) => return Err(error),
                },
                None => None,
            };
            let from = snapshot.as_ref().map_or(1, |s| s.version + 1);
            let mut events = self.load_events_from_version(id, from).await?;
            if let Some(ahead) = snapshot.as_ref().filter(|_| events.is_empty()) {
                let current = self.get_current_version(id).await?;
                if current < ahead.version {
                    tracing::warn!(%id, snapshot_version = ahead.version, current, "ignoring a snapshot beyond the stream's last event");
                    snapshot = None;
                    events = self.load_events_from_version(id, 1).await?;
                }
            }
            let idempotency = match &request.idempotency {
                Some(lookup) => {
                    self.find_idempotency_record(&lookup.scope, &lookup.key)
                        .await?
                }
                None => None,
            };
            Ok(StreamLoad {
                snapshot,
                events,
                idempotency,
            })
        }
    }

    /// The idempotency record stored under `scope` and `key`, if any.
    fn find_idempotency_record(
        &self,
        scope: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<IdempotencyRecord>>> + Send;

    /// Deletes the idempotency records stored more than `older_than` ago; returns how many.
    ///
    /// Records are what lets a retry get its original answer, so they must outlive any retry a
    /// client will make; past that they are only weight (one row per keyed command, forever).
    /// A retry under a purged key is a new request.
    fn purge_idempotency_records(
        &self,
        older_than: std::time::Duration,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Cheap round trip to the backing database, for readiness checks.
    fn ping(&self) -> impl Future<Output = Result<()>> + Send;
}
