//! The relay lease: one publisher per topic across all service instances, and the checkpoint
//! written only by the holder.
//!
//! On PostgreSQL the lease is a session advisory lock (`pg_try_advisory_lock`) held by a
//! dedicated connection for as long as the relay publishes. Checkpoint writes go through that
//! same connection, so they are fenced: if the connection (and with it the lock) is lost, the
//! write fails and the relay stops publishing until it holds the lock again. The server releases
//! the lock the moment the session ends, even if the process dies without cleaning up, so a
//! crashed instance is replaced within one standby interval. A holder that is frozen (SIGSTOP, a
//! stalled VM) keeps its session open but silent: the lease connection sets
//! `idle_session_timeout`, so the server ends a session that has said nothing for
//! [`IDLE_SESSION_TIMEOUT`] and another instance takes over; the holder talks on it at least
//! every second while it runs. When the frozen one wakes up, its next checkpoint write fails on
//! the closed connection: what it had in flight may reach the topic again (at-least-once, the
//! same (order id, version)), but it never moves the checkpoint.
//!
//! Session locks do not survive a transaction-pooling proxy (PgBouncer in transaction mode):
//! point the service at PostgreSQL directly or through a session-pooling proxy.

use sqlx::postgres::PgConnection;
use sqlx::{Connection, PgPool, SqlitePool};

use crate::position::{signed, unsigned};

/// The lease connection's `application_name` (followed by the instance's name, if known).
pub const APPLICATION_NAME: &str = "orders-outbox-relay";

/// A lease connection silent this long is ended by the server (its holder is frozen), which
/// releases the lock: the takeover after a freeze takes this plus one standby interval.
pub const IDLE_SESSION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(6);

/// The text whose hash (`hashtextextended(…, 0)`) is the advisory lock of relay `name`: whoever
/// holds that lock (a relay, or an operator pausing publication) keeps every relay of `name` on
/// standby.
pub fn advisory_lock_name(name: &str) -> String {
    format!("orders.outbox:{name}")
}

/// The right to publish for one relay name, with its checkpoint.
#[derive(Debug)]
pub struct Lease {
    name: String,
    holder: Holder,
}

#[derive(Debug)]
enum Holder {
    Postgres(PgConnection),
    Sqlite(SqlitePool),
}

impl Lease {
    /// Tries the advisory lock of `name` on a new dedicated connection.
    pub(crate) async fn try_postgres(
        pool: &PgPool,
        name: &str,
        instance: Option<&str>,
    ) -> sqlx::Result<Option<Self>> {
        let application = match instance {
            Some(instance) => format!("{APPLICATION_NAME} {instance}"),
            None => APPLICATION_NAME.to_owned(),
        };
        let options = pool
            .connect_options()
            .as_ref()
            .clone()
            .application_name(&application);
        let mut conn = PgConnection::connect_with(&options).await?;
        let timeout = format!("{}ms", IDLE_SESSION_TIMEOUT.as_millis());
        if let Err(error) = sqlx::query("SELECT set_config('idle_session_timeout', $1, false)")
            .bind(&timeout)
            .execute(&mut conn)
            .await
        {
            // PostgreSQL before 14: a frozen holder then keeps the lease until it wakes.
            tracing::warn!(%error, "idle_session_timeout is not available: a frozen relay is not replaced");
        }
        let locked: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(advisory_lock_name(name))
                .fetch_one(&mut conn)
                .await?;
        if !locked {
            let _ = conn.close().await;
            return Ok(None);
        }
        sqlx::query("INSERT INTO projections (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .execute(&mut conn)
            .await?;
        Ok(Some(Self {
            name: name.to_owned(),
            holder: Holder::Postgres(conn),
        }))
    }

    /// SQLite: the process owns the file; the lease only carries the checkpoint.
    pub(crate) async fn sqlite(writer: &SqlitePool, name: &str) -> sqlx::Result<Self> {
        sqlx::query("INSERT INTO projections (name) VALUES (?1) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .execute(writer)
            .await?;
        Ok(Self {
            name: name.to_owned(),
            holder: Holder::Sqlite(writer.clone()),
        })
    }

    /// The relay's checkpoint: every event up to this position was acknowledged by the broker.
    pub async fn checkpoint(&mut self) -> sqlx::Result<u64> {
        let position: i64 = match &mut self.holder {
            Holder::Postgres(conn) => {
                sqlx::query_scalar("SELECT position FROM projections WHERE name = $1")
                    .bind(&self.name)
                    .fetch_one(conn)
                    .await?
            }
            Holder::Sqlite(pool) => {
                sqlx::query_scalar("SELECT position FROM projections WHERE name = ?1")
                    .bind(&self.name)
                    .fetch_one(&*pool)
                    .await?
            }
        };
        unsigned(position)
    }

    /// Stores `position` as the checkpoint. Fails if the lease was lost.
    pub async fn commit(&mut self, position: u64) -> sqlx::Result<()> {
        match &mut self.holder {
            Holder::Postgres(conn) => {
                sqlx::query(
                    "UPDATE projections SET position = $2, updated_at = now() WHERE name = $1",
                )
                .bind(&self.name)
                .bind(signed(position))
                .execute(conn)
                .await?;
            }
            Holder::Sqlite(pool) => {
                sqlx::query(
                    "UPDATE projections SET position = ?2,
                     updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE name = ?1",
                )
                .bind(&self.name)
                .bind(signed(position))
                .execute(&*pool)
                .await?;
            }
        }
        Ok(())
    }

    /// Fails if the lease was lost (the lock's connection is gone).
    pub async fn check(&mut self) -> sqlx::Result<()> {
        match &mut self.holder {
            Holder::Postgres(conn) => conn.ping().await,
            Holder::Sqlite(_) => Ok(()),
        }
    }
}
