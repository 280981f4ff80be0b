//! The engine's storage on SQLite.

use std::time::Duration;

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, SqlitePool, Transaction};
use uuid::Uuid;

use crate::{
    Checkpoint, ColumnTypes, Dialect, Error, Holder, Parked, ParkedEvent, Result,
    position_from_sql, position_to_sql,
};

/// SQLite's notation for "now" in the format the event store writes.
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// The engine's tables in the event store's SQLite file. Writes go through the store's single
/// writer connection, so batches are serialised with appends (and with each other: that is the
/// lock).
#[derive(Debug, Clone)]
pub struct SqliteDialect {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteDialect {
    /// Over the store's writer and reader pools.
    pub fn new(writer: SqlitePool, reader: SqlitePool) -> Self {
        Self { writer, reader }
    }

    /// The read pool, for the read model's own queries.
    pub fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// The writer pool, for the read model's DDL.
    pub fn writer(&self) -> &SqlitePool {
        &self.writer
    }
}

/// The checkpoint columns, with the lease's seconds left.
const CHECKPOINT_COLUMNS: &str = "generation, position, owner, epoch,
    (julianday(lease_until) - julianday('now')) * 86400.0 AS lease_left";

fn checkpoint(row: &SqliteRow) -> Result<Checkpoint> {
    Ok(Checkpoint {
        generation: row.try_get("generation")?,
        position: position_from_sql(row.try_get("position")?)?,
        holder: Holder::from_columns(
            row.try_get("owner")?,
            row.try_get("epoch")?,
            row.try_get("lease_left")?,
        )?,
    })
}

/// `now + ttl` in the format the event store writes (comparable as text).
fn until(ttl: Duration) -> String {
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    (chrono::Utc::now() + ttl)
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

impl Dialect for SqliteDialect {
    type Tx = Transaction<'static, Sqlite>;

    // SQLite's type affinities; times as the RFC 3339 text sqlx's chrono support reads and writes.
    const TYPES: ColumnTypes = ColumnTypes {
        id: "TEXT",
        int: "INTEGER",
        bool: "INTEGER",
        json: "TEXT",
        time: "TEXT",
        date: "TEXT",
    };

    async fn execute_ddl(&self, ddl: String) -> Result<()> {
        sqlx::raw_sql(sqlx::AssertSqlSafe(ddl))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn begin(&self) -> Result<Self::Tx> {
        Ok(self.writer.begin().await?)
    }

    async fn commit(tx: Self::Tx) -> Result<()> {
        Ok(tx.commit().await?)
    }

    async fn register(&self, name: &str) -> Result<Checkpoint> {
        sqlx::query("INSERT INTO projections (name) VALUES (?1) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .execute(&self.writer)
            .await?;
        let sql = format!("SELECT {CHECKPOINT_COLUMNS} FROM projections WHERE name = ?1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .fetch_optional(&self.writer)
            .await?;
        row.as_ref()
            .map(checkpoint)
            .transpose()?
            .ok_or_else(|| Error::Corrupt(format!("projection `{name}` vanished")))
    }

    async fn checkpoint(&self, name: &str) -> Result<Option<Checkpoint>> {
        let sql = format!("SELECT {CHECKPOINT_COLUMNS} FROM projections WHERE name = ?1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .fetch_optional(&self.reader)
            .await?;
        row.as_ref().map(checkpoint).transpose()
    }

    async fn lock(tx: &mut Self::Tx, name: &str) -> Result<Checkpoint> {
        // The single writer connection is the lock: nothing else writes while `tx` is open.
        let sql = format!("SELECT {CHECKPOINT_COLUMNS} FROM projections WHERE name = ?1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .fetch_one(&mut **tx)
            .await?;
        checkpoint(&row)
    }

    async fn save(
        tx: &mut Self::Tx,
        name: &str,
        generation: i32,
        position: u64,
        renew: Option<Duration>,
    ) -> Result<()> {
        let sql = format!(
            "UPDATE projections SET generation = ?2, position = ?3, updated_at = {NOW},
                 lease_until = COALESCE(?4, lease_until) WHERE name = ?1"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .bind(generation)
            .bind(position_to_sql(position)?)
            .bind(renew.map(until))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn acquire(&self, name: &str, owner: &str, ttl: Duration) -> Result<Option<u64>> {
        // The single writer connection serialises this with every batch.
        let now = until(Duration::ZERO);
        let epoch: Option<i64> = sqlx::query_scalar(
            "UPDATE projections
             SET epoch = CASE WHEN owner IS ?2 THEN epoch ELSE epoch + 1 END,
                 owner = ?2, lease_until = ?3
             WHERE name = ?1 AND (owner IS ?2 OR lease_until IS NULL OR lease_until < ?4)
             RETURNING epoch",
        )
        .bind(name)
        .bind(owner)
        .bind(until(ttl))
        .bind(now)
        .fetch_optional(&self.writer)
        .await?;
        epoch.map(position_from_sql).transpose()
    }

    async fn renew(tx: &mut Self::Tx, name: &str, ttl: Duration) -> Result<()> {
        sqlx::query("UPDATE projections SET lease_until = ?2 WHERE name = ?1")
            .bind(name)
            .bind(until(ttl))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn release(&self, name: &str, owner: &str) -> Result<()> {
        sqlx::query("UPDATE projections SET lease_until = NULL WHERE name = ?1 AND owner = ?2")
            .bind(name)
            .bind(owner)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn park(tx: &mut Self::Tx, name: &str, parked: &[Parked]) -> Result<()> {
        let sql = format!(
            "INSERT INTO parked_events (projection, position, event_id, error) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (projection, position) DO UPDATE SET error = EXCLUDED.error, parked_at = {NOW}"
        );
        for event in parked {
            sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(name)
                .bind(position_to_sql(event.position)?)
                .bind(event.event_id.to_string())
                .bind(&event.error)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    async fn unpark(tx: &mut Self::Tx, name: &str, position: u64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM parked_events WHERE projection = ?1 AND position = ?2")
            .bind(name)
            .bind(position_to_sql(position)?)
            .execute(&mut **tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn parked(&self, name: &str) -> Result<Vec<ParkedEvent>> {
        let rows = sqlx::query(
            "SELECT projection, position, event_id, error, parked_at FROM parked_events
             WHERE projection = ?1 ORDER BY position",
        )
        .bind(name)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|r| {
                let event_id: String = r.try_get("event_id")?;
                Ok(ParkedEvent {
                    projection: r.try_get("projection")?,
                    position: position_from_sql(r.try_get("position")?)?,
                    event_id: Uuid::parse_str(&event_id).map_err(|e| {
                        Error::Corrupt(format!("parked event id {event_id:?}: {e}"))
                    })?,
                    error: r.try_get("error")?,
                    parked_at: r.try_get("parked_at")?,
                })
            })
            .collect()
    }
}
