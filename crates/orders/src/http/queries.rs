//! Queries served by the read model: lists and the summary, with read-your-writes.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::OrderStatus;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::consistency;
use super::dto::{CustomerSummaryResponse, ListedOrder, StatsResponse};
use super::extract::{ApiQuery, CustomerId};
use super::waits;
use super::{AppState, Problem};
use crate::auth::{Principal, Role};
use event_store::Feed;

use order_views::{CUSTOMERS_PROJECTION, ListQuery, ORDERS_PROJECTION};

use super::reads::{
    Read, answer, current, on_fresh_standby, on_standby_at, read_model_down, served_by,
};

/// Largest page of `GET /orders`.
pub(super) const MAX_PAGE: usize = 100;

/// `GET /orders` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this customer's orders (customers: only their own, the default).
    pub customer: Option<Uuid>,
    /// Only orders with this status.
    pub status: Option<String>,
    /// Only orders whose id starts with these hex digits (1–32, hyphens ignored), e.g. `0193a`.
    pub id_prefix: Option<String>,
    /// Only orders created at or after this time (RFC 3339).
    pub created_from: Option<chrono::DateTime<chrono::Utc>>,
    /// Only orders created before this time (RFC 3339).
    pub created_before: Option<chrono::DateTime<chrono::Utc>>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
    /// Page size, 1–100 (default 20).
    pub limit: Option<usize>,
    /// Wait until the read model includes these writes: `consistency_token`s from write
    /// responses, comma-separated (at most 16).
    pub consistent_with: Option<String>,
    /// Wait until the read model includes this global position (from the feed or an order's
    /// events; writes answer with a `consistency_token` instead).
    pub min_position: Option<u64>,
}

/// A page of orders, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    /// The orders.
    pub orders: Vec<ListedOrder>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<Uuid>,
    /// The read model's checkpoint when it answered.
    pub position: u64,
}

/// `GET /stats` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// Wait until the read model includes these writes (see `GET /orders`).
    pub consistent_with: Option<String>,
    /// Wait until the read model includes this global position.
    pub min_position: Option<u64>,
}

/// `GET /customers/{id}/summary` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryParams {
    /// Wait until the summary includes these writes (see `GET /orders`).
    pub consistent_with: Option<String>,
    /// Wait until the summary includes this global position.
    pub min_position: Option<u64>,
}

/// A customer's orders by status, what it spent per currency, and when it ordered first and
/// last, from the customer summary read model. A customer sees its own; staff any customer's.
#[utoipa::path(get, path = "/customers/{id}/summary", tag = "queries", params(("id" = Uuid, Path), SummaryParams),
    responses((status = 200, body = CustomerSummaryResponse), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 404, description = "Another customer's summary (for a customer)", body = Problem),
        (status = 422, description = "A consistency token names no stored write", body = Problem),
        (status = 503, description = "The summary did not reach consistent_with or min_position in time", body = Problem)),
    security(("bearer" = [])))]
pub async fn customer_summary(
    State(state): State<AppState>,
    principal: Principal,
    CustomerId(customer): CustomerId,
    ApiQuery(params): ApiQuery<SummaryParams>,
) -> Result<Response, Problem> {
    if principal.role() == Role::Customer && principal.customer_id() != Some(customer) {
        // Like another customer's order: indistinguishable from one that does not exist.
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "customer-not-found",
            format!("no summary of customer {customer} for this caller"),
        ));
    }
    let read = caught_up(
        &state,
        CUSTOMERS_PROJECTION,
        &principal,
        params.min_position,
        params.consistent_with.as_deref(),
    )
    .await?;
    let (summary, read) = answer(
        &state,
        CUSTOMERS_PROJECTION,
        read,
        |views, generation| async move { views.customers.summary(generation, customer).await },
    )
    .await?;
    let response = Json(CustomerSummaryResponse::new(
        customer,
        summary,
        read.position,
    ));
    Ok(served_by(response.into_response(), &read, &principal))
}

/// Orders, filtered by customer and status, a page at a time.
#[utoipa::path(get, path = "/orders", tag = "queries", params(ListParams),
    responses((status = 200, body = OrderPage), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 422, description = "A consistency token names no stored write", body = Problem),
        (status = 503, description = "The read model did not reach consistent_with or min_position in time", body = Problem)),
    security(("bearer" = [])))]
