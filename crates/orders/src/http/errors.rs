//! Turning command and store errors into problems.

use axum::http::StatusCode;
use domain::{ErrorKind, OrderError};
use event_store::EventStoreError;

use super::Problem;
use crate::commands::{AccessDenied, CommandError};

/// How a command ended, as `commands_total{outcome}` and the `command handled` log line count it:
/// read from the typed error, never from the problem it became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandOutcome {
    /// Applied.
    Accepted,
    /// Answered from an earlier request with the same `Idempotency-Key`.
    Replayed,
    /// A business rule refused it (the command itself).
    Rejected,
    /// The order's state does not allow it, or other writers kept winning.
    Conflict,
    /// `If-Match` named another version.
    PreconditionFailed,
    /// The order does not exist.
    NotFound,
    /// The caller may not do this (including another customer's order, answered as 404).
    Denied,
    /// The service failed (store, keys, corrupt events).
    Error,
}

impl CommandOutcome {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Replayed => "replayed",
            Self::Rejected => "rejected",
            Self::Conflict => "conflict",
            Self::PreconditionFailed => "precondition_failed",
            Self::NotFound => "not_found",
            Self::Denied => "denied",
            Self::Error => "error",
        }
    }
}

impl From<&CommandError<OrderError>> for CommandOutcome {
    fn from(error: &CommandError<OrderError>) -> Self {
        match error {
            CommandError::Rejected(rule) => match rule.kind() {
                ErrorKind::Validation => Self::Rejected,
                ErrorKind::NotFound => Self::NotFound,
                ErrorKind::StateConflict => Self::Conflict,
            },
            CommandError::Denied(_) => Self::Denied,
            CommandError::PreconditionFailed { .. } => Self::PreconditionFailed,
            CommandError::Conflict { .. } | CommandError::IdempotencyKeyUsed(_) => Self::Conflict,
            CommandError::PersonalData(personal_data::PersonalDataError::CustomerForgotten {
                ..
            }) => Self::Conflict,
            CommandError::PersonalData(_) | CommandError::Corrupt(_) | CommandError::Store(_) => {
                Self::Error
            }
        }
    }
}

impl From<crate::auth::StaffOnly> for Problem {
    fn from(refused: crate::auth::StaffOnly) -> Self {
        Problem::forbidden(refused.to_string())
    }
}

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
            CommandError::PersonalData(error) => error.into(),
            CommandError::Store(error) => error.into(),
        }
    }
}

