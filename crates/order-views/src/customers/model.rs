//! The customer summary on the service's database: its engine and its one query.

use uuid::Uuid;

use super::{CustomerProjection, CustomerSummary};
use crate::engines::ProjectionEngine;
use store::{Db, Store};

/// The customer summary's engine and query. Dereferences to the engine.
#[derive(Debug, Clone)]
pub struct CustomerSummaries {
    engine: ProjectionEngine<CustomerProjection>,
    db: Db,
}

impl std::ops::Deref for CustomerSummaries {
    type Target = ProjectionEngine<CustomerProjection>;

    fn deref(&self) -> &Self::Target {
        &self.engine
    }
}

impl CustomerSummaries {
    /// The summary in the same database as `store`.
    pub fn for_store(store: &Store) -> Self {
        Self {
            engine: ProjectionEngine::for_store(store, CustomerProjection),
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
        match &self.db {
            Db::Postgres(pool) => super::postgres::summary(pool, generation, customer).await,
            Db::Sqlite { reader, .. } => super::sqlite::summary(reader, generation, customer).await,
        }
    }
}
