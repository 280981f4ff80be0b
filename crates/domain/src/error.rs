//! Domain-wide error types.

use crate::event::EventDecodeError;
use crate::order::OrderError;

/// What kind of failure a rejected command is; the HTTP layer maps it to a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The command itself is malformed or breaks a rule. HTTP: 422.
    Validation,
    /// The command targets an aggregate that does not exist. HTTP: 404.
    NotFound,
    /// The command is valid but not in the aggregate's current state. HTTP: 409.
    StateConflict,
}

/// Any error the domain crate can produce.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// An order command was rejected. HTTP: see [`OrderError::kind`].
    #[error(transparent)]
    Order(#[from] OrderError),
    /// A stored event could not be decoded. HTTP: 500, details only in the log.
    #[error(transparent)]
    EventDecode(#[from] EventDecodeError),
}
