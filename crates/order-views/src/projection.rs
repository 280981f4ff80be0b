//! The order read model as the engine drives it, written once for both backends: its DDL, and a
//! batch as load → fold → write. Only the load and the write differ per backend ([`OrderStorage`],
//! implemented in `postgres.rs` and `sqlite.rs`): PostgreSQL passes ids and rows as arrays, SQLite
//! has none.

use std::future::Future;

use event_store::RecordedEvent;
use read_model::{Applied, Dialect, OnError, Projection};
use uuid::Uuid;

use crate::batch::{BatchWrites, by_order, fold_batch, order_ids};
use crate::schema::{ORDERS_PROJECTION, OrderProjection, Tables};
use crate::view::OrderView;

/// What a database does for the order read model that the other does differently.
pub trait OrderStorage: Dialect {
    /// The rows of the orders `ids` in the details table of `t` (those that have one).
    fn load(
        tx: &mut Self::Tx,
        t: &Tables,
        ids: &[Uuid],
    ) -> impl Future<Output = read_model::Result<Vec<OrderView>>> + Send;

    /// Upserts a batch's rows and adds its summary changes.
    fn write(
        tx: &mut Self::Tx,
        t: &Tables,
        writes: &BatchWrites,
    ) -> impl Future<Output = read_model::Result<()>> + Send;
}

impl<D: OrderStorage> Projection<D> for OrderProjection {
    fn name(&self) -> &str {
        ORDERS_PROJECTION
    }

    async fn create_tables(&self, db: &D, generation: i32) -> read_model::Result<()> {
        db.execute_ddl(Tables::new(generation).create::<D>()).await
    }

    async fn drop_tables(&self, db: &D, generation: i32) -> read_model::Result<()> {
        db.execute_ddl(Tables::new(generation).drop()).await
    }

    async fn apply(
        &self,
        tx: &mut D::Tx,
        generation: i32,
        after: u64,
        events: &[RecordedEvent],
        on_error: OnError,
    ) -> read_model::Result<Applied> {
        let t = Tables::new(generation);
        let rows = by_order(D::load(tx, &t, &order_ids(events)).await?);
        let writes = fold_batch(events, rows, after, on_error);
        D::write(tx, &t, &writes).await?;
        Ok(writes.applied)
    }
}
