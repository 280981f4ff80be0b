//! The one error type of the event store boundary.

use std::convert::Infallible;

use uuid::Uuid;

use crate::ExpectedVersion;

/// A `Result` whose error is [`EventStoreError`].
pub type Result<T, E = EventStoreError> = std::result::Result<T, E>;

/// What can go wrong talking to an event store. Each variant says what it becomes at the HTTP edge.
#[derive(Debug, thiserror::Error)]
pub enum EventStoreError {
    /// The stream was not at the expected version. HTTP: 409, or 412 when the client sent `If-Match`.
    #[error("stream {aggregate_id} was expected at version {expected} but is at version {actual}")]
    Conflict {
        /// The stream that was appended to.
        aggregate_id: Uuid,
        /// What the writer expected.
        expected: ExpectedVersion,
        /// The stream's version when the append was checked.
        actual: u64,
    },
    /// Some events of the batch are already stored and others are not, or an event id is already
    /// used by another stream: this is not a retry of an earlier append. HTTP: 409.
    #[error(
        "event {event_id} is already stored {detail}; an append is idempotent only when it repeats a whole earlier append to the same stream"
    )]
    DuplicateEvent {
        /// The event id that is already taken.
        event_id: Uuid,
        /// Where it is stored.
        detail: String,
    },
    /// The idempotency key was already used (its record can be read with
    /// [`crate::EventStore::find_idempotency_record`]). HTTP: replay the stored response, or 422.
    #[error("idempotency key {key:?} was already used in scope {scope:?}")]
    IdempotencyKeyUsed {
        /// Who the key belongs to.
        scope: String,
        /// The key.
        key: String,
    },
    /// No event at that version of that stream.
    #[error("stream {aggregate_id} has no event at version {version}")]
    EventNotFound {
        /// The stream.
        aggregate_id: Uuid,
        /// The version asked for.
        version: u64,
    },
    /// A negative expected version other than KurrentDB's constants.
    #[error(
        "{0} is not a valid expected version: use 0 for a new stream, a positive version, or -1 (no stream), -2 (any), -4 (stream exists)"
    )]
    InvalidExpectedVersion(i64),
    /// The append itself is malformed (no events, too many, mixed aggregate types, …). HTTP: 400/422.
    #[error("invalid append: {0}")]
    InvalidAppend(String),
    /// Stored data could not be read back (a bug or manual tampering). HTTP: 500.
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
    /// The database failed or is unreachable. HTTP: 503, details only in the log.
    #[error("event store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The connection was lost while an append was on its way to the database: it may have
    /// committed or not (on PostgreSQL, a failover in the middle of a commit). Nothing in the
    /// store says which until the stream is read again; a retry with the same idempotency key
    /// answers with the original outcome if it committed and runs the command if it did not.
    /// HTTP: 503 with a problem that says so.
    #[error("the append's outcome is unknown: the connection to the store was lost during it")]
    OutcomeUnknown(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl EventStoreError {
    /// True for an optimistic-concurrency conflict.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }

    /// Wraps a backend error as [`Self::Unavailable`], keeping it as the source.
    pub fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Box::new(error))
    }
}

impl From<Infallible> for EventStoreError {
    fn from(never: Infallible) -> Self {
        match never {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_conflict_is_a_conflict() {
        let conflict = EventStoreError::Conflict {
            aggregate_id: Uuid::nil(),
            expected: crate::ExpectedVersion::Exact(1),
            actual: 2,
        };
        assert!(conflict.is_conflict());
        for other in [
            EventStoreError::InvalidAppend("no events".into()),
            EventStoreError::Corrupt("bad row".into()),
            EventStoreError::unavailable(std::io::Error::other("down")),
        ] {
            assert!(!other.is_conflict(), "{other:?}");
        }
    }
}
