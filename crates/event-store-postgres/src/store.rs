//! [`PostgresEventStore`]: the [`EventStore`] implementation.

use std::sync::Arc;
use std::time::Duration;

use event_store::{
    AppendRequest, AppendResult, EventStore, EventStoreError, IdempotencyRecord, RecordedEvent,
    Result, Snapshot,
};
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool, Row};
use uuid::Uuid;

use crate::errors::unavailable;
use crate::rows::{EVENT_COLUMNS, recorded_event, signed, unsigned};
use crate::sequencer::Sequencer;
use crate::{MIGRATOR, append};

/// How long [`EventStore::global_position`] waits for the sequencer before giving up.
const POSITION_TIMEOUT: Duration = Duration::from_secs(10);

/// Connection settings.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Upper bound on pooled connections.
    pub max_connections: u32,
    /// How long to wait for a free connection before failing with `Unavailable`.
    pub acquire_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        // 2 × cores is PostgreSQL's own rule of thumb for busy connections; 16 leaves headroom.
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// The PostgreSQL event store. Clones share the pool and the sequencer.
#[derive(Debug, Clone)]
pub struct PostgresEventStore {
    pool: PgPool,
    sequencer: Arc<Sequencer>,
}

impl PostgresEventStore {
    /// Connects a pool to `url` and starts the sequencer. Does not migrate: call [`Self::migrate`].
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .connect(url)
            .await
            .map_err(unavailable)?;
        Ok(Self::from_pool(pool))
    }

    /// Wraps an existing pool and starts the sequencer on the current runtime.
    pub fn from_pool(pool: PgPool) -> Self {
        let sequencer = Arc::new(Sequencer::spawn(pool.clone()));
        Self { pool, sequencer }
    }

    /// Applies the embedded migrations that are not applied yet.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(EventStoreError::unavailable)
    }

    /// The connection pool, for read models and tools that share the database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn position_now(&self, aggregate_id: Uuid, version: u64) -> Result<Option<Option<i64>>> {
        sqlx::query_scalar(
            "SELECT p.position FROM events e LEFT JOIN event_positions p ON p.seq = e.seq
             WHERE e.aggregate_id = $1 AND e.version = $2",
        )
        .bind(aggregate_id)
        .bind(signed(version)?)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)
    }
}

impl EventStore for PostgresEventStore {
    #[tracing::instrument(level = "debug", skip_all, fields(aggregate_id = %request.aggregate_id, events = request.events.len(), expected = %request.expected), err(level = "debug", Display))]
    async fn append(&self, request: AppendRequest) -> Result<AppendResult> {
        let result = append::append(&self.pool, &request).await;
        if matches!(&result, Ok(r) if !r.deduplicated) {
            self.sequencer.wake();
        }
        result
    }

    #[tracing::instrument(level = "debug", skip(self), err(level = "debug", Display))]
    async fn load_events_from_version(
        &self,
        aggregate_id: Uuid,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events e LEFT JOIN event_positions p ON p.seq = e.seq
             WHERE e.aggregate_id = $1 AND e.version >= $2 ORDER BY e.version"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(aggregate_id)
            .bind(signed(from_version)?)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(recorded_event).collect()
    }

    #[tracing::instrument(level = "debug", skip(self), err(level = "debug", Display))]
    async fn get_current_version(&self, aggregate_id: Uuid) -> Result<u64> {
        append::current_version(&self.pool, aggregate_id).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(aggregate_id = %snapshot.aggregate_id, version = snapshot.version), err(level = "debug", Display))]
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        let schema_version = i32::try_from(snapshot.schema_version).map_err(|_| {
            EventStoreError::InvalidAppend("snapshot schema_version too large".into())
        })?;
        sqlx::query(
            "INSERT INTO snapshots (aggregate_id, aggregate_type, version, schema_version, state)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (aggregate_id) DO UPDATE
             SET aggregate_type = EXCLUDED.aggregate_type, version = EXCLUDED.version,
                 schema_version = EXCLUDED.schema_version, state = EXCLUDED.state, taken_at = now()
             WHERE snapshots.version <= EXCLUDED.version",
        )
        .bind(snapshot.aggregate_id)
        .bind(&snapshot.aggregate_type)
        .bind(signed(snapshot.version)?)
        .bind(schema_version)
        .bind(&snapshot.state)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip(self), err(level = "debug", Display))]
    async fn load_snapshot(&self, aggregate_id: Uuid) -> Result<Option<Snapshot>> {
        let row = sqlx::query(
            "SELECT aggregate_type, version, schema_version, state FROM snapshots WHERE aggregate_id = $1",
        )
        .bind(aggregate_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        let Some(row) = row else { return Ok(None) };
        let version: i64 = row.try_get("version").map_err(unavailable)?;
        let schema_version: i32 = row.try_get("schema_version").map_err(unavailable)?;
        Ok(Some(Snapshot {
            aggregate_id,
            aggregate_type: row.try_get("aggregate_type").map_err(unavailable)?,
            version: unsigned(version, "snapshot version")?,
            schema_version: u32::try_from(schema_version).unwrap_or(0),
            state: row.try_get("state").map_err(unavailable)?,
        }))
    }

    #[tracing::instrument(level = "debug", skip(self), err(level = "debug", Display))]
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM event_positions p JOIN events e ON e.seq = p.seq
             WHERE p.position > $1 ORDER BY p.position LIMIT $2"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(signed(after)?)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(recorded_event).collect()
    }

    #[tracing::instrument(level = "debug", skip(self), err(level = "debug", Display))]
    async fn global_position(&self, aggregate_id: Uuid, version: u64) -> Result<u64> {
        let wait = async {
            loop {
                match self.position_now(aggregate_id, version).await? {
                    None => {
                        return Err(EventStoreError::EventNotFound {
                            aggregate_id,
                            version,
                        });
                    }
                    Some(Some(position)) => return unsigned(position, "position"),
                    Some(None) => self.sequencer.next_round().await,
                }
            }
        };
        tokio::time::timeout(POSITION_TIMEOUT, wait)
            .await
            .unwrap_or_else(|_| {
                Err(EventStoreError::unavailable(std::io::Error::other(
                    "the sequencer did not number the event in time; is the database overloaded?",
                )))
            })
    }

    async fn position_after_append(&self, aggregate_id: Uuid, version: u64) -> Result<u64> {
        // The sequencer numbers after commit: looking before its next round would only find NULL.
        let _ = tokio::time::timeout(POSITION_TIMEOUT, self.sequencer.next_round()).await;
        self.global_position(aggregate_id, version).await
    }

    #[tracing::instrument(level = "debug", skip(self), err(level = "debug", Display))]
    async fn find_idempotency_record(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>> {
        let row = sqlx::query(
            "SELECT request_hash, response FROM idempotency_keys WHERE scope = $1 AND key = $2",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(unavailable)?;
        row.map(|row| {
            Ok(IdempotencyRecord {
                scope: scope.to_owned(),
                key: key.to_owned(),
                request_hash: row.try_get("request_hash").map_err(unavailable)?,
                response: row.try_get("response").map_err(unavailable)?,
            })
        })
        .transpose()
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
