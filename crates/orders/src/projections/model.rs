//! The order read model's backend-independent face: table names per generation, its engine and
//! queries on the backend the service runs on.

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::engines::ProjectionEngine;
use super::postgres::PgReadModel;
use super::sqlite::SqliteReadModel;
use super::view::OrderView;
use crate::store::Store;

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
pub(super) fn from_sql(value: i64) -> sqlx::Result<u64> {
    read_model::position_from_sql(value).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// The order read model on the service's database: its engine (batches, rebuilds, parked
/// events) and its queries. Dereferences to the engine.
#[derive(Debug, Clone)]
pub struct ReadModel {
    engine: ProjectionEngine<OrderProjection>,
    queries: Queries,
}

#[derive(Debug, Clone)]
enum Queries {
    Postgres(PgReadModel),
    Sqlite(SqliteReadModel),
}

impl std::ops::Deref for ReadModel {
    type Target = ProjectionEngine<OrderProjection>;

    fn deref(&self) -> &Self::Target {
        &self.engine
    }
}

macro_rules! queries {
    ($self:ident, $q:ident => $call:expr) => {
        match &$self.queries {
            Queries::Postgres($q) => $call,
            Queries::Sqlite($q) => $call,
        }
    };
}

impl ReadModel {
    /// The read model in the same database as `store`, fed by its feed.
    pub fn for_store(store: &Store) -> Self {
        let queries = match store {
            Store::Postgres(s) => Queries::Postgres(PgReadModel::new(s.pool().clone())),
            Store::Sqlite(s) => Queries::Sqlite(SqliteReadModel::new(s.reader().clone())),
        };
        Self {
            engine: ProjectionEngine::for_store(store, OrderProjection),
            queries,
        }
    }

    /// One order's row in `generation`.
    pub async fn order(&self, generation: i32, id: Uuid) -> sqlx::Result<Option<OrderView>> {
        queries!(self, q => q.order(generation, id).await)
    }

    /// A page of orders, newest first.
    pub async fn list(&self, generation: i32, query: &ListQuery) -> sqlx::Result<Vec<OrderView>> {
        queries!(self, q => q.list(generation, query).await)
    }

    /// Counts by status and revenue per day and currency.
    pub async fn stats(&self, generation: i32) -> sqlx::Result<Stats> {
        queries!(self, q => q.stats(generation).await)
    }
}
