//! The customer summary as the engine drives it, written once for both backends: load → fold →
//! write. Only the write differs per backend ([`SummaryStorage`]).

use std::future::Future;

use event_store::RecordedEvent;
use read_model::{Applied, OnError, Projection};

use super::{CUSTOMERS_PROJECTION, CustomerProjection, CustomerTables, SummaryWrites, fold_batch};
use crate::batch::{by_order, order_ids};
use crate::projection::OrderStorage;

/// What a database does for the customer summary that the other does differently. The load is
/// the order read model's ([`OrderStorage`]'s backend), over this model's order lines.
pub trait SummaryStorage: OrderStorage {
    /// The order lines of `ids` that the summary has.
    fn load_lines(
        tx: &mut Self::Tx,
        t: &CustomerTables,
        ids: &[uuid::Uuid],
    ) -> impl Future<Output = read_model::Result<Vec<super::OrderLine>>> + Send;

    /// Upserts a batch's order lines and adds its per-customer changes.
    fn write(
        tx: &mut Self::Tx,
        t: &CustomerTables,
        writes: &SummaryWrites,
    ) -> impl Future<Output = read_model::Result<()>> + Send;
}

impl<D: SummaryStorage> Projection<D> for CustomerProjection {
    fn name(&self) -> &str {
        CUSTOMERS_PROJECTION
    }

    async fn create_tables(&self, db: &D, generation: i32) -> read_model::Result<()> {
        db.execute_ddl(CustomerTables::new(generation).create::<D>())
            .await
    }

    async fn drop_tables(&self, db: &D, generation: i32) -> read_model::Result<()> {
        db.execute_ddl(CustomerTables::new(generation).drop()).await
    }

    async fn apply(
        &self,
        tx: &mut D::Tx,
        generation: i32,
        after: u64,
        events: &[RecordedEvent],
        on_error: OnError,
    ) -> read_model::Result<Applied> {
        let t = CustomerTables::new(generation);
        let lines = by_order(D::load_lines(tx, &t, &order_ids(events)).await?);
        let writes = fold_batch(events, lines, after, on_error);
        <D as SummaryStorage>::write(tx, &t, &writes).await?;
        Ok(writes.applied)
    }
}
