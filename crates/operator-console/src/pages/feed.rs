//! The live feed: the latest events, then every new one as it is numbered, over server-sent
//! events. The page filters by event type and pauses in the browser (`console.js`); the stream
//! carries no payloads, so no personal data.

use domain::{Aggregate, OrderAggregate};
use std::convert::Infallible;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use event_store::{Feed, RecordedEvent};
use futures::{Stream, StreamExt};
use live_feed::Item;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::layout::{self, Section};
use crate::ConsoleState;
use crate::guard::Staff;
use personal_data::CUSTOMER_FORGOTTEN;

/// Events shown when the page opens.
const RECENT: u64 = 20;

/// `GET /console/feed`.
pub async fn show(State(state): State<ConsoleState>, staff: Staff) -> Response {
    let store = &state.store;
    let head = store.head().await.unwrap_or(0);
    let mut recent = store
        .read_all(
            head.saturating_sub(RECENT),
            usize::try_from(RECENT).unwrap_or(20),
        )
        .await
        .unwrap_or_default();
    recent.reverse();
    let body = html! {
        div class="feed-controls" {
            div class="field" {
                label for="feed-type" { "Event type" }
                select id="feed-type" data-feed-filter {
                    option value="" { "all" }
                    @for event_type in domain::ORDER_EVENT_TYPES.iter().chain([&CUSTOMER_FORGOTTEN]) {
                        option value=(event_type) { (event_type) }
                    }
                }
            }
            button type="button" data-feed-pause aria-pressed="false" { "Pause" }
            p class="feed-state" role="status" data-feed-state { "Connecting…" }
        }
        div class="scroll" {
            table data-feed data-after=(head) {
                caption class="visually-hidden" { "Events, newest first" }
                thead { tr {
                    th scope="col" class="num" { "Position" } th scope="col" { "Type" } th scope="col" { "Stream" }
                    th scope="col" class="num" { "Version" } th scope="col" { "Committed" } th scope="col" { "User" }
                } }
                tbody data-feed-rows {
                    @for event in &recent { (row(event)) }
                }
            }
        }
    };
    layout::page(&staff, Section::Feed, "Live feed", body).into_response()
}

fn row(event: &RecordedEvent) -> Markup {
    html! {
        tr data-type=(event.event_type) {
            td class="num" { (event.position.unwrap_or(0)) }
            td { (event.event_type) }
            td class="mono" {
                @if event.aggregate_type == OrderAggregate::TYPE {
                    a href={ "/console/orders/" (event.aggregate_id) } { (event.aggregate_id) }
                } @else { (event.aggregate_type) " " (event.aggregate_id) }
            }
            td class="num" { (event.version) }
            td { (layout::time(&event.recorded_at)) }
            td { (layout::text(&event.metadata["user_id"])) }
        }
    }
}

/// Where the stream starts.
#[derive(Debug, Deserialize)]
pub struct FeedStart {
    after: Option<u64>,
}

/// `GET /console/feed/events`: every event after `after` (or `Last-Event-ID`, when the browser
/// reconnects), then each new one, as server-sent events whose id is the position.
pub async fn events(
    State(state): State<ConsoleState>,
    _staff: Staff,
    headers: HeaderMap,
    Query(from): Query<FeedStart>,
) -> Response {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let store = state.store.clone();
    let after = match resume.or(from.after) {
        Some(after) => after,
        None => store.head().await.unwrap_or(0),
    };
    Sse::new(stream(state, after))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// The live feed as the page shows it, from the service's one fan-out (`live_feed`, the same
/// mechanism as `GET /feed/stream`): no payloads, so no personal data. A page that falls behind
/// is told to reconnect, and its `EventSource` does so with `Last-Event-ID`.
fn stream(state: ConsoleState, after: u64) -> impl Stream<Item = Result<Event, Infallible>> {
    let retry = futures::stream::once(async { Ok(Event::default().retry(live_feed::RECONNECT)) });
    let events = state
        .live
        .subscribe(state.store.clone(), after)
        .map(|item| {
            Ok(match item {
                Item::Event(event) => {
                    let metadata: serde_json::Value =
                        serde_json::from_str(event.metadata.get()).unwrap_or_default();
                    Event::default()
                        .id(event.position.to_string())
                        .event("feed")
                        .data(
                            json!({
                                "position": event.position,
                                "event_type": event.event_type,
                                "aggregate_type": event.aggregate_type,
                                "aggregate_id": event.aggregate_id,
                                "version": event.version,
                                "recorded_at": event.recorded_at,
                                "user_id": metadata["user_id"],
                            })
                            .to_string(),
                        )
                }
                Item::Behind { resume_after } | Item::Failed { resume_after } => Event::default()
                    .event("behind")
                    .data(json!({ "resume_after": resume_after }).to_string()),
            })
        });
    retry.chain(events)
}
