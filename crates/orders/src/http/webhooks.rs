//! Staff endpoints for webhooks: register an endpoint (its signing secret is shown once), list
//! and inspect endpoints with their checkpoint, lag and last attempt, pause and resume, replay
//! from a position, rotate the secret, delete. Delivery itself is the `webhooks` crate's.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use webhooks::{EndpointState, EndpointStatus, Filter, Registration, WebhookError};

use super::extract::{JsonBody, WebhookId};
use super::projections::LeaseHolder;
use super::{AppState, Problem};
use crate::auth::Principal;

const ACTION: &str = "manage webhooks";

/// A new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterWebhookRequest {
    /// Where deliveries go: `https`, a public address (see the README's outbound rules).
    #[schema(example = "https://hooks.example.com/orders")]
    pub url: String,
    /// Free text for people (at most 200 characters).
    #[serde(default)]
    pub description: String,
    /// Only these event types (`OrderCreated`, `OrderConfirmed`, `OrderCancelled`,
    /// `OrderShipped`, `OrderDelivered`, `ShippingAddressChanged`, `CustomerForgotten`); absent:
    /// every type.
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
    /// Only this customer's orders; absent: every customer's.
    #[serde(default)]
    pub customer_id: Option<Uuid>,
}

/// A change of state: `paused` stops deliveries; `active` resumes them (a failing endpoint
/// tries the event it was stuck on again at once).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookRequest {
    /// The state to set.
    pub state: SettableState,
}

/// The states staff can set (`failing` is set by the service).
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SettableState {
    /// Deliver.
    Active,
    /// Hold deliveries; the checkpoint waits.
    Paused,
}

/// Where a replay restarts.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Deliver again every wanted event after this feed position (0: the whole feed).
    pub after: u64,
}

/// An endpoint's state.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookState {
    /// Deliveries go out.
    Active,
    /// Paused by staff.
    Paused,
    /// Paused by the service: an event was refused for the whole retry period.
    Failing,
}

/// The last delivery attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptResponse {
    /// When it ended.
    pub at: DateTime<Utc>,
    /// The receiver's status; absent when no answer came.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it failed (the error, or the start of the answer's body); absent after a 2xx.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A webhook endpoint, with how its deliveries go.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookResponse {
    /// Its id.
    pub id: Uuid,
    /// Where deliveries go.
    pub url: String,
    /// Free text.
    pub description: String,
    /// The event types it receives; absent: every type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
    /// The customer whose orders it receives; absent: every customer's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<Uuid>,
    /// Whether deliveries go out.
    pub state: WebhookState,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// Who registered it.
    pub created_by: String,
    /// The last feed position delivered (or filtered out).
    pub checkpoint: u64,
    /// Feed events after the checkpoint.
    pub lag: u64,
    /// Events acknowledged.
    pub delivered: u64,
    /// The last acknowledgement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<DateTime<Utc>>,
    /// The first refused attempt at the event it is stuck on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    /// Refused attempts at that event.
    pub attempts: u64,
    /// When the next attempt is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<AttemptResponse>,
    /// Until when the previous secret still signs (after a rotation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_until: Option<DateTime<Utc>>,
    /// The instance delivering to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<LeaseHolder>,
}

/// A registered endpoint (or a rotated secret) with its signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    /// The endpoint.
    #[serde(flatten)]
    pub webhook: WebhookResponse,
    /// The signing secret (`whsec_…`), for the receiver's Standard Webhooks library. It is not
    /// shown again; rotate it if it is lost.
    pub secret: String,
}

impl From<EndpointStatus> for WebhookResponse {
    fn from(status: EndpointStatus) -> Self {
        let lag = status.lag();
        let EndpointStatus {
            endpoint,
            checkpoint,
            ..
        } = status;
        let health = endpoint.health;
        Self {
            id: endpoint.id,
            url: endpoint.url,
            description: endpoint.description,
            event_types: endpoint.filter.event_types,
            customer_id: endpoint.filter.customer_id,
            state: match endpoint.state {
                EndpointState::Active => WebhookState::Active,
                EndpointState::Paused => WebhookState::Paused,
                EndpointState::Failing => WebhookState::Failing,
            },
            created_at: endpoint.created_at,
            created_by: endpoint.created_by,
            checkpoint: checkpoint.as_ref().map_or(0, |c| c.position),
            lag,
            delivered: health.delivered,
            last_success_at: health.last_success_at,
            failing_since: health.failing_since,
            attempts: health.attempts,
            next_attempt_at: health.next_attempt_at,
            last_attempt: health.last_attempt.map(|a| AttemptResponse {
                at: a.at,
                status: a.status,
                error: a.error,
            }),
            previous_secret_until: endpoint
                .previous_secret
                .map(|(_, until)| until)
                .filter(|until| *until > Utc::now()),
            holder: checkpoint.and_then(|c| c.holder).map(|h| LeaseHolder {
                instance: h.owner,
                epoch: h.epoch,
                expires_in_seconds: h.expires_in.map(|d| d.as_secs_f64()),
            }),
        }
    }
}

impl From<WebhookError> for Problem {
    fn from(error: WebhookError) -> Self {
        let detail = error.to_string();
        match error {
            WebhookError::NotFound(_) => {
                Problem::new(StatusCode::NOT_FOUND, "webhook-not-found", detail)
            }
            WebhookError::Refused(_) => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "url-refused", detail)
            }
            WebhookError::Invalid(_) => {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-body", detail)
            }
            WebhookError::PositionNotIssued { .. } => {
                Problem::bad_request("position-not-issued", detail)
            }
            WebhookError::Unavailable(_) => {
                tracing::error!(error = %detail, "webhook operation failed");
                Problem::unavailable()
            }
        }
    }
}

