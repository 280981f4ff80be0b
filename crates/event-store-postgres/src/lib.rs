//! PostgreSQL backend of the `orders` event store.
//!
//! - An append is **one SQL statement** (a CTE that reads the stream's version, checks the expected
//!   version, inserts the events and the idempotency record): atomic, one round trip, no
//!   explicit transaction. The unique `(aggregate_id, version)` constraint makes concurrent writers
//!   to one stream lose with a conflict instead of both winning.
//! - Global positions are assigned **after commit** by a sequencer (see [`sequencer`] and
//!   `docs/adr/0002-event-schema-and-global-feed.md`): writers never serialize on a global lock,
//!   and the feed is dense and never skips an event that commits late.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use event_store::{EventStore, NewEvent};
//! let store = event_store_postgres::PostgresEventStore::connect(
//!     "postgres://postgres@127.0.0.1:5432/orders",
//!     Default::default(),
//! )
//! .await?;
//! store.migrate().await?;
//! let id = uuid::Uuid::now_v7();
//! store.append_events(id, 0, vec![NewEvent::new("Order", "OrderCreated", 1, serde_json::json!({}))]).await?;
//! # Ok(()) }
//! ```

mod append;
mod connections;
mod durable;
mod errors;
mod feed;
mod group_commit;
mod group_load;
mod load;
#[cfg(test)]
mod plans;
mod rows;
pub mod sequencer;
pub mod servers;
mod store;

pub use group_commit::GroupCommitOptions;
pub use servers::{Role, ServerList, Servers, SessionAttrs};
pub use store::{PostgresEventStore, PostgresOptions};

/// The PostgreSQL schema migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");
