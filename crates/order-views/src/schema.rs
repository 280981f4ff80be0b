//! What the order read model's backends share: its table names per generation, its projection's
//! name, the shape of its queries and answers. The backends (`postgres.rs`, `sqlite.rs`) build on
//! this; `model.rs` picks one.

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// The tables of one generation of the order read model. A rebuild fills generation n+1 while
/// generation n keeps serving, then switches.
#[derive(Debug, Clone)]
pub struct Tables {
    /// Order details.
    pub details: String,
    /// Orders per status.
    pub counts: String,
    /// Revenue per day and currency.
    pub revenue: String,
}

impl Tables {
    /// The names for `generation` (an integer we produce, never user input).
    pub fn new(generation: i32) -> Self {
        Self {
            details: format!("rm_order_details_g{generation}"),
            counts: format!("rm_status_counts_g{generation}"),
            revenue: format!("rm_daily_revenue_g{generation}"),
        }
    }
}

/// Filters and cursor of `GET /orders`.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only this customer's orders.
    pub customer_id: Option<Uuid>,
    /// Only orders with this status.
    pub status: Option<String>,
    /// Only orders whose id is at least this. Order ids are UUID v7, so an id range is a range
    /// of creation times, and an id prefix is a range too (see `http::queries::IdRange`).
    pub lowest: Option<Uuid>,
    /// Only orders whose id is at most this (a cursor `c` is `c - 1`).
    pub highest: Option<Uuid>,
    /// Page size.
    pub limit: usize,
}

/// The summary: counts by status and revenue per day and currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Stats {
    /// (status, orders).
    pub orders_by_status: Vec<(String, i64)>,
    /// (confirmation day, currency, orders, total minor units) of confirmed, not cancelled orders.
    #[schema(value_type = Vec<Object>)]
    pub revenue: Vec<(NaiveDate, String, i64, i64)>,
}

/// Name of the order read model's projection (its checkpoint row).
pub const ORDERS_PROJECTION: &str = "orders";

/// The order read model (details, counts by status, revenue per day) as a projection: the pure
/// fold in `view.rs`/`batch.rs`, its SQL in `postgres.rs` and `sqlite.rs`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderProjection;

/// A position or version read from the read model's tables; a negative one is corrupt, never 0.
pub(crate) fn from_sql(value: i64) -> sqlx::Result<u64> {
    read_model::position_from_sql(value).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}
