//! Answering a retried request from its stored idempotency record.

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use event_store::{EventStore, IdempotencyRecord};

use super::consistency::ConsistencyToken;
use super::dto::OrderResponse;
use super::orders::command_response;
use super::{AppState, Problem};
use crate::commands::IdempotencyKey;

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
    let status = record.response["status"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(Problem::internal)?;
    let mut body: OrderResponse =
        serde_json::from_value(record.response["body"].clone()).map_err(|error| {
            tracing::error!(%error, "stored idempotent response does not decode");
            Problem::internal()
        })?;
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
