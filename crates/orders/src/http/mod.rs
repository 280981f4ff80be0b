//! The HTTP API: routes, middleware, and the mapping of every error to a problem+json response.

pub mod consistency;
mod contract;
mod dto;
mod errors;
mod extract;
mod health;
mod idempotency;
mod metrics;
mod openapi;
mod orders;
mod personal;
mod problem;
mod projections;
mod queries;
mod reads;
mod response;
mod streams;
mod waits;
mod webhooks;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use dto::{CancelOrderRequest, CreateOrderRequest, OrderResponse, ShipOrderRequest};
pub use extract::{
    CommandHeaders, MAX_REQUEST_ID_LEN, bearer_token, check_request_id, parse_if_match, parse_json,
    parse_optional_json, parse_traceparent,
};
pub use openapi::{ApiDoc, document};
pub use problem::Problem;
pub use waits::{MAX_WAITS_PER_CALLER, WaitSlots};

use crate::auth::JwtKeys;
use crate::cache::OrderCache;
use crate::commands::CommandHandler;
use order_views::Projections;
use store::Store;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Executes commands and loads orders.
    pub handler: CommandHandler<Store>,
    /// Verifies bearer tokens.
    pub keys: JwtKeys,
    /// Set when shutdown begins: readiness turns 503 so load balancers stop sending traffic.
    pub shutting_down: Arc<AtomicBool>,
    /// The read side.
    pub projections: Projections,
    /// Redis cache of orders, when configured.
    pub cache: Option<OrderCache>,
    /// Longest a query waits for the read model to reach `min_position`.
    pub read_wait: Duration,
    /// Queries waiting for the read model, per caller.
    pub waits: WaitSlots,
    /// Hot standbys that answer queries (`DATABASE_READ_URL`); `None`: the primary answers all.
    pub replicas: Option<store::replicas::Replicas>,
    /// Longest a query with a consistency token waits for a standby before the primary answers.
    pub standby_wait: Duration,
    /// The feed's fan-out to live streams (`/feed/stream`, the console's live feed).
    pub live: live_feed::Hub,
    /// Webhook endpoints and their delivery.
    pub webhooks: ::webhooks::Webhooks,
}

/// Limits applied to every request.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Largest body accepted (413 above).
    pub body_limit: usize,
    /// Longest a request may take (408 after).
    pub request_timeout: Duration,
}

/// The whole API with its middleware, and the operator console at `/console` when given.
pub fn router(
    state: AppState,
    limits: HttpLimits,
    console: Option<operator_console::Console>,
) -> Router {
    let api = Router::new()
        .route(
            "/orders",
            post(orders::create_order).get(queries::list_orders),
        )
        .route("/stats", get(queries::stats))
        .route("/customers/{id}/summary", get(queries::customer_summary))
        .route("/customers/{id}/forget", post(personal::forget))
        .route("/projections", get(projections::list))
        .route("/projections/{name}/parked", get(projections::parked))
        .route(
            "/projections/{name}/parked/{position}/retry",
            post(projections::retry),
        )
        .route(
            "/projections/{name}/parked/{position}/skip",
            post(projections::skip),
        )
        .route("/orders/{id}", get(orders::get_order))
        .route("/orders/{id}/events", get(orders::get_order_events))
        .route("/orders/{id}/confirm", post(orders::confirm_order))
        .route("/orders/{id}/cancel", post(orders::cancel_order))
        .route("/orders/{id}/ship", post(orders::ship_order))
        .route("/orders/{id}/deliver", post(orders::deliver_order))
        .route(
            "/orders/{id}/shipping-address",
            post(orders::change_shipping_address),
        )
        .route("/webhooks", post(webhooks::register).get(webhooks::list))
        .route(
            "/webhooks/{id}",
            get(webhooks::show)
                .patch(webhooks::update)
                .delete(webhooks::delete),
        )
        .route("/webhooks/{id}/replay", post(webhooks::replay))
        .route(
            "/webhooks/{id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route("/feed/stream", get(streams::feed_stream))
        .route(
            "/customers/{id}/orders/stream",
            get(streams::customer_stream),
        )
        .route("/metrics", get(metrics::metrics))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .merge(openapi::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Innermost: sees every handler's JSON before compression.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            personal::reveal,
        ))
        .with_state(state.clone());
    // The console calls the API in process, inside the outer layers (its own requests have
    // passed them already).
    let api = match console {
        Some(console) => {
            let keys = state.keys.clone();
            let deps = operator_console::ConsoleDeps {
                api: api.clone(),
                mint: std::sync::Arc::new(move |subject: &str, ttl| {
                    keys.issue(subject, crate::auth::Role::Staff, ttl).ok()
                }),
                store: state.handler.store().clone(),
                on_error: state.projections.on_error(),
                replicas: state.replicas.clone(),
                live: state.live.clone(),
            };
            api.nest_service("/console", operator_console::routes(deps, console))
        }
        None => api,
    };
    // Outermost first: metrics (so that every answer is counted, 408s and refused request ids
    // included) → request id check → request id → trace span → panic guard → timeout →
    // compression → body limit.
    api.layer(axum::middleware::map_response(queries_retry_after))
        .layer(DefaultBodyLimit::max(limits.body_limit))
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout))
        .layer(axum::middleware::map_response(timeout_as_problem))
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(Problem::internal())
        }))
        .layer(PropagateRequestIdLayer::x_request_id())
        // 5xx answers are logged at WARN here: the ones the server is to blame for log their
        // cause at ERROR where they happen (errors.rs); a slow read model is not an error.
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
        }).on_failure(tower_http::trace::DefaultOnFailure::new().level(tracing::Level::WARN)))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(axum::middleware::from_fn(refuse_bad_request_id))
        .layer(axum::middleware::from_fn(metrics::track))
}

/// A client's `X-Request-Id` is echoed and logged, so it is checked first (see
/// [`extract::check_request_id`]); a bad one is refused before anything else runs.
async fn refuse_bad_request_id(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match extract::check_request_id(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(problem) => {
            tracing::info!(method = %request.method(), path = %request.uri().path(), "refused a malformed X-Request-Id");
            axum::response::IntoResponse::into_response(problem)
        }
    }
}

async fn queries_retry_after(response: axum::response::Response) -> axum::response::Response {
    queries::retry_after(response)
}

/// The timeout layer answers 408 with an empty body; give it the API's problem shape.
async fn timeout_as_problem(response: axum::response::Response) -> axum::response::Response {
    if response.status() == StatusCode::REQUEST_TIMEOUT
        && !response
            .headers()
            .contains_key(axum::http::header::CONTENT_TYPE)
    {
        // Logged inside the request span; a command carries on to its end regardless (see
        // `orders::run`), so the client must retry with its Idempotency-Key to learn the outcome.
        tracing::warn!("request timed out; answered 408");
        let detail = "the request took longer than the server allows; a command may still have been applied: retry with the same Idempotency-Key to learn its outcome";
        return axum::response::IntoResponse::into_response(Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "request-timeout",
            detail,
        ));
    }
    response
}

async fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "no-such-route",
        "no such endpoint; see /openapi.json",
    )
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this endpoint does not take that method; see /openapi.json",
    )
}
