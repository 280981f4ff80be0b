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
use outbox::event::{Published, SCHEMA_V1};
use serde::Deserialize;
use utoipa::IntoParams;

use std::collections::HashSet;

use domain::{Aggregate, ORDER_CREATED, OrderAggregate};
use event_store::FeedEvent;
use personal_data::KeyRing;
use uuid::Uuid;

use super::extract::{ApiQuery, CustomerId};
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
    let after = start_after(&store, &headers, &params).await?;
    let events = state.live.subscribe(store, after).map(|item| {
        Ok::<_, Infallible>(match item {
            Item::Event(event) => {
                let position = event.position;
                // Encoded once for every stream of the feed (the hub shares the text).
                let data = event.rendered(SCHEMA_V1, |event| {
                    serde_json::to_string(&Published::from_feed(event.clone())).unwrap_or_else(|error| {
                        tracing::error!(%error, position, "an event could not be encoded for a stream");
                        String::new()
                    })
                });
                if data.is_empty() {
                    Event::default().comment("encoding failed")
                } else {
                    Event::default().id(position.to_string()).data(&*data)
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

/// The events of one customer's orders, then each new one (the customer, or staff), with their
/// personal fields revealed as `GET /orders/{id}` shows them (`null` once the customer is
/// forgotten).
///
/// Messages, `id`s and the start are as on `GET /feed/stream`; the `id` is the global feed
/// position, so the ids of one customer's stream have gaps (other customers' events).
#[utoipa::path(get, path = "/customers/{id}/orders/stream", tag = "feed", params(("id" = Uuid, Path), StreamParams,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this position (sent by EventSource on a reconnect)")),
    responses(
        (status = 200, description = "A stream of server-sent events", content_type = "text/event-stream", body = String),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, description = "Another customer's stream", body = Problem),
        (status = 503, description = "The order read model did not reach the start position in time", body = Problem)),
    security(("bearer" = [])))]
pub async fn customer_stream(
    State(state): State<AppState>,
    principal: Principal,
    CustomerId(customer): CustomerId,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<StreamParams>,
) -> Result<Response, Problem> {
    if !principal.can_see(Some(customer)) {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "customer-not-found",
            format!("no stream of customer {customer} for this caller"),
        ));
    }
    let store = state.handler.store().clone();
    let after = start_after(&store, &headers, &params).await?;
    // Only `OrderCreated` names the customer: the orders created up to `after` come from the
    // order read model once it has applied `after`, later ones from their creation events.
    let read = caught_up_to(&state, after).await?;
    let orders: HashSet<Uuid> = state
        .projections
        .models
        .orders
        .order_ids_of(read, customer)
        .await
        .map_err(super::reads::read_model_down)?
        .into_iter()
        .collect();
    let ring = state.handler.key_ring().cloned();
    let events = Box::pin(state.live.subscribe(store, after));
    let stream = futures::stream::unfold(
        (events, orders, ring),
        move |(mut events, mut orders, ring)| async move {
            loop {
                let message = match events.next().await? {
                    Item::Event(event) => {
                        if !of_customer(&event, customer, &mut orders) {
                            continue;
                        }
                        revealed(&event, ring.as_ref()).await
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
                };
                return Some((Ok::<_, Infallible>(message), (events, orders, ring)));
            }
        },
    );
    metrics::counter!("live_streams_opened_total", "stream" => "customer").increment(1);
    let retry = futures::stream::once(async { Ok(Event::default().retry(live_feed::RECONNECT)) });
    Ok(Sse::new(retry.chain(stream))
        .keep_alive(KeepAlive::new().interval(HEARTBEAT))
        .into_response())
}

/// The generation of the order read model once it has applied `position` (waiting up to the
/// query wait, `ORDERS_READ_WAIT`); 503 when it has not.
async fn caught_up_to(state: &AppState, position: u64) -> Result<i32, Problem> {
    state.projections.wait_for(position, state.read_wait).await;
    let current = super::reads::current(state, order_views::ORDERS_PROJECTION).await?;
    if current.position < position {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "read-model-behind",
            format!(
                "the order read model has not reached position {position} yet (it is at {}); retry shortly",
                current.position
            ),
        ));
    }
    Ok(current.generation)
}

/// Whether `event` belongs to one of `customer`'s orders; learns the orders it creates.
fn of_customer(event: &FeedEvent, customer: Uuid, orders: &mut HashSet<Uuid>) -> bool {
    if event.aggregate_type != OrderAggregate::TYPE {
        return false;
    }
    if orders.contains(&event.aggregate_id) {
        return true;
    }
    #[derive(Deserialize)]
    struct Created {
        customer_id: Uuid,
    }
    let created = event.event_type == ORDER_CREATED
        && serde_json::from_str::<Created>(event.payload.get())
            .is_ok_and(|created| created.customer_id == customer);
    if created {
        orders.insert(event.aggregate_id);
    }
    created
}

/// `event` as the Kafka message with its sealed fields opened (or `null` once forgotten).
async fn revealed(event: &FeedEvent, ring: Option<&KeyRing>) -> Event {
    let position = event.position;
    let mut message = match serde_json::to_value(Published::from_feed(event.clone())) {
        Ok(message) => message,
        Err(error) => {
            tracing::error!(%error, position, "an event could not be encoded for a stream");
            return Event::default().comment("encoding failed");
        }
    };
    if let Some(ring) = ring
        && let Err(error) = ring.reveal(&mut message).await
    {
        tracing::error!(%error, position, "personal data could not be revealed for a stream");
        return ended(
            "unavailable",
            position.saturating_sub(1),
            "personal data could not be read; reconnect with Last-Event-ID set to resume_after",
        );
    }
    Event::default()
        .id(position.to_string())
        .data(message.to_string())
}

/// The last message of a stream that ends: what happened, and where to resume.
fn ended(kind: &'static str, resume_after: u64, detail: &str) -> Event {
    let body = serde_json::json!({ "resume_after": resume_after, "detail": detail });
    Event::default().event(kind).data(body.to_string())
}

/// Where a stream starts: after `Last-Event-ID`, else `after`, else at the head. A position the
/// feed has not issued is refused at once (a stream could only wait for it in vain).
async fn start_after(
    store: &store::Store,
    headers: &HeaderMap,
    params: &StreamParams,
) -> Result<u64, Problem> {
    let head = store.head().await?;
    match resume_after(headers)?.or(params.after) {
        Some(after) if after > head => Err(Problem::bad_request(
            "position-not-issued",
            format!(
                "{after} is beyond the last position the feed has issued ({head}); resume from a position this stream sent, or 0"
            ),
        )),
        Some(after) => Ok(after),
        None => Ok(head),
    }
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
