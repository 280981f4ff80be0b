//! The order endpoints.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, MatchedPath, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::{
    CancelOrder, ChangeShippingAddress, CreateOrder, OrderAggregate, OrderCommand, ShipOrder,
};
use event_store::EventStore;
use tracing::Instrument;
use uuid::Uuid;

use super::consistency::ConsistencyToken;
use super::dto::{
    CancelOrderRequest, ChangeAddressRequest, CreateOrderRequest, EventResponse, EventsPage,
    EventsQuery, OrderQuery, OrderResponse, ShipOrderRequest,
};
use super::errors::CommandOutcome;
use super::extract::{ApiQuery, CommandHeaders, JsonBody, OptionalJsonBody, OrderId};
use super::idempotency::{self, StoredResponse};
use super::response::{command_response, with_etag};
use super::{AppState, Problem};
use crate::auth::{Principal, Role};
use crate::commands::{AccessDenied, AsOf, CommandContext, IdempotencyKey};

/// Largest page of events one request returns.
pub(super) const MAX_EVENTS_PAGE: usize = 1_000;

/// Place an order.
#[utoipa::path(post, path = "/orders", tag = "orders", request_body = CreateOrderRequest,
    responses(
        (status = 201, description = "Created; `Location` and `ETag` set", body = OrderResponse),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or bad token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A customer ordering for someone else", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A business rule was violated or the Idempotency-Key was reused with another request", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Store unavailable", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_order(
    State(state): State<AppState>,
    principal: Principal,
    request: CommandRequest,
    body: JsonBody<CreateOrderRequest>,
) -> Result<Response, Problem> {
    let customer_id = match (principal.role(), body.value.customer_id) {
        (Role::Customer, requested) => {
            let own = principal
                .customer_id()
                .ok_or_else(|| Problem::forbidden("customer token without a customer id"))?;
            if requested.is_some_and(|requested| requested != own) {
                return Err(Problem::forbidden(
                    "customers may only place orders for themselves; omit customer_id",
                ));
            }
            own
        }
        (Role::Staff, Some(customer)) => customer,
        (Role::Staff, None) => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "missing-customer-id",
                "staff must name the customer_id the order is for",
            ));
        }
    };
    let (currency, items) = body.value.items()?;
    let (shipping_address, contact) = body.value.personal()?;
    let order_id = Uuid::now_v7();
    let command = OrderCommand::Create(CreateOrder {
        order_id,
        customer_id,
        currency,
        items,
        shipping_address,
        contact,
    });
    run(
        &state,
        principal,
        request,
        body.raw.clone(),
        order_id,
        command,
        StatusCode::CREATED,
    )
    .await
}

/// Confirm an order (staff).
#[utoipa::path(post, path = "/orders/{id}/confirm", tag = "orders", params(("id" = Uuid, Path)),
    responses((status = 200, body = OrderResponse), (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem)),
    security(("bearer" = [])))]
pub async fn confirm_order(
    State(state): State<AppState>,
    principal: Principal,
    OrderId(id): OrderId,
    request: CommandRequest,
    body: OptionalJsonBody<serde_json::Value>,
) -> Result<Response, Problem> {
    principal.require_staff("confirm, ship or deliver orders")?;
    update(
        &state,
        principal,
        request,
        body.raw,
        id,
        OrderCommand::Confirm(Default::default()),
    )
    .await
}

