//! Answering a retried request from its stored idempotency record.

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use event_store::EventStore;

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
    body.position = Some(store.global_position(body.id, body.version).await?);
    let mut response = command_response(status, body);
    response
        .headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(Some(response))
}
