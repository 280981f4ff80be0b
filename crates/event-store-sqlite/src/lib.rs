//! Embedded SQLite backend of the `orders` event store: the zero-setup default.
//!
//! One file in WAL mode. SQLite admits one writer at a time, so this store funnels writes through a
//! single pooled connection (no `SQLITE_BUSY` storms between its own writers) and reads through a
//! separate read-only pool. Because commits are serialized, the global position is simply the
//! `AUTOINCREMENT` key, assigned inside the write transaction: dense and in commit order.

mod append;
mod rows;
mod store;

pub use store::{SqliteEventStore, SqliteOptions};

/// The SQLite schema migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
