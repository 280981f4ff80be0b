//! The order read model's backend-independent face: table names per generation, its engine and
//! queries on the backend the service runs on.

use chrono::NaiveDate;
use read_model::{
    Applied, Checkpoint, Engine, OnError, ParkedEvent, PgDialect, Projection, RebuildReport,
    RetryOutcome, RunnerOptions, Running, SqliteDialect,
};
use serde::Serialize;
use tokio::sync::watch;
use utoipa::ToSchema;
use uuid::Uuid;

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
/// events) and its queries.
#[derive(Clone)]
pub enum ReadModel {
    /// PostgreSQL.
    Postgres(Engine<Store, PgDialect, OrderProjection>, PgReadModel),
    /// SQLite.
    Sqlite(
        Engine<Store, SqliteDialect, OrderProjection>,
        SqliteReadModel,
    ),
}

impl std::fmt::Debug for ReadModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Postgres(..) => "ReadModel::Postgres",
            Self::Sqlite(..) => "ReadModel::Sqlite",
        })
    }
}

macro_rules! engine {
    ($self:ident, $e:ident => $call:expr) => {
        match $self {
            ReadModel::Postgres($e, _) => $call,
            ReadModel::Sqlite($e, _) => $call,
        }
    };
}

macro_rules! queries {
    ($self:ident, $q:ident => $call:expr) => {
        match $self {
            ReadModel::Postgres(_, $q) => $call,
            ReadModel::Sqlite(_, $q) => $call,
        }
    };
}

impl ReadModel {
    /// The read model in the same database as `store`, fed by its feed.
    pub fn for_store(store: &Store) -> Self {
        match store {
            Store::Postgres(s) => {
                let dialect = PgDialect::new(s.pool().clone());
                Self::Postgres(
                    Engine::new(store.clone(), dialect, OrderProjection),
                    PgReadModel::new(s.pool().clone()),
                )
            }
            Store::Sqlite(s) => {
                let dialect = SqliteDialect::new(s.writer().clone(), s.reader().clone());
                Self::Sqlite(
                    Engine::new(store.clone(), dialect, OrderProjection),
                    SqliteReadModel::new(s.reader().clone()),
                )
            }
        }
    }

    /// Registers the projection and starts its runner (see [`Engine::start`]).
    pub async fn start(
        &self,
        options: RunnerOptions,
        shutdown: watch::Receiver<bool>,
    ) -> read_model::Result<Running> {
        engine!(self, e => e.clone().start(options, shutdown).await)
    }

    /// Creates the checkpoint row and the serving tables if missing.
    pub async fn register(&self) -> read_model::Result<Checkpoint> {
        engine!(self, e => e.register().await)
    }

    /// Creates the tables of `generation` if missing (tools and benchmarks; the engine creates
    /// the ones it needs).
    pub async fn create_tables(&self, generation: i32) -> read_model::Result<()> {
        engine!(self, e => e.projection().create_tables(e.dialect(), generation).await)
    }

    /// Drops the tables of `generation` if they exist.
    pub async fn drop_tables(&self, generation: i32) -> read_model::Result<()> {
        engine!(self, e => e.projection().drop_tables(e.dialect(), generation).await)
    }

    /// The checkpoint (`None` before the service first started).
    pub async fn checkpoint(&self) -> read_model::Result<Option<Checkpoint>> {
        engine!(self, e => e.checkpoint().await)
    }

    /// Applies the next batch (see [`Engine::run_batch`]).
    pub async fn run_batch(&self, limit: usize, on_error: OnError) -> read_model::Result<Applied> {
        engine!(self, e => e.run_batch(limit, on_error).await)
    }

    /// Rebuilds into the next generation and switches (see [`Engine::rebuild`]).
    pub async fn rebuild(&self, progress: impl Fn(u64, u64)) -> read_model::Result<RebuildReport> {
        engine!(self, e => e.rebuild(progress).await)
    }

    /// The parked events, in position order.
    pub async fn parked(&self) -> read_model::Result<Vec<ParkedEvent>> {
        engine!(self, e => e.parked().await)
    }

    /// Applies a parked event again (see [`Engine::retry_parked`]).
    pub async fn retry_parked(&self, position: u64) -> read_model::Result<RetryOutcome> {
        engine!(self, e => e.retry_parked(position).await)
    }

    /// Gives up on a parked event (see [`Engine::skip_parked`]).
    pub async fn skip_parked(&self, position: u64) -> read_model::Result<()> {
        engine!(self, e => e.skip_parked(position).await)
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