/// Cancel an order (its customer, or staff).
#[utoipa::path(post, path = "/orders/{id}/cancel", tag = "orders", request_body = CancelOrderRequest, params(("id" = Uuid, Path)),
    responses((status = 200, body = OrderResponse), (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn cancel_order(
    State(state): State<AppState>,
    principal: Principal,
    OrderId(id): OrderId,
    request: CommandRequest,
    body: JsonBody<CancelOrderRequest>,
) -> Result<Response, Problem> {
    let command = OrderCommand::Cancel(CancelOrder {
        reason: body.value.reason.clone(),
    });
    update(&state, principal, request, body.raw, id, command).await
}

/// Set or replace the shipping address (the customer, or staff) before the order ships.
#[utoipa::path(post, path = "/orders/{id}/shipping-address", tag = "orders", request_body = ChangeAddressRequest, params(("id" = Uuid, Path)),
    responses((status = 200, body = OrderResponse), (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn change_shipping_address(
    State(state): State<AppState>,
    principal: Principal,
    OrderId(id): OrderId,
    request: CommandRequest,
    body: JsonBody<ChangeAddressRequest>,
) -> Result<Response, Problem> {
    let shipping_address = body.value.shipping_address.to_domain()?;
    let command = OrderCommand::ChangeShippingAddress(ChangeShippingAddress { shipping_address });
    update(&state, principal, request, body.raw, id, command).await
}

/// Ship an order (staff); carrier and tracking number are optional.
#[utoipa::path(post, path = "/orders/{id}/ship", tag = "orders", request_body(content = Option<ShipOrderRequest>), params(("id" = Uuid, Path)),
    responses((status = 200, body = OrderResponse), (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem)),
    security(("bearer" = [])))]
pub async fn ship_order(
    State(state): State<AppState>,
    principal: Principal,
    OrderId(id): OrderId,
    request: CommandRequest,
    body: OptionalJsonBody<ShipOrderRequest>,
) -> Result<Response, Problem> {
    principal.require_staff("confirm, ship or deliver orders")?;
    let ShipOrderRequest {
        carrier,
        tracking_number,
    } = body.value;
    let command = OrderCommand::Ship(ShipOrder {
        carrier,
        tracking_number,
    });
    update(&state, principal, request, body.raw, id, command).await
}

/// Mark an order delivered (staff).
#[utoipa::path(post, path = "/orders/{id}/deliver", tag = "orders", params(("id" = Uuid, Path)),
    responses((status = 200, body = OrderResponse), (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem)),
    security(("bearer" = [])))]
pub async fn deliver_order(
    State(state): State<AppState>,
    principal: Principal,
    OrderId(id): OrderId,
    request: CommandRequest,
    body: OptionalJsonBody<serde_json::Value>,
) -> Result<Response, Problem> {
    principal.require_staff("confirm, ship or deliver orders")?;
    update(
        &state,
        principal,
        request,
        body.raw,
        id,
        OrderCommand::Deliver(Default::default()),
    )
    .await
}

/// An order's current state, with its version as the `ETag`; with `version` or `at`, the state
/// it had then (time travel, from the events; no `ETag`, since it is not a state a command can
/// be pinned to).
#[utoipa::path(get, path = "/orders/{id}", tag = "orders", params(("id" = Uuid, Path), OrderQuery),
    responses((status = 200, body = OrderResponse), (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_order(
    State(state): State<AppState>,
    principal: Principal,
    OrderId(id): OrderId,
    ApiQuery(query): ApiQuery<OrderQuery>,
) -> Result<Response, Problem> {
    if let Some(as_of) = as_of(&query)? {
        return get_order_as_of(&state, &principal, id, as_of).await;
    }
    let store = state.handler.store();
    let version = store.get_current_version(id).await?;
    if version == 0 {
        return Err(Problem::order_not_found(id));
    }
    // The cache is used only when it holds exactly the stream's current version.
    if let Some(cache) = &state.cache
        && let Some(cached) = cache.get(id, version).await
        && let Ok(mut body) = serde_json::from_str::<OrderResponse>(&cached)
    {
        body.consistency_token = ConsistencyToken {
            aggregate_id: id,
            version,
        }
        .to_string(); // entries cached before the token existed lack it
        if !principal.can_see(body.customer_id) {
            return Err(Problem::order_not_found(id));
        }
        return Ok(with_etag(Json(body).into_response(), version));
    }
    let loaded = state.handler.load::<OrderAggregate>(id).await?;
    if loaded.version == 0 || !principal.can_see(loaded.state.customer_id()) {
        return Err(Problem::order_not_found(id));
    }
    let mut body = OrderResponse::new(id, &loaded.state, loaded.version);
    body.position = loaded.position;
    if let Some(cache) = &state.cache
        && let Ok(json) = serde_json::to_string(&body)
    {
        cache.put(id, loaded.version, &json).await;
    }
    Ok(with_etag(Json(body).into_response(), loaded.version))
}

/// The time-travel question `query` asks, if any.
fn as_of(query: &OrderQuery) -> Result<Option<AsOf>, Problem> {
    match (query.version, query.at) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(Problem::bad_request(
            "conflicting-parameters",
            "pass either `version` or `at`, not both",
        )),
        (Some(0), None) => Err(Problem::bad_request(
            "invalid-version",
            "version must be at least 1 (the order as created)",
        )),
        (Some(version), None) => Ok(Some(AsOf::Version(version))),
        (None, Some(at)) => Ok(Some(AsOf::Time(at))),
    }
}

/// The order as it was at `as_of`. Who may see it is decided on its current state, as for the
/// current order; a version it has not reached, or a time before it was created, is a 404.
async fn get_order_as_of(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
    as_of: AsOf,
) -> Result<Response, Problem> {
    let current = state.handler.load::<OrderAggregate>(id).await?;
    if current.version == 0 || !principal.can_see(current.state.customer_id()) {
        return Err(Problem::order_not_found(id));
    }
    if let AsOf::Version(version) = as_of
        && version > current.version
    {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "version-not-found",
            format!(
                "order {id} has no version {version}: it is at version {}",
                current.version
            ),
        ));
    }
    let past = state
        .handler
        .load_as_of::<OrderAggregate>(id, as_of)
        .await?;
    if past.version == 0 {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "not-yet-created",
            format!("order {id} did not exist yet at that time"),
        ));
    }
    let mut body = OrderResponse::new(id, &past.state, past.version);
    body.position = past.position;
    Ok(Json(body).into_response())
}

