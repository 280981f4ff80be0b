//! The engine's storage on PostgreSQL.

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, Row, Transaction};

use crate::{
    Checkpoint, Dialect, Error, Parked, ParkedEvent, Result, position_from_sql, position_to_sql,
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

fn checkpoint(row: &PgRow) -> Result<Checkpoint> {
    Ok(Checkpoint {
        generation: row.try_get("generation")?,
        position: position_from_sql(row.try_get("position")?)?,
    })
}

impl Dialect for PgDialect {
    type Tx = Transaction<'static, Postgres>;

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
        let row = sqlx::query("SELECT generation, position FROM projections WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(checkpoint).transpose()
    }

    async fn lock(tx: &mut Self::Tx, name: &str) -> Result<Checkpoint> {
        let row =
            sqlx::query("SELECT generation, position FROM projections WHERE name = $1 FOR UPDATE")
                .bind(name)
                .fetch_one(&mut **tx)
                .await?;
        checkpoint(&row)
    }

    async fn save(tx: &mut Self::Tx, name: &str, checkpoint: Checkpoint) -> Result<()> {
        sqlx::query(
            "UPDATE projections SET generation = $2, position = $3, updated_at = now() WHERE name = $1",
        )
        .bind(name)
        .bind(checkpoint.generation)
        .bind(position_to_sql(checkpoint.position)?)
        .execute(&mut **tx)
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
