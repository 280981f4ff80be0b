//! Personal data over HTTP: revealing sealed fields in responses, and forgetting a customer.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::CommandHeaders;
use super::{AppState, Problem};
use crate::auth::Principal;
use domain::EventMetadata;
use personal_data::forget_customer;

/// Largest response body the reveal layer reads (lists are paged far below this).
const MAX_REVEALED_BODY: usize = 16 * 1024 * 1024;

/// Opens the sealed personal fields of a JSON response on its way out. Handlers have already
/// decided what the caller may see; everything they render from stores holds ciphertext, so
/// this is the one place where plain personal data exists in a response. A body without a
/// sealed string passes untouched (a byte search, no parse).
pub async fn reveal(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let Some(ring) = state.handler.key_ring() else {
        return response;
    };
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.starts_with("application/json") || v.starts_with("application/problem+json")
        });
    if !is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_REVEALED_BODY).await else {
        return Problem::internal().into_response();
    };
    // Sealed values, or a cancellation reason that may be legacy plain text (see
    // `KeyRing::reveal`).
    if memchr::memmem::find(&bytes, b"\"enc:").is_none()
        && memchr::memmem::find(&bytes, b"\"cancellation_reason\":\"").is_none()
    {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    if let Err(error) = ring.reveal(&mut value).await {
        return Problem::from(error).into_response();
    }
    let Ok(revealed) = serde_json::to_vec(&value) else {
        return Problem::internal().into_response();
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(revealed))
}

/// The answer to `POST /customers/{id}/forget`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForgetResponse {
    /// The customer.
    pub customer_id: Uuid,
    /// When the customer's key was destroyed (the first time, if forgotten before).
    pub forgotten_at: chrono::DateTime<chrono::Utc>,
    /// Who asked (the staff token's subject, or `cli`).
    pub forgotten_by: String,
}

/// Forget a customer (staff): destroy the key of their personal data. From then on every view
/// shows their addresses, contacts and cancellation reasons as `null` with
/// `"personal_data": "erased"`; orders, amounts and history stay. Forgetting twice is harmless.
#[utoipa::path(post, path = "/customers/{id}/forget", tag = "customers", params(("id" = Uuid, Path)),
    responses((status = 200, body = ForgetResponse), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn forget(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    // Checked like every command's; the correlation and request ids go on the record. Forgetting
    // is idempotent by itself, so `Idempotency-Key` and `If-Match` change nothing.
    headers: CommandHeaders,
) -> Result<Json<ForgetResponse>, Problem> {
    principal.require_staff("forget a customer")?;
    let customer_id = Uuid::parse_str(&id).map_err(|_| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "customer-not-found",
            "a customer id is a UUID",
        )
    })?;
    let Some(ring) = state.handler.key_ring() else {
        return Err(Problem::unavailable());
    };
    let mut metadata = EventMetadata::new(headers.correlation_id, chrono::Utc::now())
        .with_user(principal.subject());
    if let Some(request_id) = headers.request_id {
        metadata = metadata.with_causation(request_id);
    }
    if let Some(traceparent) = headers.traceparent {
        metadata = metadata.with_traceparent(traceparent);
    }
    let record = forget_customer(ring, state.handler.store(), customer_id, metadata).await?;
    // Cached responses hold ciphertext only, which now reveals as erased: nothing to purge.
    tracing::info!(%customer_id, "customer forgotten");
    Ok(Json(ForgetResponse {
        customer_id,
        forgotten_at: record.forgotten_at,
        forgotten_by: record.forgotten_by,
    }))
}
