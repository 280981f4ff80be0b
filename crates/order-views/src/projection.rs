//! A read model kept per order, as the engine drives it, written once for every read model and
//! both backends: its DDL, and a batch as load → fold → write. A read model says what it is with
//! [`PerOrderModel`] (its tables, its row of one order, its pure fold); a backend says how it
//! loads rows ([`LoadRows`], one per backend for every read model) and how it writes a read
//! model's batch ([`Storage`], the one piece of SQL per read model and backend: PostgreSQL passes
//! rows as arrays, SQLite has none).

use std::collections::HashMap;
use std::future::Future;

use event_store::RecordedEvent;
use read_model::{Applied, Dialect, OnError, Projection};
use sqlx::FromRow;
use uuid::Uuid;

use crate::batch::{OrderRow, by_order, order_ids};

/// A read model whose batch loads the rows of the orders it touches, folds the events onto them
/// and writes back what changed.
pub trait PerOrderModel: Send + Sync + 'static {
    /// Its projection's name (its checkpoint row).
    const NAME: &'static str;
    /// The names of its tables of one generation.
    type Tables: Send + Sync;
    /// What it keeps of one order, the unit a batch loads.
    type Row: OrderRow + Send + Unpin;
    /// What a batch writes.
    type Writes: Send + Sync;

    /// The tables of `generation`.
    fn tables(generation: i32) -> Self::Tables;
    /// The table of [`Self::Row`]s, keyed by `order_id`.
    fn rows_table(tables: &Self::Tables) -> &str;
    /// Creates the tables (and indexes) if missing, in `D`'s column types.
    fn create<D: Dialect>(tables: &Self::Tables) -> String;
    /// Drops the tables if they exist.
    fn drop(tables: &Self::Tables) -> String;
    /// Folds `events` (in feed order, after checkpoint `after`) onto `rows`, the current rows of
    /// the orders they touch, under the engine's error policy. Pure.
    fn fold(
        events: &[RecordedEvent],
        rows: HashMap<Uuid, Self::Row>,
        after: u64,
        on_error: OnError,
    ) -> Self::Writes;
    /// What the engine records of a batch: events handled, parked, the new checkpoint.
    fn applied(writes: &Self::Writes) -> &Applied;
}

/// How a backend loads the rows of a batch's orders: one statement for every read model.
pub trait LoadRows: Dialect {
    /// The backend's row type.
    type SqlRow: sqlx::Row;

    /// The rows of `table` whose `order_id` is one of `ids`.
    fn load<R>(
        tx: &mut Self::Tx,
        table: &str,
        ids: &[Uuid],
    ) -> impl Future<Output = read_model::Result<Vec<R>>> + Send
    where
        R: for<'r> FromRow<'r, Self::SqlRow> + Send + Unpin;
}

/// How a backend writes a batch of read model `M`.
pub trait Storage<M: PerOrderModel>: LoadRows {
    /// Writes what the batch changed.
    fn write(
        tx: &mut Self::Tx,
        tables: &M::Tables,
        writes: &M::Writes,
    ) -> impl Future<Output = read_model::Result<()>> + Send;
}

/// Read model `M` as a projection of the engine, on every backend that can store it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Batched<M>(pub M);

impl<M, D> Projection<D> for Batched<M>
where
    M: PerOrderModel,
    D: Storage<M>,
    M::Row: for<'r> FromRow<'r, D::SqlRow>,
{
    fn name(&self) -> &str {
        M::NAME
    }

    async fn create_tables(&self, db: &D, generation: i32) -> read_model::Result<()> {
        db.execute_ddl(M::create::<D>(&M::tables(generation))).await
    }

    async fn drop_tables(&self, db: &D, generation: i32) -> read_model::Result<()> {
        db.execute_ddl(M::drop(&M::tables(generation))).await
    }

    async fn apply(
        &self,
        tx: &mut D::Tx,
        generation: i32,
        after: u64,
        events: &[RecordedEvent],
        on_error: OnError,
    ) -> read_model::Result<Applied> {
        let tables = M::tables(generation);
        let ids = order_ids(events);
        let rows: Vec<M::Row> = D::load(tx, M::rows_table(&tables), &ids).await?;
        let writes = M::fold(events, by_order(rows), after, on_error);
        D::write(tx, &tables, &writes).await?;
        Ok(M::applied(&writes).clone())
    }
}
