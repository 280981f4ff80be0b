//! Staff endpoints for the read models: their state (checkpoint, lag, lease holder) and their
//! parked events, which staff can retry or skip. Every action is logged with who did it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use event_store::Feed;
use read_model::{Checkpoint, Operate, ParkedEvent, RetryOutcome};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{AppState, Problem};
use crate::auth::Principal;

/// One read model's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectionState {
    /// Its name (`orders`, `customer-summaries`).
    pub name: String,
    /// The generation of tables that serves.
    pub generation: i32,
    /// The last feed position applied.
    pub position: u64,
    /// Events in the feed not applied yet.
    pub lag: u64,
    /// The instance holding its lease, if one ever took it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<LeaseHolder>,
    /// Events it parked.
    pub parked: usize,
}

/// Who holds a read model's lease.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeaseHolder {
    /// The instance (`ORDERS_INSTANCE_ID`).
    pub instance: String,
    /// The lease's epoch.
    pub epoch: u64,
    /// Seconds the lease still runs; absent once it has ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in_seconds: Option<f64>,
}

/// An event a read model could not apply.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParkedEventResponse {
    /// Its feed position.
    pub position: u64,
    /// Its id.
    pub event_id: Uuid,
    /// Why it could not be applied (the latest attempt's error).
    pub error: String,
    /// When it was (last) parked.
    pub parked_at: chrono::DateTime<chrono::Utc>,
}

impl From<ParkedEvent> for ParkedEventResponse {
    fn from(p: ParkedEvent) -> Self {
        Self {
            position: p.position,
            event_id: p.event_id,
            error: p.error,
            parked_at: p.parked_at,
        }
    }
}

fn failed(error: read_model::Error) -> Problem {
    match error {
        read_model::Error::NotParked {
            projection,
            position,
        } => Problem::new(
            StatusCode::NOT_FOUND,
            "not-parked",
            format!("read model {projection} has no parked event at position {position}"),
        ),
        other => {
            tracing::error!(error = %other, "read model operation failed");
            Problem::unavailable()
        }
    }
}

fn unknown(name: &str) -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "projection-not-found",
        format!("there is no read model {name:?}; GET /projections lists them"),
    )
}

/// The read model called `name`, or 404.
fn model<'a>(state: &'a AppState, name: &str) -> Result<&'a dyn Operate, Problem> {
    state
        .projections
        .models
        .named(name)
        .ok_or_else(|| unknown(name))
}

async fn describe(engine: &dyn Operate, head: u64) -> Result<ProjectionState, Problem> {
    let checkpoint: Option<Checkpoint> = engine.checkpoint().await.map_err(failed)?;
    let checkpoint = checkpoint.ok_or_else(Problem::unavailable)?;
    let parked = engine.parked().await.map_err(failed)?.len();
    Ok(ProjectionState {
        name: engine.name().to_owned(),
        generation: checkpoint.generation,
        position: checkpoint.position,
        lag: head.saturating_sub(checkpoint.position),
        holder: checkpoint.holder.map(|h| LeaseHolder {
            instance: h.owner,
            epoch: h.epoch,
            expires_in_seconds: h.expires_in.map(|d| d.as_secs_f64()),
        }),
        parked,
    })
}

/// Every read model: checkpoint, lag, lease holder and parked events (staff).
#[utoipa::path(get, path = "/projections", tag = "operations",
    responses((status = 200, body = Vec<ProjectionState>), (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Response, Problem> {
    principal.require_staff("operate the read models")?;
    let head = state.handler.store().head().await?;
    let mut all = Vec::new();
    for model in state.projections.models.all() {
        all.push(describe(model, head).await?);
    }
    Ok(Json(all).into_response())
}

/// A read model's parked events, in position order (staff).
#[utoipa::path(get, path = "/projections/{name}/parked", tag = "operations", params(("name" = String, Path)),
    responses((status = 200, body = Vec<ParkedEventResponse>), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn parked(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<Response, Problem> {
    principal.require_staff("operate the read models")?;
    let parked = model(&state, &name)?.parked().await.map_err(failed)?;
    let body: Vec<ParkedEventResponse> = parked.into_iter().map(Into::into).collect();
    Ok(Json(body).into_response())
}

/// The position of one parked event. Any u64 is a valid question; one beyond what the feed can
/// number (a `BIGINT`) is simply not parked.
fn position(name: &str, raw: &str) -> Result<u64, Problem> {
    let position: u64 = raw.parse().map_err(|_| {
        Problem::bad_request(
            "invalid-path",
            format!("{raw:?} is not a feed position (a non-negative integer)"),
        )
    })?;
    if i64::try_from(position).is_err() {
        return Err(failed(read_model::Error::NotParked {
            projection: name.to_owned(),
            position,
        }));
    }
    Ok(position)
}

/// Applies a parked event again (staff): 200 when it applied (it is no longer parked), 409
/// `still-fails` with the new error when it failed again (it stays parked).
#[utoipa::path(post, path = "/projections/{name}/parked/{position}/retry", tag = "operations",
    params(("name" = String, Path), ("position" = u64, Path)),
    responses((status = 200, description = "Applied; no longer parked"), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, description = "It failed again and stays parked", body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn retry(
    State(state): State<AppState>,
    principal: Principal,
    Path((name, raw)): Path<(String, String)>,
) -> Result<Response, Problem> {
    principal.require_staff("operate the read models")?;
    let position = position(&name, &raw)?;
    let outcome = model(&state, &name)?
        .retry_parked(position)
        .await
        .map_err(failed)?;
    tracing::warn!(projection = %name, position, by = %principal.subject(), ?outcome, "parked event retried");
    match outcome {
        RetryOutcome::Applied => Ok(Json(
            serde_json::json!({"position": position, "outcome": "applied"}),
        )
        .into_response()),
        RetryOutcome::StillFails(error) => Err(Problem::new(
            StatusCode::CONFLICT,
            "still-fails",
            format!("the event at position {position} failed again and stays parked: {error}"),
        )),
    }
}

/// Gives up on a parked event (staff): it is no longer parked and never applied.
#[utoipa::path(post, path = "/projections/{name}/parked/{position}/skip", tag = "operations",
    params(("name" = String, Path), ("position" = u64, Path)),
    responses((status = 204, description = "Skipped"), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn skip(
    State(state): State<AppState>,
    principal: Principal,
    Path((name, raw)): Path<(String, String)>,
) -> Result<Response, Problem> {
    principal.require_staff("operate the read models")?;
    let position = position(&name, &raw)?;
    model(&state, &name)?
        .skip_parked(position)
        .await
        .map_err(failed)?;
    tracing::warn!(projection = %name, position, by = %principal.subject(), "parked event skipped: it will never be applied");
    Ok(StatusCode::NO_CONTENT.into_response())
}
