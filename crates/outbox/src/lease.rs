//! The relay lease: one publisher per topic across all service instances, and the checkpoint
//! written only by the holder.
//!
//! On PostgreSQL the lease is a session advisory lock (`pg_try_advisory_lock`) held by a
//! dedicated connection for as long as the relay publishes. Checkpoint writes go through that
//! same connection, so they are fenced: if the connection (and with it the lock) is lost, the
//! write fails and the relay stops publishing until it holds the lock again. The server releases
//! the lock the moment the session ends, even if the process dies without cleaning up, so a
//! crashed instance is replaced within one standby interval. A lease row with an expiry would
//! need clock-based timeouts and still let a paused holder publish after its expiry.
//!
//! Session locks do not survive a transaction-pooling proxy (PgBouncer in transaction mode):
//! point the service at PostgreSQL directly or through a session-pooling proxy.

use sqlx::postgres::PgConnection;
use sqlx::{Connection, PgPool, SqlitePool};

use crate::database::{signed, unsigned};

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
    pub(crate) async fn try_postgres(pool: &PgPool, name: &str) -> sqlx::Result<Option<Self>> {
        let options = pool
            .connect_options()
            .as_ref()
            .clone()
            .application_name("orders-outbox-relay");
        let mut conn = PgConnection::connect_with(&options).await?;
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
        Ok(unsigned(position))
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
