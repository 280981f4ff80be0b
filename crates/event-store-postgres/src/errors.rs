//! Mapping sqlx errors onto the store's error type.

use event_store::EventStoreError;

/// SQLSTATE of a unique violation.
const UNIQUE_VIOLATION: &str = "23505";

/// Which unique constraint an insert hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UniqueViolation {
    /// Another writer took the stream version first.
    StreamVersion,
    /// The event id is already stored.
    EventId,
    /// The idempotency key is already used.
    IdempotencyKey,
}

/// The unique constraint an error reports, if it is a unique violation we know.
pub(crate) fn unique_violation(error: &sqlx::Error) -> Option<UniqueViolation> {
    let db = error.as_database_error()?;
    if db.code().as_deref() != Some(UNIQUE_VIOLATION) {
        return None;
    }
    match db.constraint()? {
        "events_stream_version_key" => Some(UniqueViolation::StreamVersion),
        "events_event_id_key" => Some(UniqueViolation::EventId),
        "idempotency_keys_pkey" => Some(UniqueViolation::IdempotencyKey),
        _ => None,
    }
}

/// Any other database error: the store is unavailable (the cause stays attached as the source).
pub(crate) fn unavailable(error: sqlx::Error) -> EventStoreError {
    tracing::warn!(error = %error, "event store query failed");
    EventStoreError::unavailable(error)
}

/// One `Unavailable` per request waiting on a shared statement, all with the same message (the
/// cause itself is logged once, by [`unavailable`]).
pub(crate) fn unavailable_because(why: &str) -> EventStoreError {
    EventStoreError::unavailable(std::io::Error::other(why.to_owned()))
}

/// An error of a statement that appends: a database error means the statement failed and
/// nothing was written; a broken connection (I/O, protocol) means it may have committed before
/// the answer was lost, and only a later read can tell.
pub(crate) fn append_failed(error: sqlx::Error) -> EventStoreError {
    if error.as_database_error().is_some() {
        return unavailable(error);
    }
    tracing::warn!(error = %error, "the connection broke during an append: its outcome is unknown");
    EventStoreError::OutcomeUnknown(Box::new(error))
}

/// [`append_failed`] for every append of a batch that shared one statement.
pub(crate) fn outcome_unknown_because(why: &str) -> EventStoreError {
    EventStoreError::OutcomeUnknown(Box::new(std::io::Error::other(why.to_owned())))
}
