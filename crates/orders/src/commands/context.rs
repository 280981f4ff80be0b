//! Who asks, why, and under which conditions.

use uuid::Uuid;

/// The circumstances of one command: they end up in every event's metadata and in the append's
/// concurrency and idempotency checks.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// Ties together everything one user action caused (from `X-Correlation-Id` or the request id).
    pub correlation_id: Uuid,
    /// The message that directly caused this command (the HTTP request id).
    pub causation_id: Option<Uuid>,
    /// The authenticated subject.
    pub user_id: Option<String>,
    /// A version the caller pinned (`If-Match`): no retry, a mismatch is reported.
    pub expected_version: Option<u64>,
    /// Store the response under this key, in the same transaction as the events.
    pub idempotency: Option<IdempotencyKey>,
    /// W3C trace context of the request, if any.
    pub traceparent: Option<String>,
    /// The caller just generated the aggregate id, so the stream cannot exist yet: the first
    /// attempt skips loading it (the append still checks "no stream").
    pub new_stream: bool,
}

impl CommandContext {
    /// A context with a fresh correlation id and nothing else.
    pub fn new() -> Self {
        Self {
            correlation_id: Uuid::now_v7(),
            causation_id: None,
            user_id: None,
            expected_version: None,
            idempotency: None,
            traceparent: None,
            new_stream: false,
        }
    }
}

impl Default for CommandContext {
    fn default() -> Self {
        Self::new()
    }
}

/// An `Idempotency-Key` and the fingerprint of the request that used it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// Whose key it is (the authenticated subject).
    pub scope: String,
    /// The key.
    pub key: String,
    /// SHA-256 of method, path and body.
    pub request_hash: String,
}
