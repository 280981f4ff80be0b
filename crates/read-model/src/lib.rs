//! The projection engine of `orders`: keeps read models current from the event store's
//! [`Feed`](event_store::Feed), written once for every backend.
//!
//! A read model says what it is with [`Projection`]: its tables and how a batch of events changes
//! them (its pure fold plus its SQL). The engine ([`Engine`]) does everything else the same way on
//! each backend, through a small storage [`Dialect`] (PostgreSQL or SQLite):
//!
//! - **batches with their checkpoint**: a batch's rows and the projection's checkpoint commit in
//!   one transaction, with the checkpoint row locked, so an event's effect is applied exactly once
//!   even with several instances on one database;
//! - **an error policy** ([`OnError`]): an event the fold cannot apply is parked with its error
//!   (and can be retried or skipped later) or stops the projection;
//! - **blue/green rebuilds** ([`Engine::rebuild`]): the next generation of tables fills from
//!   position 0 while the current one serves, then the checkpoint switches to it in one
//!   transaction;
//! - **staying current** ([`Engine::start`]): a background runner woken by the feed (and polling),
//!   with lag metrics, and [`Running::wait_for`] for read-your-writes;
//! - **one instance at a time** ([`LeaseOptions`]): with several instances on one database, the
//!   holder of a projection's lease applies its events and the others stand by; the lease
//!   expires if its holder dies or freezes, and every batch is fenced by the lease's epoch, so
//!   a holder that wakes up late cannot write (ADR 0015).

mod apply;
mod dialect;
mod engine;
mod error;
mod operate;
mod postgres;
mod rebuild;
mod runner;
mod sqlite;

pub use apply::{Applied, OnError, Parked, walk};
pub use dialect::{Checkpoint, ColumnTypes, Dialect, Holder, ParkedEvent, Projection};
pub use engine::{Engine, Fence, RetryOutcome};
pub use error::{Error, Result, position_from_sql, position_to_sql};
pub use operate::{BoxFuture, Operate};
pub use postgres::PgDialect;
pub use rebuild::RebuildReport;
pub use runner::{LeaseOptions, RunnerOptions, Running};
pub use sqlite::SqliteDialect;
