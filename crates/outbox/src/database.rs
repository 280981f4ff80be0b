//! The relay's view of the database: the feed head, lag, wake-ups, and taking the lease.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgPool, SqlitePool};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::lease::Lease;

/// Where the relay keeps its checkpoint and finds out about new events: the event store's own
/// database.
#[derive(Debug, Clone)]
pub enum RelayDb {
    /// PostgreSQL: the store's pool. The lease is a session advisory lock on a dedicated
    /// connection, so several service instances take turns.
    Postgres(PgPool),
    /// SQLite: one process owns the file, so the relay needs no lock.
    Sqlite {
        /// The store's writer pool (checkpoint writes).
        writer: SqlitePool,
        /// The store's read pool.
        reader: SqlitePool,
        /// Ticks after every append of this process (`SqliteEventStore::appended`).
        appended: Option<watch::Receiver<u64>>,
    },
}

impl RelayDb {
    /// Takes the relay lease for `name` if nobody else holds it.
    pub async fn try_lease(&self, name: &str) -> sqlx::Result<Option<Lease>> {
        match self {
            Self::Postgres(pool) => Lease::try_postgres(pool, name).await,
            Self::Sqlite { writer, .. } => Lease::sqlite(writer, name).await.map(Some),
        }
    }

    /// The relay's stored checkpoint (0 when it never ran), read without taking the lease.
    pub async fn checkpoint(&self, name: &str) -> sqlx::Result<u64> {
        let position: Option<i64> = match self {
            Self::Postgres(pool) => {
                sqlx::query_scalar("SELECT position FROM projections WHERE name = $1")
                    .bind(name)
                    .fetch_optional(pool)
                    .await?
            }
            Self::Sqlite { reader, .. } => {
                sqlx::query_scalar("SELECT position FROM projections WHERE name = ?1")
                    .bind(name)
                    .fetch_optional(reader)
                    .await?
            }
        };
        Ok(unsigned(position.unwrap_or(0)))
    }

    /// The highest position of the feed (0 when empty).
    pub async fn head(&self) -> sqlx::Result<u64> {
        let head: Option<i64> = match self {
            Self::Postgres(pool) => {
                sqlx::query_scalar("SELECT MAX(position) FROM event_positions")
                    .fetch_one(pool)
                    .await?
            }
            Self::Sqlite { reader, .. } => {
                sqlx::query_scalar("SELECT MAX(position) FROM events")
                    .fetch_one(reader)
                    .await?
            }
        };
        Ok(unsigned(head.unwrap_or(0)))
    }

    /// When the event at `position` was committed.
    pub async fn recorded_at(&self, position: u64) -> sqlx::Result<Option<DateTime<Utc>>> {
        let position = i64::try_from(position).unwrap_or(i64::MAX);
        match self {
            Self::Postgres(pool) => {
                sqlx::query_scalar(
                    "SELECT e.recorded_at FROM event_positions p JOIN events e ON e.seq = p.seq
                     WHERE p.position = $1",
                )
                .bind(position)
                .fetch_optional(pool)
                .await
            }
            Self::Sqlite { reader, .. } => {
                sqlx::query_scalar("SELECT recorded_at FROM events WHERE position = ?1")
                    .bind(position)
                    .fetch_optional(reader)
                    .await
            }
        }
    }

    /// Notifies `wake` when new events are in the feed: `LISTEN orders_feed` on PostgreSQL (the
    /// sequencer's NOTIFY), this process's appends on SQLite. The relay polls as well, so a lost
    /// notification only costs latency.
    pub fn spawn_waker(&self, wake: Arc<Notify>) -> JoinHandle<()> {
        match self {
            Self::Postgres(pool) => {
                let pool = pool.clone();
                tokio::spawn(async move {
                    loop {
                        match sqlx::postgres::PgListener::connect_with(&pool).await {
                            Ok(mut listener) => {
                                if listener.listen("orders_feed").await.is_ok() {
                                    while listener.recv().await.is_ok() {
                                        wake.notify_one();
                                    }
                                }
                            }
                            Err(error) => {
                                tracing::debug!(%error, "LISTEN orders_feed failed; polling");
                            }
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                })
            }
            Self::Sqlite { appended, .. } => {
                let appended = appended.clone();
                tokio::spawn(async move {
                    let Some(mut appended) = appended else {
                        return;
                    };
                    while appended.changed().await.is_ok() {
                        wake.notify_one();
                    }
                })
            }
        }
    }
}

pub(crate) fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

pub(crate) fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
