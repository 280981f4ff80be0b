//! What the engine needs from a database ([`Dialect`]) and from a read model ([`Projection`]).

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use event_store::RecordedEvent;
use uuid::Uuid;

use crate::{Applied, OnError, Parked, Result};

/// A projection's durable state: which generation of its tables serves, the feed position
/// those tables include, and which instance holds its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The generation of tables that serves (a rebuild fills the next one).
    pub generation: i32,
    /// The last feed position applied to that generation.
    pub position: u64,
    /// The lease, if an instance ever took one.
    pub holder: Option<Holder>,
}

/// Who holds (or last held) a projection's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The instance (see `RunnerOptions::lease`).
    pub owner: String,
    /// Bumped whenever the lease changes hands: the fence a batch checks.
    pub epoch: u64,
    /// How long the lease still runs; `None` once it has expired (or was released).
    pub expires_in: Option<Duration>,
}

impl Holder {
    /// The holder stored in a checkpoint row's `owner`, `epoch` and seconds of lease left (as
    /// each dialect computes them); `None` when no instance ever took the lease.
    pub(crate) fn from_columns(
        owner: Option<String>,
        epoch: i64,
        lease_left: Option<f64>,
    ) -> Result<Option<Self>> {
        let Some(owner) = owner else {
            return Ok(None);
        };
        Ok(Some(Self {
            owner,
            epoch: crate::position_from_sql(epoch)?,
            expires_in: lease_left
                .filter(|s| *s > 0.0)
                .and_then(|s| Duration::try_from_secs_f64(s).ok()),
        }))
    }
}

impl Checkpoint {
    /// Whether `owner` holds a running lease at `epoch`.
    pub fn is_held_by(&self, owner: &str, epoch: u64) -> bool {
        self.holder.as_ref().is_some_and(|h| {
            h.owner == owner && h.epoch == epoch && h.expires_in.is_some_and(|d| !d.is_zero())
        })
    }
}

/// A parked event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedEvent {
    /// The projection that could not apply it.
    pub projection: String,
    /// Its feed position.
    pub position: u64,
    /// Its id.
    pub event_id: Uuid,
    /// Why (the latest attempt's error).
    pub error: String,
    /// When it was (last) parked.
    pub parked_at: DateTime<Utc>,
}

/// The column types a read model's tables use, as one database spells them: a read model
/// writes its DDL once with these (`format!("… {id} …", id = D::TYPES.id)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnTypes {
    /// A UUID (`store::SqlId` binds and reads it).
    pub id: &'static str,
    /// A 64-bit integer.
    pub int: &'static str,
    /// A boolean.
    pub bool: &'static str,
    /// A JSON document (`sqlx::types::Json` binds and reads it).
    pub json: &'static str,
    /// A point in time, UTC.
    pub time: &'static str,
    /// A calendar day.
    pub date: &'static str,
}

/// The engine's storage on one database: the `projections` checkpoint rows and the
/// `parked_events` table, and transactions. The engine is written once against this.
pub trait Dialect: Clone + Send + Sync + 'static {
    /// An open transaction; dropped without [`Self::commit`], it rolls back.
    type Tx: Send;

    /// How this database spells the column types of read models' tables.
    const TYPES: ColumnTypes;

    /// Runs `ddl` (one or more `CREATE …`/`DROP … IF EXISTS` statements) on its own, outside any
    /// batch: a read model's tables of one generation.
    fn execute_ddl(&self, ddl: String) -> impl Future<Output = Result<()>> + Send;

    /// Begins a read-write transaction.
    fn begin(&self) -> impl Future<Output = Result<Self::Tx>> + Send;

    /// Commits `tx`.
    fn commit(tx: Self::Tx) -> impl Future<Output = Result<()>> + Send;

    /// Creates `name`'s checkpoint row at generation 1, position 0 if it is missing; returns it.
    fn register(&self, name: &str) -> impl Future<Output = Result<Checkpoint>> + Send;

    /// `name`'s checkpoint, read without a lock.
    fn checkpoint(&self, name: &str) -> impl Future<Output = Result<Option<Checkpoint>>> + Send;

    /// `name`'s checkpoint, locked until `tx` ends: batches of one projection take turns, across
    /// every instance on the database.
    fn lock(tx: &mut Self::Tx, name: &str) -> impl Future<Output = Result<Checkpoint>> + Send;

    /// Stores `generation` and `position` as `name`'s checkpoint and, with `renew`, extends the
    /// lease by that much from now, in one statement.
    fn save(
        tx: &mut Self::Tx,
        name: &str,
        generation: i32,
        position: u64,
        renew: Option<Duration>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Takes `name`'s lease for `owner` for `ttl` if it is free, expired or already `owner`'s,
    /// without waiting for a batch that holds the row; returns the epoch it holds, or `None`
    /// when another instance holds it (or its row is busy). A change of owner bumps the epoch.
    fn acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<Option<u64>>> + Send;

    /// Extends the lease of the (locked) row `name` by `ttl` from now.
    fn renew(
        tx: &mut Self::Tx,
        name: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Ends `owner`'s lease on `name` now (at shutdown), so a standby takes over at once.
    fn release(&self, name: &str, owner: &str) -> impl Future<Output = Result<()>> + Send;

    /// Parks `parked` for `name` (a re-parked position gets the new error and time).
    fn park(
        tx: &mut Self::Tx,
        name: &str,
        parked: &[Parked],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Removes the parked event of `name` at `position`; returns whether there was one.
    fn unpark(
        tx: &mut Self::Tx,
        name: &str,
        position: u64,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// `name`'s parked events in position order.
    fn parked(&self, name: &str) -> impl Future<Output = Result<Vec<ParkedEvent>>> + Send;
}

/// A read model: its tables, and what a batch of events does to them. The pure part (the fold)
/// belongs to the read model; the engine only calls it through [`Self::apply`].
pub trait Projection<D: Dialect>: Send + Sync + 'static {
    /// The name of its checkpoint row (stable: renaming it rebuilds from scratch).
    fn name(&self) -> &str;

    /// Creates the tables of `generation` if they are missing.
    fn create_tables(&self, db: &D, generation: i32) -> impl Future<Output = Result<()>> + Send;

    /// Drops the tables of `generation` if they exist.
    fn drop_tables(&self, db: &D, generation: i32) -> impl Future<Output = Result<()>> + Send;

    /// Applies `events` (in feed order, after position `after`) to the tables of `generation`
    /// inside `tx`, under `on_error` (with [`crate::walk`]). Parking and the checkpoint are the
    /// engine's: this only writes the read model's own rows.
    fn apply(
        &self,
        tx: &mut D::Tx,
        generation: i32,
        after: u64,
        events: &[RecordedEvent],
        on_error: OnError,
    ) -> impl Future<Output = Result<Applied>> + Send;
}
