//! Liveness and readiness.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use event_store::EventStore;
use serde_json::{Value, json};

use super::AppState;

/// The process is up.
#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, description = "Alive")))]
pub async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The service can take traffic: the store answers (on PostgreSQL: the server in use accepts
/// writes, and the answer names it as `primary`) and shutdown has not begun.
#[utoipa::path(get, path = "/health/ready", tag = "health", responses((status = 200, description = "Ready"), (status = 503, description = "Store unreachable or shutting down")))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if state.shutting_down.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "shutting down" })),
        );
    }
    match state.handler.store().ping().await {
        Ok(()) => {
            let store = state.handler.store();
            let mut body = json!({ "status": "ok", "store": store.kind() });
            if let Some(primary) = store.primary() {
                body["primary"] = json!(primary);
            }
            (StatusCode::OK, Json(body))
        }
        Err(error) => {
            tracing::warn!(%error, "readiness: store unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "store unavailable" })),
            )
        }
    }
}