pub async fn list_orders(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Response, Problem> {
    let customer_id = match principal.role() {
        Role::Staff => params.customer,
        Role::Customer => {
            let own = principal.customer_id();
            if params.customer.is_some() && params.customer != own {
                return Err(Problem::forbidden(
                    "customers may only list their own orders",
                ));
            }
            own
        }
    };
    if let Some(status) = &params.status
        && !OrderStatus::LISTED
            .iter()
            .any(|listed| listed.as_str() == status)
    {
        let statuses: Vec<&str> = OrderStatus::LISTED.iter().map(|s| s.as_str()).collect();
        return Err(Problem::bad_request(
            "invalid-status",
            format!("status must be one of {}", statuses.join(", ")),
        ));
    }
    let limit = params.limit.unwrap_or(20);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Problem::bad_request(
            "invalid-limit",
            format!("limit must be 1 to {MAX_PAGE}"),
        ));
    }
    let range = IdRange::of(&params)?;
    let read = caught_up(
        &state,
        ORDERS_PROJECTION,
        &principal,
        params.min_position,
        params.consistent_with.as_deref(),
    )
    .await?;
    let query = ListQuery {
        customer_id,
        status: params.status,
        lowest: range.lowest,
        highest: range.highest,
        limit: limit + 1,
    };
    let (mut orders, read) = answer(&state, ORDERS_PROJECTION, read, |views, generation| {
        let query = query.clone();
        async move { views.orders.list(generation, &query).await }
    })
    .await?;
    let next_cursor = (orders.len() > limit).then(|| orders[limit - 1].order_id);
    orders.truncate(limit);
    let page = Json(OrderPage {
        orders: orders.into_iter().map(ListedOrder::from).collect(),
        next_cursor,
        position: read.position,
    });
    Ok(served_by(page.into_response(), &read, &principal))
}

/// The filters of `GET /orders` on an order's id, as one inclusive range of ids.
///
/// Order ids are UUID v7, which begin with their creation time in milliseconds, and the list is
/// ordered by id: a creation-time window, an id prefix and the cursor all narrow one range of
/// the primary key, so every filter combination is an index range scan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdRange {
    /// The lowest id included.
    pub lowest: Option<Uuid>,
    /// The highest id included.
    pub highest: Option<Uuid>,
}

/// Largest millisecond a UUID v7 can carry (48 bits).
const MAX_V7_MILLIS: u128 = (1 << 48) - 1;

impl IdRange {
    fn of(params: &ListParams) -> Result<Self, Problem> {
        let mut range = Self::default();
        if let Some(prefix) = &params.id_prefix {
            let (low, high) = prefix_bounds(prefix)?;
            range.raise(low);
            range.lower(high);
        }
        if let Some(from) = params.created_from {
            range.raise(Uuid::from_u128(v7_millis(from)? << 80));
        }
        if let Some(before) = params.created_before {
            match (v7_millis(before)? << 80).checked_sub(1) {
                Some(high) => range.lower(Uuid::from_u128(high)),
                None => range.empty(),
            }
        }
        if let Some(cursor) = params.cursor {
            match cursor.as_u128().checked_sub(1) {
                Some(high) => range.lower(Uuid::from_u128(high)),
                None => range.empty(),
            }
        }
        Ok(range)
    }

    fn raise(&mut self, low: Uuid) {
        self.lowest = Some(self.lowest.map_or(low, |l| l.max(low)));
    }

    fn lower(&mut self, high: Uuid) {
        self.highest = Some(self.highest.map_or(high, |h| h.min(high)));
    }

    /// A range nothing is in.
    fn empty(&mut self) {
        self.lowest = Some(Uuid::max());
        self.highest = Some(Uuid::nil());
    }
}

/// The ids that start with `prefix`: the prefix padded with `0`s, and with `f`s.
fn prefix_bounds(prefix: &str) -> Result<(Uuid, Uuid), Problem> {
    let digits: String = prefix.chars().filter(|c| *c != '-').collect();
    let valid = (1..=32).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_hexdigit());
    if !valid {
        return Err(Problem::bad_request(
            "invalid-id-prefix",
            "id_prefix must be 1 to 32 hexadecimal digits (hyphens are ignored)",
        ));
    }
    let bound = |pad: char| {
        let mut hex = digits.to_ascii_lowercase();
        hex.extend(std::iter::repeat_n(pad, 32 - digits.len()));
        Uuid::parse_str(&hex).map_err(|_| Problem::internal())
    };
    Ok((bound('0')?, bound('f')?))
}