impl From<personal_data::PersonalDataError> for Problem {
    fn from(error: personal_data::PersonalDataError) -> Self {
        use personal_data::PersonalDataError;
        match &error {
            PersonalDataError::CustomerForgotten { .. } => Problem::new(
                StatusCode::CONFLICT,
                "customer-forgotten",
                error.to_string(),
            ),
            PersonalDataError::Store(detail) => {
                tracing::error!(%detail, "the key table cannot be reached");
                Problem::unavailable()
            }
            PersonalDataError::Unavailable(detail) => {
                tracing::error!(%detail, "personal data is unavailable");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "personal-data-unavailable",
                    "the keys that protect personal data cannot be reached; retry shortly",
                )
            }
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
            EventStoreError::OutcomeUnknown(_) => {
                tracing::error!(error = ?error, "a command's commit outcome is unknown");
                Problem::outcome_unknown()
            }
            _ => {
                tracing::error!(error = ?error, "event store error");
                Problem::internal()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use domain::OrderStatus;
    use event_store::ExpectedVersion;
    use uuid::Uuid;

    use super::*;

    /// Status, code and current version of an answer.
    type Expected = (u16, &'static str, Option<u64>);

    fn answer(problem: Problem) -> (u16, String, Option<u64>) {
        (problem.status, problem.code, problem.current_version)
    }

    #[test]
    fn each_store_error_has_its_own_status_and_code() {
        let id = Uuid::nil();
        let cases = [
            (
                EventStoreError::Conflict {
                    aggregate_id: id,
                    expected: ExpectedVersion::Exact(1),
                    actual: 3,
                },
                (409, "concurrent-modification", Some(3)),
            ),
            (
                EventStoreError::EventNotFound {
                    aggregate_id: id,
                    version: 9,
                },
                (404, "event-not-found", None),
            ),
            (
                EventStoreError::DuplicateEvent {
                    event_id: id,
                    detail: "in another stream".into(),
                },
                (409, "duplicate-event", None),
            ),
            (
                EventStoreError::InvalidExpectedVersion(-7),
                (400, "invalid-expected-version", None),
            ),
            (
                EventStoreError::InvalidAppend("no events".into()),
                (422, "invalid-append", None),
            ),
            (
                EventStoreError::Unavailable("connection refused".into()),
                (503, "store-unavailable", None),
            ),
            (
                EventStoreError::OutcomeUnknown("connection reset".into()),
                (503, "commit-outcome-unknown", None),
            ),
            (
                EventStoreError::Corrupt("bad row".into()),
                (500, "internal-error", None),
            ),
        ];
        for (error, (status, code, version)) in cases {
            let shown = format!("{error:?}");
            assert_eq!(
                answer(error.into()),
                (status, code.to_owned(), version),
                "{shown}"
            );
        }
    }

    #[test]
    fn a_rule_answers_by_its_kind() {
        let cases = [
            (OrderError::NoItems, (422, "no-items")),
            (OrderError::OrderNotFound, (404, "order-not-found")),
            (
                OrderError::InvalidTransition {
                    command: "ship",
                    status: OrderStatus::Created,
                },
                (409, "invalid-transition"),
            ),
        ];
        for (error, (status, code)) in cases {
            let detail = error.to_string();
            let problem = Problem::from(CommandError::Rejected(error));
            assert_eq!(
                (problem.status, problem.code.as_str()),
                (status, code),
                "{detail}"
            );
            assert_eq!(problem.detail, detail);
        }
    }

    #[test]
    fn each_command_error_has_its_own_status_and_code() {
        let cases: [(CommandError<OrderError>, Expected); 7] = [
            (
                CommandError::Denied(AccessDenied::NotFound),
                (404, "order-not-found", None),
            ),
            (
                CommandError::Denied(AccessDenied::Forbidden),
                (403, "forbidden", None),
            ),
            (
                CommandError::PreconditionFailed {
                    expected: 2,
                    actual: 5,
                },
                (412, "version-mismatch", Some(5)),
            ),
            (
                CommandError::Conflict { attempts: 3 },
                (409, "concurrent-modification", None),
            ),
            (
                CommandError::IdempotencyKeyUsed(None),
                (409, "idempotency-key-in-use", None),
            ),
            (
                CommandError::Corrupt("undecodable".into()),
                (500, "internal-error", None),
            ),
            (
                CommandError::Store(EventStoreError::Unavailable("gone".into())),
                (503, "store-unavailable", None),
            ),
        ];
        for (error, (status, code, version)) in cases {
            let shown = error.to_string();
            assert_eq!(
                answer(error.into()),
                (status, code.to_owned(), version),
                "{shown}"
            );
        }
    }

    #[test]
    fn a_command_outcome_is_labelled_from_its_typed_error() {
        let transition = OrderError::InvalidTransition {
            command: "ship",
            status: OrderStatus::Created,
        };
        let forgotten = personal_data::PersonalDataError::CustomerForgotten {
            customer_id: Uuid::nil(),
        };
        let cases: [(CommandError<OrderError>, &str); 11] = [
            (CommandError::Rejected(OrderError::NoItems), "rejected"),
            (
                CommandError::Rejected(OrderError::OrderNotFound),
                "not_found",
            ),
            (CommandError::Rejected(transition), "conflict"),
            (CommandError::Denied(AccessDenied::NotFound), "denied"),
            (CommandError::Denied(AccessDenied::Forbidden), "denied"),
            (
                CommandError::PreconditionFailed {
                    expected: 1,
                    actual: 2,
                },
                "precondition_failed",
            ),
            (CommandError::Conflict { attempts: 3 }, "conflict"),
            (CommandError::IdempotencyKeyUsed(None), "conflict"),
            (CommandError::PersonalData(forgotten), "conflict"),
            (CommandError::Corrupt("bad".into()), "error"),
            (
                CommandError::Store(EventStoreError::unavailable(std::io::Error::other("down"))),
                "error",
            ),
        ];
        for (error, label) in cases {
            assert_eq!(CommandOutcome::from(&error).as_str(), label, "{error}");
        }
        assert_eq!(CommandOutcome::Accepted.as_str(), "accepted");
        assert_eq!(CommandOutcome::Replayed.as_str(), "replayed");
    }

    #[test]
    fn a_staff_only_refusal_is_a_403_that_says_what_only_staff_may_do() {
        let problem = Problem::from(crate::auth::StaffOnly("ship orders"));
        assert_eq!((problem.status, problem.code.as_str()), (403, "forbidden"));
        assert_eq!(problem.detail, "only staff may ship orders");
    }
}
