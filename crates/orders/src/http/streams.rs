//! Live streams of the feed over server-sent events (`GET /feed/stream`), for consumers without
//! Kafka: each message is an event as the Kafka topic carries it (`orders.order-event/v1`), its
//! SSE `id` its feed position, so a client that reconnects with `Last-Event-ID` (as browsers'
//! `EventSource` do by themselves) resumes exactly after the last event it received. The fan-out
//! and the replay are `live_feed`'s; this file is the HTTP face.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use event_store::Feed;
use futures::StreamExt;
use live_feed::Item;
use outbox::event::Published;
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::ApiQuery;
use super::{AppState, Problem};
use crate::auth::Principal;

/// How often an idle stream sends a comment line, so that proxies keep the connection open.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// Where a stream starts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Start after this feed position (`0`: from the first event). Without it (and without a
    /// `Last-Event-ID` header, which wins), the stream starts at the live head.
    pub after: Option<u64>,
}

/// Every event of the feed after a position, then each new one as it is numbered (staff).
///
/// Each message's `id` is the event's feed position and its `data` the event as the Kafka topic
/// carries it; personal fields stay sealed, as on the topic. A client that falls more than
/// 1 024 events behind gets a `behind` message saying where to resume, and the stream ends;
/// reconnecting with `Last-Event-ID` resumes there.
#[utoipa::path(get, path = "/feed/stream", tag = "feed", params(StreamParams,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this position (sent by EventSource on a reconnect)")),
    responses(
        (status = 200, description = "A stream of server-sent events", content_type = "text/event-stream", body = String),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn feed_stream(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<StreamParams>,
) -> Result<Response, Problem> {
    principal.require_staff("read the feed stream")?;
    let store = state.handler.store().clone();
    let after = match resume_after(&headers)?.or(params.after) {
        Some(after) => after,
        None => store.head().await?,
    };
    let events = state.live.subscribe(store, after).map(|item| {
        Ok::<_, Infallible>(match item {
            Item::Event(event) => {
                let position = event.position;
                let message = Published::from_feed((*event).clone());
                match Event::default().id(position.to_string()).json_data(&message) {
                    Ok(sse) => sse,
                    Err(error) => {
                        tracing::error!(%error, position, "an event could not be encoded for a stream");
                        Event::default().comment("encoding failed")
                    }
                }
            }
            Item::Behind { resume_after } => ended(
                "behind",
                resume_after,
                "this client fell too far behind the live feed; reconnect with Last-Event-ID (or after) set to resume_after",
            ),
            Item::Failed { resume_after } => ended(
                "unavailable",
                resume_after,
                "the feed could not be read; reconnect with Last-Event-ID (or after) set to resume_after",
            ),
        })
    });
    metrics::counter!("live_streams_opened_total", "stream" => "feed").increment(1);
    let retry = futures::stream::once(async { Ok(Event::default().retry(live_feed::RECONNECT)) });
    Ok(Sse::new(retry.chain(events))
        .keep_alive(KeepAlive::new().interval(HEARTBEAT))
        .into_response())
}

/// The last message of a stream that ends: what happened, and where to resume.
fn ended(kind: &'static str, resume_after: u64, detail: &str) -> Event {
    let body = serde_json::json!({ "resume_after": resume_after, "detail": detail });
    Event::default().event(kind).data(body.to_string())
}

/// The position in `Last-Event-ID`, if the client sent one.
fn resume_after(headers: &HeaderMap) -> Result<Option<u64>, Problem> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid-header",
                "Last-Event-ID must be a feed position (a non-negative integer) from this stream",
            )
        })
}
