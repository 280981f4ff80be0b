//! The order read model on the service's database: its engine, and its queries, each written
//! once and compiled for both backends.

use uuid::Uuid;

use sqlx::{AssertSqlSafe, PgPool};
use store::{Db, SqlId, Store, with_reader};

use std::sync::Arc;

use read_model::Operate;

use super::engines::engine_for;
use super::projection::Batched;
use super::schema::{ListQuery, OrderProjection, Stats, Tables};
use super::view::OrderView;

/// The order read model on the service's database: its engine (batches, rebuilds, parked
/// events) and its queries. Dereferences to the engine.
#[derive(Debug, Clone)]
pub struct ReadModel {
    engine: Arc<dyn Operate>,
    /// Where its queries run (the store's database, or a standby of it).
    db: Db,
}

impl std::ops::Deref for ReadModel {
    type Target = dyn Operate;

    fn deref(&self) -> &Self::Target {
        &*self.engine
    }
}

impl ReadModel {
    /// The read model in the same database as `store`, fed by its feed.
    pub fn for_store(store: &Store) -> Self {
        Self {
            engine: engine_for(store, Batched(OrderProjection)),
            db: store.db(),
        }
    }

    /// The same read model, its queries answered by a hot standby of its PostgreSQL database
    /// (`pool`), whose replicated tables and checkpoint are a past state of the primary's.
    pub fn on_standby(&self, pool: PgPool) -> Self {
        Self {
            engine: self.engine.clone(),
            db: Db::Postgres(pool),
        }
    }

    /// One order's row in `generation`.
    pub async fn order(&self, generation: i32, id: Uuid) -> sqlx::Result<Option<OrderView>> {
        let sql = format!(
            "SELECT * FROM {} WHERE order_id = $1",
            Tables::new(generation).details
        );
        with_reader!(&self.db, pool => {
            sqlx::query_as(AssertSqlSafe(sql)).bind(SqlId(id)).fetch_optional(pool).await
        })
    }

    /// A page of orders, newest first.
    pub async fn list(&self, generation: i32, query: &ListQuery) -> sqlx::Result<Vec<OrderView>> {
        let sql = format!(
            "SELECT * FROM {} WHERE ($1 IS NULL OR customer_id = $1) AND ($2 IS NULL OR status = $2)
               AND ($3 IS NULL OR order_id >= $3) AND ($4 IS NULL OR order_id <= $4)
               ORDER BY order_id DESC LIMIT $5",
            Tables::new(generation).details
        );
        let limit = i64::try_from(query.limit).unwrap_or(100);
        with_reader!(&self.db, pool => {
            sqlx::query_as(AssertSqlSafe(sql))
                .bind(query.customer_id.map(SqlId))
                .bind(query.status.as_deref())
                .bind(query.lowest.map(SqlId))
                .bind(query.highest.map(SqlId))
                .bind(limit)
                .fetch_all(pool)
                .await
        })
    }

    /// The ids of `customer`'s orders in `generation` (an index range: `(customer_id, order_id)`).
    pub async fn order_ids_of(&self, generation: i32, customer: Uuid) -> sqlx::Result<Vec<Uuid>> {
        let sql = format!(
            "SELECT order_id FROM {} WHERE customer_id = $1",
            Tables::new(generation).details
        );
        let ids: Vec<SqlId> = with_reader!(&self.db, pool => {
            sqlx::query_scalar(AssertSqlSafe(sql)).bind(SqlId(customer)).fetch_all(pool).await?
        });
        Ok(ids.into_iter().map(Uuid::from).collect())
    }

    /// Counts by status and revenue per day and currency.
    pub async fn stats(&self, generation: i32) -> sqlx::Result<Stats> {
        let t = Tables::new(generation);
        let counts = format!(
            "SELECT status, orders FROM {} WHERE orders <> 0 ORDER BY status",
            t.counts
        );
        let revenue = format!(
            "SELECT day, currency, orders, total_minor FROM {} WHERE orders <> 0 OR total_minor <> 0
               ORDER BY day, currency",
            t.revenue
        );
        with_reader!(&self.db, pool => Ok(Stats {
            orders_by_status: sqlx::query_as(AssertSqlSafe(counts)).fetch_all(pool).await?,
            revenue: sqlx::query_as(AssertSqlSafe(revenue)).fetch_all(pool).await?,
        }))
    }
}