/// An order's events, in version order, a page at a time.
#[utoipa::path(get, path = "/orders/{id}/events", tag = "orders", params(("id" = Uuid, Path), EventsQuery),
    responses((status = 200, body = EventsPage), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn get_order_events(
    State(state): State<AppState>,
    principal: Principal,
    OrderId(id): OrderId,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Response, Problem> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_EVENTS_PAGE).contains(&limit) {
        return Err(Problem::bad_request(
            "invalid-limit",
            format!("limit must be 1 to {MAX_EVENTS_PAGE}"),
        ));
    }
    let loaded = state.handler.load::<OrderAggregate>(id).await?;
    if loaded.version == 0 || !principal.can_see(loaded.state.customer_id()) {
        return Err(Problem::order_not_found(id));
    }
    let from = query.from_version.unwrap_or(1).max(1);
    let until = query.until_version.unwrap_or(u64::MAX);
    // Past the end (any u64 is a valid question): an empty page, without asking the store.
    let mut events = if from > loaded.version || from > until {
        Vec::new()
    } else {
        state
            .handler
            .store()
            .load_events_from_version(id, from)
            .await?
    };
    events.retain(|e| e.version <= until);
    if let (Some(ring), Some(customer)) = (state.handler.key_ring(), loaded.state.customer_id()) {
        ring.erase_legacy_events(customer, &mut events).await?;
    }
    let next_from_version = (events.len() > limit).then(|| from.saturating_add(limit as u64));
    events.truncate(limit);
    let customer = principal.customer_id().map(|id| id.to_string());
    let page = EventsPage {
        events: events
            .into_iter()
            .map(EventResponse::from)
            .map(|event| match &customer {
                Some(subject) => event.for_customer(subject),
                None => event,
            })
            .collect(),
        next_from_version,
    };
    Ok(with_etag(Json(page).into_response(), loaded.version))
}

/// What every command endpoint extracts besides its principal, its order and its body: the
/// command headers and the route the router matched, the one spelling of the path that the
/// idempotency fingerprint hashes.
pub(super) struct CommandRequest {
    headers: CommandHeaders,
    method: Method,
    route: String,
}

impl<S: Send + Sync> FromRequestParts<S> for CommandRequest {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let headers = CommandHeaders::from_request_parts(parts, state).await?;
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .ok_or_else(Problem::internal)?
            .as_str()
            .to_owned();
        Ok(Self {
            headers,
            method: parts.method.clone(),
            route,
        })
    }
}

impl CommandRequest {
    /// The request's path for order `id`: its route with the id in place.
    fn path(&self, id: Uuid) -> String {
        self.route.replace("{id}", &id.to_string())
    }
}

/// [`run`] for a command on an existing order (200 with the order).
async fn update(
    state: &AppState,
    principal: Principal,
    request: CommandRequest,
    raw: Bytes,
    id: Uuid,
    command: OrderCommand,
) -> Result<Response, Problem> {
    run(state, principal, request, raw, id, command, StatusCode::OK).await
}

