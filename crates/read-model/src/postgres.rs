//! The engine's storage on PostgreSQL.

use std::time::Duration;

use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgPool, Postgres, Row, Transaction};

use crate::{
    Checkpoint, ColumnTypes, Dialect, Error, Holder, Parked, ParkedEvent, Result,
    position_from_sql, position_to_sql,
};

/// The engine's tables in the event store's PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgDialect {
    pool: PgPool,
}

impl PgDialect {
    /// Over `pool` (the store's background pool).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool, for the read model's own queries.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// The checkpoint columns, with the lease's time left computed by the server's clock (the one
/// clock every instance shares).
const CHECKPOINT_COLUMNS: &str = "generation, position, owner, epoch,
    EXTRACT(EPOCH FROM lease_until - now())::float8 AS lease_left";

fn checkpoint(row: &PgRow) -> Result<Checkpoint> {
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

fn millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

impl Dialect for PgDialect {
    type Tx = Transaction<'static, Postgres>;

    const TYPES: ColumnTypes = ColumnTypes {
        id: "UUID",
        int: "BIGINT",
        bool: "BOOLEAN",
        json: "JSONB",
        time: "TIMESTAMPTZ",
        date: "DATE",
    };

    async fn execute_ddl(&self, ddl: String) -> Result<()> {
        sqlx::raw_sql(AssertSqlSafe(ddl))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn begin(&self) -> Result<Self::Tx> {
        Ok(self.pool.begin().await?)
    }

    async fn commit(tx: Self::Tx) -> Result<()> {
        Ok(tx.commit().await?)
    }

    async fn register(&self, name: &str) -> Result<Checkpoint> {
        sqlx::query("INSERT INTO projections (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .execute(&self.pool)
            .await?;
        self.checkpoint(name)
            .await?
            .ok_or_else(|| Error::Corrupt(format!("projection `{name}` vanished")))
    }

    async fn checkpoint(&self, name: &str) -> Result<Option<Checkpoint>> {
        let sql = format!("SELECT {CHECKPOINT_COLUMNS} FROM projections WHERE name = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(checkpoint).transpose()
    }

    async fn lock(tx: &mut Self::Tx, name: &str) -> Result<Checkpoint> {
        // A batch's transaction never idles long; one that does belongs to a frozen instance, and
        // the server ends it so that its row lock does not block the takeover. Set in the same
        // statement, to spend no round trip on it.
        let sql = format!(
            "SELECT set_config('idle_in_transaction_session_timeout', '5s', true) AS idle_timeout,
                    {CHECKPOINT_COLUMNS} FROM projections WHERE name = $1 FOR UPDATE"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
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
        sqlx::query(
            "UPDATE projections SET generation = $2, position = $3, updated_at = now(),
                 lease_until = COALESCE(now() + $4::int8 * interval '1 millisecond', lease_until)
             WHERE name = $1",
        )
        .bind(name)
        .bind(generation)
        .bind(position_to_sql(position)?)
        .bind(renew.map(millis))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn acquire(&self, name: &str, owner: &str, ttl: Duration) -> Result<Option<u64>> {
        // SKIP LOCKED: a row locked by the owner's batch is simply not free this time.
        let epoch: Option<i64> = sqlx::query_scalar(
            "WITH free AS (
                 SELECT name FROM projections
                 WHERE name = $1 AND (owner IS NOT DISTINCT FROM $2 OR lease_until IS NULL OR lease_until < now())
                 FOR UPDATE SKIP LOCKED
             )
             UPDATE projections p
             SET epoch = CASE WHEN p.owner IS NOT DISTINCT FROM $2 THEN p.epoch ELSE p.epoch + 1 END,
                 owner = $2,
                 lease_until = now() + $3 * interval '1 millisecond'
             FROM free WHERE p.name = free.name
             RETURNING p.epoch",
        )
        .bind(name)
        .bind(owner)
        .bind(millis(ttl))
        .fetch_optional(&self.pool)
        .await?;
        epoch.map(position_from_sql).transpose()
    }

    async fn renew(tx: &mut Self::Tx, name: &str, ttl: Duration) -> Result<()> {
        sqlx::query(
            "UPDATE projections SET lease_until = now() + $2 * interval '1 millisecond' WHERE name = $1",
        )
        .bind(name)
        .bind(millis(ttl))
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn release(&self, name: &str, owner: &str) -> Result<()> {
        sqlx::query("UPDATE projections SET lease_until = NULL WHERE name = $1 AND owner = $2")
            .bind(name)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn park(tx: &mut Self::Tx, name: &str, parked: &[Parked]) -> Result<()> {
        for event in parked {
            sqlx::query(
                "INSERT INTO parked_events (projection, position, event_id, error) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (projection, position) DO UPDATE SET error = EXCLUDED.error, parked_at = now()",
            )
            .bind(name)
            .bind(position_to_sql(event.position)?)
            .bind(event.event_id)
            .bind(&event.error)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    async fn unpark(tx: &mut Self::Tx, name: &str, position: u64) -> Result<bool> {
        let done = sqlx::query("DELETE FROM parked_events WHERE projection = $1 AND position = $2")
            .bind(name)
            .bind(position_to_sql(position)?)
            .execute(&mut **tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn parked(&self, name: &str) -> Result<Vec<ParkedEvent>> {
        let rows = sqlx::query(
            "SELECT projection, position, event_id, error, parked_at FROM parked_events
             WHERE projection = $1 ORDER BY position",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ParkedEvent {
                    projection: r.try_get("projection")?,
                    position: position_from_sql(r.try_get("position")?)?,
                    event_id: r.try_get("event_id")?,
                    error: r.try_get("error")?,
                    parked_at: r.try_get("parked_at")?,
                })
            })
            .collect()
    }
}
