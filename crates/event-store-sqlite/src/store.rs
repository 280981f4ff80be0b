//! [`SqliteEventStore`]: the [`EventStore`] implementation.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use event_store::{
    AppendRequest, AppendResult, EventStore, EventStoreError, Feed, FeedBacklog, FeedEvent,
    FeedWakeups, IdempotencyRecord, RecordedEvent, Result, Snapshot,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Row, SqlitePool};
use tokio::sync::watch;
use uuid::Uuid;

use crate::rows::{EVENT_COLUMNS, feed_event, json, recorded_event, signed, unavailable, unsigned};
use crate::{MIGRATOR, append};

/// Settings of the embedded store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Connections of the read pool (the write pool always has one).
    pub read_connections: u32,
    /// How long a statement waits on a lock held by another process before failing.
    pub busy_timeout: Duration,
    /// Create the file if it does not exist (off for tools that only inspect a database).
    pub create_if_missing: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            read_connections: 8,
            busy_timeout: Duration::from_secs(5),
            create_if_missing: true,
        }
    }
}

/// Idempotency records deleted per statement of a purge.
const PURGE_BATCH: i64 = 5_000;

/// The SQLite event store. Clones share both pools.
#[derive(Debug, Clone)]
pub struct SqliteEventStore {
    /// Exactly one connection: SQLite has one writer, so writers queue here rather than in SQLite.
    writer: SqlitePool,
    reader: SqlitePool,
    /// Counts appends committed by this process; feed readers wait on it instead of polling.
    appended: Arc<watch::Sender<()>>,
}

impl SqliteEventStore {
    /// The feed's rows after `after`, in position order.
    async fn feed_rows(&self, after: u64, limit: usize) -> Result<Vec<sqlx::sqlite::SqliteRow>> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE position > ?1 ORDER BY position LIMIT ?2"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(signed(after)?)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.reader)
            .await
            .map_err(unavailable)
    }

    /// Opens (creating if needed) the database file at `path`, in WAL mode. Does not migrate.
    pub async fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        let connect = SqliteConnectOptions::new().filename(path.as_ref());
        Self::with_connect_options(connect, options).await
    }

    /// Opens the database named by an `sqlite:` URL (e.g. `sqlite://data/orders.db`).
    pub async fn connect(url: &str, options: SqliteOptions) -> Result<Self> {
        let connect = SqliteConnectOptions::from_str(url).map_err(unavailable)?;
        Self::with_connect_options(connect, options).await
    }

    async fn with_connect_options(
        connect: SqliteConnectOptions,
        options: SqliteOptions,
    ) -> Result<Self> {
        let connect = connect
            .create_if_missing(options.create_if_missing)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: an acknowledged append survives power loss, not only a process crash.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(options.busy_timeout);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(connect.clone())
            .await
            .map_err(unavailable)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.read_connections.max(1))
            .connect_with(connect.read_only(true))
            .await
            .map_err(unavailable)?;
        Ok(Self {
            writer,
            reader,
            appended: Arc::new(watch::Sender::new(())),
        })
    }

    /// Applies the embedded migrations that are not applied yet.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR
            .run(&self.writer)
            .await
            .map_err(EventStoreError::unavailable)
    }

    /// The versions of this build's migrations the database has not applied (all of them on a
    /// database that was never migrated). Reads only: tools use it to refuse a database that
    /// `migrate` has not brought up to date instead of migrating it themselves.
    pub async fn pending_migrations(&self) -> Result<Vec<i64>> {
        let applied: Vec<i64> =
            match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.writer)
                .await
            {
                Ok(applied) => applied,
                // No bookkeeping table: nothing was ever applied.
                Err(sqlx::Error::Database(error))
                    if error.message().contains("_sqlx_migrations") =>
                {
                    Vec::new()
                }
                Err(error) => return Err(EventStoreError::unavailable(error)),
            };
        Ok(MIGRATOR
            .iter()
            .map(|migration| migration.version)
            .filter(|version| !applied.contains(version))
            .collect())
    }

    /// The write pool (one connection), for read models that share the file.
    pub fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// The read pool.
    pub fn reader(&self) -> &SqlitePool {
        &self.reader
    }
}

