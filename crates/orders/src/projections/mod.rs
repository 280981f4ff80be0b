//! The read side: projections that catch up from the global feed into read models, with a durable
//! checkpoint written in the same transaction as the read-model change (exactly-once effect).
//!
//! - [`view`]: the pure fold from events to rows (no I/O);
//! - [`batch`]: one batch's decode/fold/park, independent of the database;
//! - [`postgres`], [`sqlite`]: the tables and queries per backend;
//! - [`runner`]: the background task that keeps a projection current;
//! - [`rebuild`]: blue/green rebuild into new tables, then switch.

pub mod batch;
pub mod model;
pub mod postgres;
pub mod rebuild;
pub mod runner;
pub mod sqlite;
pub mod view;

pub use batch::OnError;
pub use model::{ListQuery, ReadModel, Stats, Tables};
pub use runner::{ORDERS_PROJECTION, Projections};
pub use view::OrderView;
