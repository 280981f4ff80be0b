//! What command handling can fail with; each variant says what it becomes over HTTP.

use event_store::{EventStoreError, IdempotencyRecord};

/// The caller may not act on this aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessDenied {
    /// Hide the aggregate's existence (another customer's order). HTTP 404.
    #[error("not found")]
    NotFound,
    /// The caller's role may not do this. HTTP 403.
    #[error("forbidden")]
    Forbidden,
}

/// Why a command was not carried out. Nothing was written in any of these cases, except that
/// a [`CommandError::Store`] failure may hide a commit (see there).
///
/// Over HTTP the same holds for a 408 (the request timed out: the command carries on to its end)
/// and a dropped connection: the client cannot tell whether the command was applied. A retry with
/// the same `Idempotency-Key` always resolves it: it gets the original answer if the command was
/// applied, and is executed if it was not.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error + 'static> {
    /// The aggregate refused: a business rule. HTTP 422/404/409 by the error's kind.
    #[error(transparent)]
    Rejected(E),
    /// The access check refused.
    #[error("access denied: {0}")]
    Denied(AccessDenied),
    /// The caller pinned a version (`If-Match`) and the stream is elsewhere. HTTP 412.
    #[error("the order is at version {actual}, not {expected}; reload it and decide again")]
    PreconditionFailed {
        /// The version the caller sent.
        expected: u64,
        /// The stream's version.
        actual: u64,
    },
    /// Other writers kept winning the race for the next version. HTTP 409.
    #[error("the order changed concurrently {attempts} times; try again")]
    Conflict {
        /// How many times the command was decided.
        attempts: usize,
    },
    /// The idempotency key was used by a request that committed first (or by an earlier request
    /// the load found). The caller answers from the record: the handler's copy when it has one,
    /// otherwise looked up.
    #[error("idempotency key already used")]
    IdempotencyKeyUsed(Option<Box<IdempotencyRecord>>),
    /// Personal data could not be sealed: the customer was forgotten (HTTP 409), or the keys
    /// are unavailable (HTTP 503).
    #[error(transparent)]
    PersonalData(personal_data::PersonalDataError),
    /// Stored events could not be decoded into the aggregate's events. HTTP 500.
    #[error("stored events cannot be read: {0}")]
    Corrupt(String),
    /// The store failed. HTTP 503. The append may still have committed (the connection can fail
    /// after the commit was sent and before its acknowledgement arrived): retry with the same
    /// `Idempotency-Key` to learn the outcome.
    #[error(transparent)]
    Store(EventStoreError),
}

impl<E: std::error::Error + 'static> From<EventStoreError> for CommandError<E> {
    fn from(error: EventStoreError) -> Self {
        match error {
            EventStoreError::Corrupt(detail) => Self::Corrupt(detail),
            EventStoreError::IdempotencyKeyUsed { .. } => Self::IdempotencyKeyUsed(None),
            other => Self::Store(other),
        }
    }
}