fn with_secret(status: EndpointStatus, secret: &webhooks::SigningSecret) -> WebhookWithSecret {
    WebhookWithSecret {
        webhook: status.into(),
        secret: secret.expose(),
    }
}

/// Registers a webhook endpoint (staff). It receives the events committed from now on
/// (`POST /webhooks/{id}/replay` sends earlier ones). The answer holds the signing secret, shown
/// this once.
#[utoipa::path(post, path = "/webhooks", tag = "webhooks", request_body = RegisterWebhookRequest,
    responses((status = 201, body = WebhookWithSecret), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 415, body = Problem), (status = 422, description = "A refused URL (scheme, credentials, a private address) or filter", body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn register(
    State(state): State<AppState>,
    principal: Principal,
    JsonBody { value, .. }: JsonBody<RegisterWebhookRequest>,
) -> Result<Response, Problem> {
    principal.require_staff(ACTION)?;
    let registration = Registration {
        url: value.url,
        description: value.description,
        filter: Filter {
            event_types: value.event_types,
            customer_id: value.customer_id,
        },
    };
    let by = principal.subject();
    let (status, secret) = state.webhooks.register(registration, &by).await?;
    let id = status.endpoint.id;
    tracing::info!(endpoint = %id, url = %status.endpoint.url, by = %by, "webhook endpoint registered");
    let location = format!("/webhooks/{id}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(with_secret(status, &secret)),
    )
        .into_response())
}

/// Every webhook endpoint, oldest first (staff).
#[utoipa::path(get, path = "/webhooks", tag = "webhooks",
    responses((status = 200, body = Vec<WebhookResponse>), (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Response, Problem> {
    principal.require_staff(ACTION)?;
    let all: Vec<WebhookResponse> = state
        .webhooks
        .list()
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(all).into_response())
}

/// One webhook endpoint (staff).
#[utoipa::path(get, path = "/webhooks/{id}", tag = "webhooks", params(("id" = Uuid, Path)),
    responses((status = 200, body = WebhookResponse), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
    WebhookId(id): WebhookId,
) -> Result<Response, Problem> {
    principal.require_staff(ACTION)?;
    let status = state.webhooks.status(id).await?;
    Ok(Json(WebhookResponse::from(status)).into_response())
}

/// Pauses or resumes a webhook endpoint (staff).
#[utoipa::path(patch, path = "/webhooks/{id}", tag = "webhooks", params(("id" = Uuid, Path)), request_body = UpdateWebhookRequest,
    responses((status = 200, body = WebhookResponse), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 415, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    WebhookId(id): WebhookId,
    JsonBody { value, .. }: JsonBody<UpdateWebhookRequest>,
) -> Result<Response, Problem> {
    principal.require_staff(ACTION)?;
    let to = match value.state {
        SettableState::Active => EndpointState::Active,
        SettableState::Paused => EndpointState::Paused,
    };
    let status = state.webhooks.set_state(id, to).await?;
    tracing::warn!(endpoint = %id, state = to.as_str(), by = %principal.subject(), "webhook endpoint state set");
    Ok(Json(WebhookResponse::from(status)).into_response())
}

/// Deletes a webhook endpoint (staff). Deliveries stop; nothing is sent to it again.
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks", params(("id" = Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    WebhookId(id): WebhookId,
) -> Result<Response, Problem> {
    principal.require_staff(ACTION)?;
    state.webhooks.delete(id).await?;
    tracing::warn!(endpoint = %id, by = %principal.subject(), "webhook endpoint deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Restarts a webhook endpoint's deliveries after a feed position (staff): every event it
/// wants after `after` is sent again, in order.
#[utoipa::path(post, path = "/webhooks/{id}/replay", tag = "webhooks", params(("id" = Uuid, Path)), request_body = ReplayRequest,
    responses((status = 200, body = WebhookResponse), (status = 400, description = "A position past the feed's head, or a malformed request", body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn replay(
    State(state): State<AppState>,
    principal: Principal,
    WebhookId(id): WebhookId,
    JsonBody { value, .. }: JsonBody<ReplayRequest>,
) -> Result<Response, Problem> {
    principal.require_staff(ACTION)?;
    let status = state.webhooks.replay(id, value.after).await?;
    tracing::warn!(endpoint = %id, after = value.after, by = %principal.subject(), "webhook endpoint replayed");
    Ok(Json(WebhookResponse::from(status)).into_response())
}

/// Gives a webhook endpoint a new signing secret (staff), shown this once. Deliveries carry
/// signatures by both the new and the previous secret for 24 hours, so the receiver can switch
/// without losing one.
#[utoipa::path(post, path = "/webhooks/{id}/rotate-secret", tag = "webhooks", params(("id" = Uuid, Path)),
    responses((status = 200, body = WebhookWithSecret), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    principal: Principal,
    WebhookId(id): WebhookId,
) -> Result<Response, Problem> {
    principal.require_staff(ACTION)?;
    let (status, secret) = state.webhooks.rotate_secret(id).await?;
    tracing::warn!(endpoint = %id, by = %principal.subject(), "webhook signing secret rotated");
    Ok(Json(with_secret(status, &secret)).into_response())
}