/// Executes `command` on order `id`, honouring `If-Match` and `Idempotency-Key`.
///
/// The command runs on a task of its own: a client that goes away, or a request that times out
/// (408), does not cut it short half-way. It runs to its end and is logged and counted like any
/// other; a retry with the same `Idempotency-Key` then learns its outcome.
async fn run(
    state: &AppState,
    principal: Principal,
    request: CommandRequest,
    raw: Bytes,
    id: Uuid,
    command: OrderCommand,
    status: StatusCode,
) -> Result<Response, Problem> {
    let state = state.clone();
    let span = tracing::Span::current();
    let call = Call {
        principal,
        request,
        raw,
        id,
        command,
        status,
    };
    tokio::spawn(async move { run_to_end(&state, call).await }.instrument(span))
        .await
        .unwrap_or_else(|error| {
            tracing::error!(%error, "a command task failed");
            Err(Problem::internal())
        })
}

/// One command as its endpoint handed it over.
struct Call {
    principal: Principal,
    request: CommandRequest,
    raw: Bytes,
    id: Uuid,
    command: OrderCommand,
    status: StatusCode,
}

async fn run_to_end(state: &AppState, call: Call) -> Result<Response, Problem> {
    let name = call.command.name();
    let span = tracing::info_span!(
        "command",
        command = name,
        order_id = %call.id,
        correlation_id = %call.request.headers.correlation_id,
        user = %call.principal.subject(),
        outcome = tracing::field::Empty,
    );
    let started = std::time::Instant::now();
    let (outcome, result) = run_command(state, call).instrument(span.clone()).await;
    let outcome = outcome.as_str();
    span.record("outcome", outcome);
    tracing::info!(parent: &span, outcome, "command handled");
    metrics::counter!("commands_total", "command" => name, "outcome" => outcome).increment(1);
    metrics::histogram!("command_duration_seconds", "command" => name)
        .record(started.elapsed().as_secs_f64());
    result
}

async fn run_command(state: &AppState, call: Call) -> (CommandOutcome, Result<Response, Problem>) {
    let Call {
        principal,
        request,
        raw,
        id,
        command,
        status,
    } = call;
    let path = request.path(id);
    let CommandRequest {
        headers, method, ..
    } = request;
    let key = headers.idempotency_key.as_ref().map(|key| IdempotencyKey {
        scope: principal.subject(),
        key: key.clone(),
        request_hash: super::extract::request_hash(method.as_str(), &path, &raw),
    });
    // No lookup up front: the key is read together with the order (or, for a creation, checked
    // by the append itself), so a keyed command costs no extra round trip.
    let context = CommandContext {
        correlation_id: headers.correlation_id,
        causation_id: headers.request_id,
        user_id: Some(principal.subject()),
        expected_version: headers.if_match,
        idempotency: key.clone(),
        traceparent: headers.traceparent.clone(),
        new_stream: matches!(command, OrderCommand::Create(_)),
    };
    let guard = |order: &OrderAggregate| match order.customer_id() {
        Some(owner) if !principal.can_see(Some(owner)) => Err(AccessDenied::NotFound),
        // A customer acting on an order that does not exist: the same 404 as someone else's.
        None if principal.role() == Role::Customer
            && !matches!(command, OrderCommand::Create(_)) =>
        {
            Err(AccessDenied::NotFound)
        }
        _ => Ok(()),
    };
    let render = |order: &OrderAggregate, version: u64| {
        StoredResponse::new(status, OrderResponse::new(id, order, version)).to_json()
    };
    let executed = match state
        .handler
        .execute::<OrderAggregate>(id, command.clone(), &context, guard, render)
        .await
    {
        Ok(executed) => executed,
        Err(crate::commands::CommandError::IdempotencyKeyUsed(record)) => {
            // An earlier or concurrent request with the same key committed first: answer as it
            // was answered.
            let Some(key) = key.as_ref() else {
                return (CommandOutcome::Error, Err(Problem::internal()));
            };
            let answered = match record {
                Some(record) => idempotency::answer(state, key, &record).await,
                None => match idempotency::replay(state, key).await {
                    Ok(found) => found.ok_or_else(Problem::internal),
                    Err(problem) => Err(problem),
                },
            };
            let outcome = match &answered {
                Ok(_) => CommandOutcome::Replayed,
                Err(problem) if problem.status == 422 => CommandOutcome::Rejected,
                Err(_) => CommandOutcome::Error,
            };
            return (outcome, answered);
        }
        Err(error) => return (CommandOutcome::from(&error), Err(error.into())),
    };
    let mut body = OrderResponse::new(id, &executed.state, executed.version);
    body.position = executed.position;
    (CommandOutcome::Accepted, Ok(command_response(status, body)))
}