/// The millisecond a UUID v7 created at `time` starts with.
fn v7_millis(time: chrono::DateTime<chrono::Utc>) -> Result<u128, Problem> {
    u128::try_from(time.timestamp_millis())
        .ok()
        .filter(|ms| *ms <= MAX_V7_MILLIS)
        .ok_or_else(|| {
            Problem::bad_request(
                "invalid-time",
                "created_from and created_before must lie between 1970 and the year 10889",
            )
        })
}

/// Orders by status and revenue per day and currency (staff).
#[utoipa::path(get, path = "/stats", tag = "queries", params(StatsParams),
    responses((status = 200, body = StatsResponse), (status = 400, body = Problem), (status = 403, body = Problem),
        (status = 422, description = "A consistency token names no stored write", body = Problem),
        (status = 503, description = "The read model did not reach consistent_with or min_position in time", body = Problem)),
    security(("bearer" = [])))]
pub async fn stats(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<StatsParams>,
) -> Result<Response, Problem> {
    principal.require_staff("read the summary")?;
    let read = caught_up(
        &state,
        ORDERS_PROJECTION,
        &principal,
        params.min_position,
        params.consistent_with.as_deref(),
    )
    .await?;
    let (stats, read) = answer(
        &state,
        ORDERS_PROJECTION,
        read,
        |views, generation| async move { views.orders.stats(generation).await },
    )
    .await?;
    let response = Json(StatsResponse::from(stats)).into_response();
    Ok(served_by(response, &read, &principal))
}

/// Waits (bounded) for the read model to include `min_position` and the writes `tokens` names,
/// and says where to read it.
///
/// With `DATABASE_READ_URL`, a standby answers when its replicated checkpoint has reached what
/// the caller needs (waiting up to `ORDERS_READ_STANDBY_WAIT`), or, for a query with neither, when
/// its lag is within `ORDERS_READ_MAX_LAG`; otherwise the primary does, as without standbys.
///
/// A position the feed has not issued is refused at once (it could only be waited for in vain),
/// and a caller may have at most [`waits::MAX_WAITS_PER_CALLER`] queries waiting at a time.
async fn caught_up(
    state: &AppState,
    which: &'static str,
    principal: &Principal,
    min_position: Option<u64>,
    tokens: Option<&str>,
) -> Result<Read, Problem> {
    if min_position.is_none() && tokens.is_none() {
        if let Some(read) = on_fresh_standby(state, which).await {
            return Ok(read);
        }
        return current(state, which).await;
    }
    let deadline = tokio::time::Instant::now() + state.read_wait;
    let tokens = tokens.map(consistency::parse_tokens).transpose()?;
    if let Some(position) = min_position {
        let head = state
            .handler
            .store()
            .head()
            .await
            .map_err(read_model_down)?;
        if position > head {
            return Err(Problem::bad_request(
                "position-not-issued",
                format!(
                    "min_position {position} is beyond the last position the feed has issued ({head}); pass a position from the feed or from an order's events"
                ),
            ));
        }
    }
    let _slot = state.waits.try_take(&principal.subject()).ok_or_else(|| {
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-waits",
            format!(
                "this caller already has {} queries waiting for the read model; wait for one to finish",
                waits::MAX_WAITS_PER_CALLER
            ),
        )
    })?;
    let written = match &tokens {
        Some(tokens) => Some(consistency::resolve(state.handler.store(), tokens, deadline).await?),
        None => None,
    };
    let wanted = min_position.max(written);
    if let Some(position) = wanted
        && let Some(read) = on_standby_at(state, which, position).await
    {
        return Ok(read);
    }
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    if let Some(position) = wanted
        && !match state.projections.running(which) {
            Some(running) => running.wait_for(position, left).await,
            None => false,
        }
    {
        // Another instance may be the one applying events: check the durable checkpoint too.
        let checkpoint = current(state, which).await?.position;
        if checkpoint < position {
            return Err(behind(position, checkpoint, state.read_wait));
        }
    }
    current(state, which).await
}

fn behind(wanted: u64, checkpoint: u64, waited: Duration) -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "read-model-behind",
        format!(
            "the read model is at position {checkpoint}, not yet {wanted}, after waiting {waited:?}; retry shortly"
        ),
    )
}

/// Adds `Retry-After` to a 503 or 429 problem response.
pub fn retry_after(mut response: Response) -> Response {
    if matches!(
        response.status(),
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
    ) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}
