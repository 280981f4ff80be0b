//! The read model's backend-independent face: table names per generation, queries, and the
//! backend the service runs on.

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::batch::BatchWrites;
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
    /// Only orders older than this one (the cursor: the last id of the previous page).
    pub before: Option<Uuid>,
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

/// The read model on the service's database.
#[derive(Debug, Clone)]
pub enum ReadModel {
    /// PostgreSQL.
    Postgres(PgReadModel),
    /// SQLite.
    Sqlite(SqliteReadModel),
}

macro_rules! delegate {
    ($self:ident, $m:ident => $call:expr) => {
        match $self {
            ReadModel::Postgres($m) => $call,
            ReadModel::Sqlite($m) => $call,
        }
    };
}

impl ReadModel {
    /// The read model in the same database as `store`.
    pub fn for_store(store: &Store) -> Self {
        match store {
            Store::Postgres(s) => Self::Postgres(PgReadModel::new(s.pool().clone())),
            Store::Sqlite(s) => {
                Self::Sqlite(SqliteReadModel::new(s.writer().clone(), s.reader().clone()))
            }
        }
    }

    /// See [`PgReadModel::create_tables`].
    pub async fn create_tables(&self, generation: i32) -> sqlx::Result<()> {
        delegate!(self, m => m.create_tables(generation).await)
    }
    /// See [`PgReadModel::drop_tables`].
    pub async fn drop_tables(&self, generation: i32) -> sqlx::Result<()> {
        delegate!(self, m => m.drop_tables(generation).await)
    }
    /// See [`PgReadModel::register`].
    pub async fn register(&self, name: &str) -> sqlx::Result<(i32, u64)> {
        delegate!(self, m => m.register(name).await)
    }
    /// See [`PgReadModel::run_batch`].
    pub async fn run_batch(
        &self,
        name: &str,
        limit: usize,
        on_error: super::batch::OnError,
    ) -> sqlx::Result<BatchWrites> {
        delegate!(self, m => m.run_batch(name, limit, on_error).await)
    }
    /// See [`PgReadModel::apply_into`].
    pub async fn apply_into(
        &self,
        name: &str,
        generation: i32,
        after: u64,
        limit: usize,
    ) -> sqlx::Result<BatchWrites> {
        delegate!(self, m => m.apply_into(name, generation, after, limit).await)
    }
    /// See [`PgReadModel::switch_to`].
    pub async fn switch_to(&self, name: &str, generation: i32, after: u64) -> sqlx::Result<u64> {
        delegate!(self, m => m.switch_to(name, generation, after).await)
    }
    /// See [`PgReadModel::state`].
    pub async fn state(&self, name: &str) -> sqlx::Result<Option<(i32, u64)>> {
        delegate!(self, m => m.state(name).await)
    }
    /// See [`PgReadModel::feed_head`].
    pub async fn feed_head(&self) -> sqlx::Result<u64> {
        delegate!(self, m => m.feed_head().await)
    }
    /// Committed events the sequencer has not numbered yet, and the age in seconds of the oldest:
    /// what holds the feed back. Always (0, 0) on SQLite, which numbers at commit.
    pub async fn feed_backlog(&self) -> sqlx::Result<(u64, f64)> {
        match self {
            ReadModel::Postgres(m) => m.feed_backlog().await,
            ReadModel::Sqlite(_) => Ok((0, 0.0)),
        }
    }
    /// See [`PgReadModel::recorded_at`].
    pub async fn recorded_at(
        &self,
        position: u64,
    ) -> sqlx::Result<Option<chrono::DateTime<chrono::Utc>>> {
        delegate!(self, m => m.recorded_at(position).await)
    }
    /// See [`PgReadModel::parked`].
    pub async fn parked(&self, name: &str) -> sqlx::Result<Vec<(u64, Uuid, String)>> {
        delegate!(self, m => m.parked(name).await)
    }
    /// See [`PgReadModel::order`].
    pub async fn order(&self, generation: i32, id: Uuid) -> sqlx::Result<Option<OrderView>> {
        delegate!(self, m => m.order(generation, id).await)
    }
    /// See [`PgReadModel::list`].
    pub async fn list(&self, generation: i32, query: &ListQuery) -> sqlx::Result<Vec<OrderView>> {
        delegate!(self, m => m.list(generation, query).await)
    }
    /// See [`PgReadModel::stats`].
    pub async fn stats(&self, generation: i32) -> sqlx::Result<Stats> {
        delegate!(self, m => m.stats(generation).await)
    }
}
