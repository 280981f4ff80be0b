//! The order read model's backend-independent face: table names per generation, its engine and
//! queries on the backend the service runs on.

use uuid::Uuid;

use super::engines::ProjectionEngine;
use super::postgres::PgReadModel;
use super::schema::{ListQuery, OrderProjection, Stats};
use super::sqlite::SqliteReadModel;
use super::view::OrderView;
use sqlx::PgPool;
use store::{Db, Store};

/// The order read model on the service's database: its engine (batches, rebuilds, parked
/// events) and its queries. Dereferences to the engine.
#[derive(Debug, Clone)]
pub struct ReadModel {
    engine: ProjectionEngine<OrderProjection>,
    /// Where its queries run (the store's database, or a standby of it).
    db: Db,
}

impl std::ops::Deref for ReadModel {
    type Target = ProjectionEngine<OrderProjection>;

    fn deref(&self) -> &Self::Target {
        &self.engine
    }
}

macro_rules! queries {
    ($self:ident, $q:ident => $call:expr) => {
        match &$self.db {
            Db::Postgres(pool) => {
                let $q = PgReadModel::new(pool.clone());
                $call
            }
            Db::Sqlite { reader, .. } => {
                let $q = SqliteReadModel::new(reader.clone());
                $call
            }
        }
    };
}

impl ReadModel {
    /// The read model in the same database as `store`, fed by its feed.
    pub fn for_store(store: &Store) -> Self {
        Self {
            engine: ProjectionEngine::for_store(store, OrderProjection),
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
