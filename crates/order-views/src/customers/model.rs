//! The customer summary on the service's database: its engine and its one query.

use chrono::{DateTime, Utc};
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use super::{CustomerProjection, CustomerSummary, CustomerTables};
use std::sync::Arc;

use read_model::Operate;

use crate::engines::engine_for;
use crate::projection::Batched;
use store::{Db, SqlId, Store, with_reader};

/// The customer summary's engine and query. Dereferences to the engine.
#[derive(Debug, Clone)]
pub struct CustomerSummaries {
    engine: Arc<dyn Operate>,
    db: Db,
}

impl std::ops::Deref for CustomerSummaries {
    type Target = dyn Operate;

    fn deref(&self) -> &Self::Target {
        &*self.engine
    }
}

impl CustomerSummaries {
    /// The summary in the same database as `store`.
    pub fn for_store(store: &Store) -> Self {
        Self {
            engine: engine_for(store, Batched(CustomerProjection)),
            db: store.db(),
        }
    }

    /// The same summary, its query answered by a hot standby of its PostgreSQL database.
    pub fn on_standby(&self, pool: sqlx::PgPool) -> Self {
        Self {
            engine: self.engine.clone(),
            db: Db::Postgres(pool),
        }
    }

    /// `customer`'s summary in the tables of `generation` (all zero for a customer without
    /// orders).
    pub async fn summary(&self, generation: i32, customer: Uuid) -> sqlx::Result<CustomerSummary> {
        let t = CustomerTables::new(generation);
        let totals = format!(
            "SELECT orders, first_order_at, last_order_at FROM {} WHERE customer_id = $1",
            t.customers
        );
        let statuses = format!(
            "SELECT status, orders FROM {} WHERE customer_id = $1 AND orders <> 0 ORDER BY status",
            t.statuses
        );
        let spend = format!(
            "SELECT currency, orders, total_minor FROM {} WHERE customer_id = $1
               AND (orders <> 0 OR total_minor <> 0) ORDER BY currency",
            t.spend
        );
        let id = SqlId(customer);
        with_reader!(&self.db, pool => {
            let totals: Option<(i64, DateTime<Utc>, DateTime<Utc>)> =
                sqlx::query_as(AssertSqlSafe(totals)).bind(id).fetch_optional(pool).await?;
            Ok(CustomerSummary {
                orders: totals.map_or(0, |t| t.0),
                first_order_at: totals.map(|t| t.1),
                last_order_at: totals.map(|t| t.2),
                by_status: sqlx::query_as(AssertSqlSafe(statuses)).bind(id).fetch_all(pool).await?,
                spend: sqlx::query_as(AssertSqlSafe(spend)).bind(id).fetch_all(pool).await?,
            })
        })
    }
}
