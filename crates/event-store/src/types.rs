//! The values that cross the event store boundary.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::ExpectedVersion;

/// Upper bound on events in one append: one transaction should stay small enough to commit quickly
/// and to hold in memory twice (payload plus encoded row).
pub const MAX_EVENTS_PER_APPEND: usize = 1_000;

/// An event to append: everything but what the store assigns (version, position, time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    /// Client-chosen id (UUID v7); re-appending the same id to the same stream is a no-op.
    pub event_id: Uuid,
    /// The aggregate type, e.g. `"Order"`; every event of a stream has the same one.
    pub aggregate_type: String,
    /// Stable event type name, e.g. `"OrderCreated"`.
    pub event_type: String,
    /// Version of the payload's schema for this event type, for upcasting.
    pub schema_version: u32,
    /// The event's data.
    pub payload: Value,
    /// Correlation, causation, user, timestamp, trace context.
    pub metadata: Value,
}

impl NewEvent {
    /// An event with a fresh UUID v7 id and empty metadata.
    pub fn new(
        aggregate_type: impl Into<String>,
        event_type: impl Into<String>,
        schema_version: u32,
        payload: Value,
    ) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            aggregate_type: aggregate_type.into(),
            event_type: event_type.into(),
            schema_version,
            payload,
            metadata: Value::Object(Default::default()),
        }
    }

    /// Replaces the metadata.
    pub fn with_metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }

    /// Replaces the event id.
    pub fn with_event_id(mut self, event_id: Uuid) -> Self {
        self.event_id = event_id;
        self
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// The event's id.
    pub event_id: Uuid,
    /// The stream (aggregate) it belongs to.
    pub aggregate_id: Uuid,
    /// The aggregate type, e.g. `"Order"`.
    pub aggregate_type: String,
    /// Its version in the stream: 1 for the first event, contiguous.
    pub version: u64,
    /// Its place in the store-wide feed; `None` while PostgreSQL's sequencer has not yet numbered it
    /// (see ADR 0002). Positions are dense and never reused.
    pub position: Option<u64>,
    /// Stable event type name.
    pub event_type: String,
    /// Schema version of the payload.
    pub schema_version: u32,
    /// The event's data.
    pub payload: Value,
    /// The event's metadata.
    pub metadata: Value,
    /// When the store committed it.
    pub recorded_at: DateTime<Utc>,
}

/// An event as the global feed hands it to a consumer that forwards it rather than interprets it
/// (the outbox relay): payload and metadata are the stored JSON text, checked to be JSON but never
/// built into a tree, and the position is always known (the feed holds only numbered events).
#[derive(Debug, Clone, Serialize)]
pub struct FeedEvent {
    /// The event's id.
    pub event_id: Uuid,
    /// The stream (aggregate) it belongs to.
    pub aggregate_id: Uuid,
    /// The aggregate type, e.g. `"Order"`.
    pub aggregate_type: String,
    /// Its version in the stream.
    pub version: u64,
    /// Its place in the feed.
    pub position: u64,
    /// Stable event type name.
    pub event_type: String,
    /// Schema version of the payload.
    pub schema_version: u32,
    /// The event's data, as stored.
    pub payload: Box<RawValue>,
    /// The event's metadata, as stored.
    pub metadata: Box<RawValue>,
    /// When the store committed it.
    pub recorded_at: DateTime<Utc>,
}

impl TryFrom<RecordedEvent> for FeedEvent {
    type Error = crate::EventStoreError;

    /// The feed form of an event read from the feed; `Corrupt` if it has no position.
    fn try_from(event: RecordedEvent) -> Result<Self, Self::Error> {
        let corrupt = |e: serde_json::Error| crate::EventStoreError::Corrupt(e.to_string());
        let position = event.position.ok_or_else(|| {
            crate::EventStoreError::Corrupt(format!(
                "event {} of the feed has no position",
                event.event_id
            ))
        })?;
        Ok(Self {
            event_id: event.event_id,
            aggregate_id: event.aggregate_id,
            aggregate_type: event.aggregate_type,
            version: event.version,
            position,
            event_type: event.event_type,
            schema_version: event.schema_version,
            payload: serde_json::value::to_raw_value(&event.payload).map_err(corrupt)?,
            metadata: serde_json::value::to_raw_value(&event.metadata).map_err(corrupt)?,
            recorded_at: event.recorded_at,
        })
    }
}

/// An append, with everything the store checks atomically.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    /// The stream to append to.
    pub aggregate_id: Uuid,
    /// The concurrency condition.
    pub expected: ExpectedVersion,
    /// One or more events, all of one aggregate type, stored with contiguous versions.
    pub events: Vec<NewEvent>,
    /// Written in the same transaction as the events, if present.
    pub idempotency: Option<IdempotencyRecord>,
}

