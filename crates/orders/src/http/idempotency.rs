//! Answering a retried request from its stored idempotency record.

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use event_store::{EventStore, IdempotencyRecord};
use serde::{Deserialize, Serialize};

use super::consistency::ConsistencyToken;
use super::dto::OrderResponse;
use super::response::command_response;
use super::{AppState, Problem};
use crate::commands::IdempotencyKey;

/// A command's response as its idempotency record keeps it (the record's `response` column),
/// written when the command commits and read back to answer a retry with the same key.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct StoredResponse {
    /// The status the command was answered with (200 or 201).
    status: u16,
    /// The body it was answered with.
    body: OrderResponse,
}

impl StoredResponse {
    pub(super) fn new(status: StatusCode, body: OrderResponse) -> Self {
        Self {
            status: status.as_u16(),
            body,
        }
    }

    /// The record's JSON. An `OrderResponse` always serializes.
    pub(super) fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// The stored response for `key`, re-sent, or `None` if the key is new. The same key with another
/// request is refused with 422.
pub(super) async fn replay(
    state: &AppState,
    key: &IdempotencyKey,
) -> Result<Option<Response>, Problem> {
    let store = state.handler.store();
    let Some(record) = store.find_idempotency_record(&key.scope, &key.key).await? else {
        return Ok(None);
    };
    answer(state, key, &record).await.map(Some)
}

/// Answers the request `key` describes from `record`, the stored outcome of the request that
/// first used the key. The same key with another request is refused with 422.
pub(super) async fn answer(
    state: &AppState,
    key: &IdempotencyKey,
    record: &IdempotencyRecord,
) -> Result<Response, Problem> {
    if record.request_hash != key.request_hash {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "this Idempotency-Key was already used for a different request; use a new key for a new request",
        ));
    }
    let stored = StoredResponse::deserialize(&record.response).map_err(|error| {
        tracing::error!(%error, "stored idempotent response does not decode");
        Problem::internal()
    })?;
    let status = StatusCode::from_u16(stored.status).map_err(|error| {
        tracing::error!(%error, "stored idempotent response has no valid status");
        Problem::internal()
    })?;
    let mut body = stored.body;
    // Records written before the token existed lack it; it is derived, never stored state.
    body.consistency_token = ConsistencyToken {
        aggregate_id: body.id,
        version: body.version,
    }
    .to_string();
    body.position = state
        .handler
        .store()
        .position_of(body.id, body.version)
        .await?;
    let mut response = command_response(status, body);
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(response)
}