impl EventStore for SqliteEventStore {
    #[tracing::instrument(level = "debug", skip_all, fields(aggregate_id = %request.aggregate_id, events = request.events.len(), expected = %request.expected), err(level = "debug", Display))]
    async fn append(&self, request: AppendRequest) -> Result<AppendResult> {
        // IMMEDIATE takes the write lock up front: a deferred transaction that reads first can fail
        // with SQLITE_BUSY at its first write when another process holds the lock.
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(unavailable)?;
        let result = append::append(&mut tx, &request).await?;
        if !result.deduplicated {
            tx.commit().await.map_err(unavailable)?;
            self.appended.send_replace(());
        }
        Ok(result)
    }

    #[tracing::instrument(level = "debug", skip(self), err(level = "debug", Display))]
    async fn load_events_from_version(
        &self,
        aggregate_id: Uuid,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>> {
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE aggregate_id = ?1 AND version >= ?2 ORDER BY version"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(aggregate_id.hyphenated().to_string())
            .bind(signed(from_version)?)
            .fetch_all(&self.reader)
            .await
            .map_err(unavailable)?;
        rows.iter().map(recorded_event).collect()
    }

    #[tracing::instrument(level = "debug", skip(self), err(level = "debug", Display))]
    async fn get_current_version(&self, aggregate_id: Uuid) -> Result<u64> {
        let version: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) FROM events WHERE aggregate_id = ?1",
        )
        .bind(aggregate_id.hyphenated().to_string())
        .fetch_one(&self.reader)
        .await
        .map_err(unavailable)?;
        u64::try_from(version).map_err(|_| EventStoreError::Corrupt("negative version".into()))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(aggregate_id = %snapshot.aggregate_id, version = snapshot.version), err(level = "debug", Display))]
    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        sqlx::query(
            "INSERT INTO snapshots (aggregate_id, aggregate_type, version, schema_version, state, taken_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (aggregate_id) DO UPDATE
             SET aggregate_type = excluded.aggregate_type, version = excluded.version,
                 schema_version = excluded.schema_version, state = excluded.state, taken_at = excluded.taken_at
             WHERE snapshots.version <= excluded.version",
        )
        .bind(snapshot.aggregate_id.hyphenated().to_string())
        .bind(&snapshot.aggregate_type)
        .bind(signed(snapshot.version)?)
        .bind(i64::from(snapshot.schema_version))
        .bind(snapshot.state.to_string())
        .bind(chrono::Utc::now())
        .execute(&self.writer)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip(self), err(level = "debug", Display))]
    async fn load_snapshot(&self, aggregate_id: Uuid) -> Result<Option<Snapshot>> {
        let row = sqlx::query("SELECT aggregate_type, version, schema_version, state FROM snapshots WHERE aggregate_id = ?1")
            .bind(aggregate_id.hyphenated().to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(unavailable)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Snapshot {
            aggregate_id,
            aggregate_type: row.try_get("aggregate_type").map_err(unavailable)?,
            version: unsigned(&row, "version")?,
            schema_version: u32::try_from(unsigned(&row, "schema_version")?).unwrap_or(0),
            state: json(&row, "state")?,
        }))
    }

    #[tracing::instrument(level = "debug", skip(self), err(level = "debug", Display))]
    async fn global_position(&self, aggregate_id: Uuid, version: u64) -> Result<u64> {
        let position: Option<i64> = sqlx::query_scalar(
            "SELECT position FROM events WHERE aggregate_id = ?1 AND version = ?2",
        )
        .bind(aggregate_id.hyphenated().to_string())
        .bind(signed(version)?)
        .fetch_optional(&self.reader)
        .await
        .map_err(unavailable)?;
        let position = position.ok_or(EventStoreError::EventNotFound {
            aggregate_id,
            version,
        })?;
        u64::try_from(position).map_err(|_| EventStoreError::Corrupt("negative position".into()))
    }

    async fn position_of(&self, aggregate_id: Uuid, version: u64) -> Result<Option<u64>> {
        // Numbered at commit: a stored event always has its position.
        self.global_position(aggregate_id, version).await.map(Some)
    }

    #[tracing::instrument(level = "debug", skip(self), err(level = "debug", Display))]
    async fn find_idempotency_record(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>> {
        let row = sqlx::query(
            "SELECT request_hash, response FROM idempotency_keys WHERE scope = ?1 AND key = ?2",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(&self.reader)
        .await
        .map_err(unavailable)?;
        row.map(|row| {
            Ok(IdempotencyRecord {
                scope: scope.to_owned(),
                key: key.to_owned(),
                request_hash: row.try_get("request_hash").map_err(unavailable)?,
                response: json(&row, "response")?,
            })
        })
        .transpose()
    }

    #[tracing::instrument(level = "debug", skip(self), err(level = "debug", Display))]
    async fn purge_idempotency_records(&self, older_than: std::time::Duration) -> Result<u64> {
        // `created_at` is RFC 3339 text in UTC, written by this store, so it orders as text.
        let cutoff = chrono::Duration::from_std(older_than)
            .ok()
            .and_then(|age| Utc::now().checked_sub_signed(age))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        // In batches, by the `created_at` index: the one writer connection is shared with appends.
        let mut purged = 0;
        loop {
            let deleted = sqlx::query(
                "DELETE FROM idempotency_keys WHERE rowid IN (
                     SELECT rowid FROM idempotency_keys WHERE created_at < ?1
                     ORDER BY created_at LIMIT ?2
                 )",
            )
            .bind(cutoff)
            .bind(PURGE_BATCH)
            .execute(&self.writer)
            .await
            .map_err(unavailable)?
            .rows_affected();
            purged += deleted;
            if deleted < PURGE_BATCH as u64 {
                return Ok(purged);
            }
        }
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

impl Feed for SqliteEventStore {
    #[tracing::instrument(level = "debug", skip(self), err(level = "debug", Display))]
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>> {
        let rows = self.feed_rows(after, limit).await?;
        rows.iter().map(recorded_event).collect()
    }

    #[tracing::instrument(level = "debug", skip(self), err(level = "debug", Display))]
    async fn read_feed(&self, after: u64, limit: usize) -> Result<Vec<FeedEvent>> {
        let rows = self.feed_rows(after, limit).await?;
        rows.iter().map(feed_event).collect()
    }

    async fn head(&self) -> Result<u64> {
        let head: Option<i64> = sqlx::query_scalar("SELECT MAX(position) FROM events")
            .fetch_one(&self.reader)
            .await
            .map_err(unavailable)?;
        u64::try_from(head.unwrap_or(0))
            .map_err(|_| EventStoreError::Corrupt(format!("the feed head is negative: {head:?}")))
    }

    async fn committed_at(&self, position: u64) -> Result<Option<DateTime<Utc>>> {
        let Ok(position) = i64::try_from(position) else {
            return Ok(None); // beyond any position SQLite can hold
        };
        sqlx::query_scalar("SELECT recorded_at FROM events WHERE position = ?1")
            .bind(position)
            .fetch_optional(&self.reader)
            .await
            .map_err(unavailable)
    }

    async fn backlog(&self) -> Result<FeedBacklog> {
        Ok(FeedBacklog::default()) // numbered inside the appending transaction
    }

    /// Ticks after every append of this process. Appends of another process on the same file
    /// are seen by polling only.
    fn wakeups(&self) -> FeedWakeups {
        FeedWakeups::new(self.appended.subscribe())
    }
}