impl AppendRequest {
    /// Checks what every backend must reject before touching storage.
    pub fn validate(&self) -> crate::Result<()> {
        let invalid = |why: String| Err(crate::EventStoreError::InvalidAppend(why));
        let Some(first) = self.events.first() else {
            return invalid("an append needs at least one event".into());
        };
        if self.events.len() > MAX_EVENTS_PER_APPEND {
            return invalid(format!(
                "{} events in one append; the maximum is {MAX_EVENTS_PER_APPEND}",
                self.events.len()
            ));
        }
        if let Some(other) = self
            .events
            .iter()
            .find(|e| e.aggregate_type != first.aggregate_type)
        {
            return invalid(format!(
                "one append mixes aggregate types {:?} and {:?}",
                first.aggregate_type, other.aggregate_type
            ));
        }
        let mut ids: Vec<Uuid> = self.events.iter().map(|e| e.event_id).collect();
        ids.sort_unstable();
        if let Some(pair) = ids.windows(2).find(|pair| pair[0] == pair[1]) {
            return invalid(format!("event id {} appears twice in one append", pair[0]));
        }
        Ok(())
    }
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendResult {
    /// The stream appended to.
    pub aggregate_id: Uuid,
    /// Version of the first event of the batch.
    pub first_version: u64,
    /// Version of the last event of the batch: the stream's version after the append.
    pub last_version: u64,
    /// Global position of the last event, when the backend assigns it at commit (SQLite, memory);
    /// `None` on PostgreSQL, where [`crate::EventStore::global_position`] waits for it.
    pub last_position: Option<u64>,
    /// True when every event was already stored by an earlier append: nothing was written.
    pub deduplicated: bool,
}

/// A serialized aggregate state at a stream version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The stream.
    pub aggregate_id: Uuid,
    /// The aggregate type.
    pub aggregate_type: String,
    /// The stream version the state includes.
    pub version: u64,
    /// Version of the state's serialized shape; a mismatch means "ignore and replay".
    pub schema_version: u32,
    /// The state.
    pub state: Value,
}

/// The stored outcome of a request made with an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// Who owns the key (the authenticated subject), so keys never collide across clients.
    pub scope: String,
    /// The client's key.
    pub key: String,
    /// A hash of the request (method, path, body): the same key with another request is an error.
    pub request_hash: String,
    /// Whatever the caller needs to answer the retry as it answered the original.
    pub response: Value,
}

/// Names an idempotency record to look up: the key's owner and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyLookup {
    /// Who owns the key (the authenticated subject).
    pub scope: String,
    /// The client's key.
    pub key: String,
}

/// Which snapshots a load may start from: only one of this aggregate type and state schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFilter {
    /// The aggregate type the snapshot must be of.
    pub aggregate_type: String,
    /// The state schema version the loader can read; a snapshot of another one is ignored.
    pub schema_version: u32,
}

/// Everything a command needs from the store before it decides, asked for at once so that a
/// backend can answer in one round trip ([`crate::EventStore::load_stream`]).
#[derive(Debug, Clone)]
pub struct LoadRequest {
    /// The stream.
    pub aggregate_id: Uuid,
    /// Start from the stream's snapshot if it matches; `None` replays the whole stream.
    pub snapshot: Option<SnapshotFilter>,
    /// Also return this idempotency record, read in the same snapshot of the database as the
    /// events: a retried command is recognised before any rule is checked.
    pub idempotency: Option<IdempotencyLookup>,
}

impl LoadRequest {
    /// Loads every event of `aggregate_id`, without snapshot or idempotency record.
    pub fn stream(aggregate_id: Uuid) -> Self {
        Self {
            aggregate_id,
            snapshot: None,
            idempotency: None,
        }
    }
}

/// The answer to a [`LoadRequest`].
#[derive(Debug, Clone, PartialEq)]
pub struct StreamLoad {
    /// The matching snapshot, if the request asked for one and the stream has one.
    pub snapshot: Option<Snapshot>,
    /// The events after the snapshot (all of them without one), in version order.
    pub events: Vec<RecordedEvent>,
    /// The idempotency record asked for, if it exists.
    pub idempotency: Option<IdempotencyRecord>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{EventStoreError, ExpectedVersion};

    fn append_of(events: usize) -> AppendRequest {
        AppendRequest {
            aggregate_id: Uuid::now_v7(),
            expected: ExpectedVersion::Any,
            events: (0..events)
                .map(|_| NewEvent::new("Test", "Happened", 1, json!({})))
                .collect(),
            idempotency: None,
        }
    }

    #[test]
    fn an_append_holds_one_to_the_maximum_number_of_events() {
        assert!(append_of(1).validate().is_ok());
        assert!(append_of(MAX_EVENTS_PER_APPEND).validate().is_ok());
        for refused in [0, MAX_EVENTS_PER_APPEND + 1] {
            assert!(
                matches!(
                    append_of(refused).validate(),
                    Err(EventStoreError::InvalidAppend(_))
                ),
                "{refused} events"
            );
        }
    }
}
