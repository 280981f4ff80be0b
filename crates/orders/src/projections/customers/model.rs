//! The customer summary on the service's database: its engine and its one query.

use uuid::Uuid;

use super::{CustomerProjection, CustomerSummary};
use crate::projections::engines::ProjectionEngine;
use crate::store::Store;

/// The customer summary's engine and query. Dereferences to the engine.
#[derive(Debug, Clone)]
pub struct CustomerSummaries {
    engine: ProjectionEngine<CustomerProjection>,
    store: Store,
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
            store: store.clone(),
        }
    }

    /// `customer`'s summary in the tables of `generation` (all zero for a customer without
    /// orders).
    pub async fn summary(&self, generation: i32, customer: Uuid) -> sqlx::Result<CustomerSummary> {
        match &self.store {
            Store::Postgres(s) => super::postgres::summary(s.pool(), generation, customer).await,
            Store::Sqlite(s) => super::sqlite::summary(s.reader(), generation, customer).await,
        }
    }
}
