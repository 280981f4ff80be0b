//! Turning command and store errors into problems.

use axum::http::StatusCode;
use domain::{ErrorKind, OrderError};
use event_store::EventStoreError;

use super::Problem;
use crate::commands::{AccessDenied, CommandError};

impl From<CommandError<OrderError>> for Problem {
    fn from(error: CommandError<OrderError>) -> Self {
        match error {
            CommandError::Rejected(rule) => rule.into(),
            CommandError::Denied(AccessDenied::NotFound) => {
                Problem::new(StatusCode::NOT_FOUND, "order-not-found", "there is no such order")
            }
            CommandError::Denied(AccessDenied::Forbidden) => {
                Problem::forbidden("your role may not do this to the order")
            }
            CommandError::PreconditionFailed { expected, actual } => Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "version-mismatch",
                format!("If-Match asked for version {expected} but the order is at version {actual}; GET it and decide again"),
            )
            .with_current_version(actual),
            CommandError::Conflict { attempts } => Problem::new(
                StatusCode::CONFLICT,
                "concurrent-modification",
                format!("the order kept changing while this command was decided ({attempts} attempts); retry"),
            ),
            // The caller handles this by replaying; reaching here means the record vanished.
            CommandError::IdempotencyKeyUsed(_) => Problem::new(
                StatusCode::CONFLICT,
                "idempotency-key-in-use",
                "this Idempotency-Key was just used by another request; retry to get its response",
            ),
            CommandError::Corrupt(detail) => {
                tracing::error!(%detail, "stored events cannot be decoded");
                Problem::internal()
            }
            CommandError::Store(error) => error.into(),
        }
    }
}

impl From<OrderError> for Problem {
    fn from(error: OrderError) -> Self {
        let status = match error.kind() {
            ErrorKind::Validation => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::StateConflict => StatusCode::CONFLICT,
        };
        Problem::new(status, error.code(), error.to_string())
    }
}

impl From<EventStoreError> for Problem {
    fn from(error: EventStoreError) -> Self {
        match &error {
            EventStoreError::Conflict { actual, .. } => Problem::new(
                StatusCode::CONFLICT,
                "concurrent-modification",
                "the order changed concurrently; retry",
            )
            .with_current_version(*actual),
            EventStoreError::EventNotFound {
                aggregate_id,
                version,
            } => Problem::new(
                StatusCode::NOT_FOUND,
                "event-not-found",
                format!("order {aggregate_id} has no event at version {version}"),
            ),
            EventStoreError::DuplicateEvent { .. } => {
                Problem::new(StatusCode::CONFLICT, "duplicate-event", error.to_string())
            }
            EventStoreError::InvalidExpectedVersion(_) => {
                Problem::bad_request("invalid-expected-version", error.to_string())
            }
            EventStoreError::InvalidAppend(detail) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-append",
                detail.clone(),
            ),
            EventStoreError::Unavailable(_) => {
                tracing::error!(error = ?error, "event store unavailable");
                Problem::unavailable()
            }
            _ => {
                tracing::error!(error = ?error, "event store error");
                Problem::internal()
            }
        }
    }
}
