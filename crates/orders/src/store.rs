//! The event store the configuration selects: PostgreSQL or the embedded SQLite file.

use event_store::{
    AppendRequest, AppendResult, EventStore, IdempotencyRecord, LoadRequest, RecordedEvent, Result,
    Snapshot, StreamLoad,
};
use event_store_postgres::{PostgresEventStore, PostgresOptions};
use event_store_sqlite::{SqliteEventStore, SqliteOptions};
use uuid::Uuid;

use common::{DatabaseBackend, DatabaseConfig};

/// One of the backends, chosen at start-up. An enum rather than `dyn`: the trait's methods are
/// generic and async, and there are exactly two production backends.
#[derive(Debug, Clone)]
pub enum Store {
    /// A PostgreSQL server.
    Postgres(PostgresEventStore),
    /// The embedded SQLite file.
    Sqlite(SqliteEventStore),
}

impl Store {
    /// Connects to the configured database (creating the data directory for SQLite) and applies
    /// pending migrations.
    pub async fn open(config: &DatabaseConfig) -> anyhow::Result<Self> {
        let store = match config.backend()? {
            DatabaseBackend::Postgres { url } => {
                let defaults = PostgresOptions::default();
                let options = PostgresOptions {
                    max_connections: config.max_connections,
                    group_commit: defaults.group_commit.filter(|_| config.group_commit),
                    ..defaults
                };
                Self::Postgres(PostgresEventStore::connect(&url, options).await?)
            }
            DatabaseBackend::Sqlite { url } => {
                config.ensure_data_dir()?;
                let options = SqliteOptions {
                    read_connections: config.max_connections,
                    ..Default::default()
                };
                Self::Sqlite(SqliteEventStore::connect(&url, options).await?)
            }
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Self::Postgres(store) => store.migrate().await,
            Self::Sqlite(store) => store.migrate().await,
        }
    }

    /// Pooled connections (in use, idle).
    pub fn pool_connections(&self) -> (u32, u32) {
        match self {
            Self::Postgres(store) => {
                // Both pools: the background one and the command path's own.
                let (size, idle) = (store.pool().size(), store.pool().num_idle() as u32);
                let (busy, free) = store.command_connections();
                let busy = size.saturating_sub(idle) + u32::try_from(busy).unwrap_or(u32::MAX);
                (busy, idle + u32::try_from(free).unwrap_or(u32::MAX))
            }
            Self::Sqlite(store) => {
                let size = store.writer().size() + store.reader().size();
                let idle = (store.writer().num_idle() + store.reader().num_idle()) as u32;
                (size.saturating_sub(idle), idle)
            }
        }
    }

    /// "postgres" or "sqlite", for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }
}

/// Forwards a call to whichever backend is selected.
macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Store::Postgres($store) => $call,
            Store::Sqlite($store) => $call,
        }
    };
}

impl EventStore for Store {
    async fn append(&self, request: AppendRequest) -> Result<AppendResult> {
        let started = std::time::Instant::now();
        let events = request.events.len() as u64;
        let result = delegate!(self, s => s.append(request).await);
        let outcome = match &result {
            Ok(r) if r.deduplicated => "deduplicated",
            Ok(_) => "appended",
            Err(e) if e.is_conflict() => "conflict",
            Err(event_store::EventStoreError::Unavailable(_)) => "unavailable",
            Err(_) => "rejected",
        };
        metrics::counter!("event_store_appends_total", "outcome" => outcome).increment(1);
        if outcome == "appended" {
            metrics::counter!("event_store_appended_events_total").increment(events);
        }
        metrics::histogram!("event_store_append_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        result
    }

    async fn load_events_from_version(
        &self,
        aggregate_id: Uuid,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>> {
        delegate!(self, s => s.load_events_from_version(aggregate_id, from_version).await)
    }

    async fn get_current_version(&self, aggregate_id: Uuid) -> Result<u64> {
        delegate!(self, s => s.get_current_version(aggregate_id).await)
    }

    async fn save_snapshot(&self, snapshot: Snapshot) -> Result<()> {
        delegate!(self, s => s.save_snapshot(snapshot).await)
    }

    async fn load_snapshot(&self, aggregate_id: Uuid) -> Result<Option<Snapshot>> {
        delegate!(self, s => s.load_snapshot(aggregate_id).await)
    }

    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>> {
        delegate!(self, s => s.read_all(after, limit).await)
    }

    async fn global_position(&self, aggregate_id: Uuid, version: u64) -> Result<u64> {
        delegate!(self, s => s.global_position(aggregate_id, version).await)
    }

    async fn position_of(&self, aggregate_id: Uuid, version: u64) -> Result<Option<u64>> {
        delegate!(self, s => s.position_of(aggregate_id, version).await)
    }

    async fn load_stream(&self, request: LoadRequest) -> Result<StreamLoad> {
        delegate!(self, s => s.load_stream(request).await)
    }

    async fn find_idempotency_record(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>> {
        delegate!(self, s => s.find_idempotency_record(scope, key).await)
    }

    async fn ping(&self) -> Result<()> {
        delegate!(self, s => s.ping().await)
    }
}
