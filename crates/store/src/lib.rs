//! The backend the configuration selects: PostgreSQL or the embedded SQLite file.
//!
//! [`Store`] is the event store; [`Db`] is the database under it, the one handle from which every
//! other table (read models, customer keys, console links, the relay's checkpoint) is built. These
//! two are the only places that name both backends: everything above takes one of them and
//! matches on it, or takes a dialect built from it.

pub mod replicas;
pub mod sql;

pub use sql::SqlId;

use chrono::{DateTime, Utc};
use event_store::{
    AppendRequest, AppendResult, EventStore, Feed, FeedBacklog, FeedEvent, FeedWakeups,
    IdempotencyRecord, LoadRequest, RecordedEvent, Result, Snapshot, StreamLoad,
};
use event_store_postgres::{PostgresEventStore, PostgresOptions, ServerList, SessionAttrs};
use event_store_sqlite::{SqliteEventStore, SqliteOptions};
use sqlx::{PgPool, SqlitePool};
use uuid::Uuid;

use common::{DatabaseBackend, DatabaseConfig};

/// The database a [`Store`] keeps its events in, for the tables beside them. Cloning is cheap
/// (pools are handles).
#[derive(Debug, Clone)]
pub enum Db {
    /// A PostgreSQL server: one pool for reads and writes.
    Postgres(PgPool),
    /// The SQLite file: writes go through the single writer, reads through the readers.
    Sqlite {
        /// The one writing connection.
        writer: SqlitePool,
        /// The reading connections.
        reader: SqlitePool,
    },
}

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
                Self::Postgres(
                    PostgresEventStore::connect(&url, options)
                        .await
                        .map_err(|error| explain_postgres(error, &url))?,
                )
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

    /// Opens the configured database for inspection (`doctor`, `verify`, `streams show`,
    /// `feed tail`, `projections status`): it must exist and be migrated to this build's schema.
    /// Nothing is created or migrated, and no sequencer or group-commit writer is started; a
    /// database that is missing or behind is an error that says which command sets it up.
    pub async fn open_existing(config: &DatabaseConfig) -> anyhow::Result<Self> {
        Self::connect(config, Access::Inspect)
            .await?
            .at_current_schema(config)
            .await
    }

    /// Opens the configured database for a tool that writes (`projections rebuild`,
    /// `projections parked retry|skip`, `customers forget`, `keys rotate-master`): like
    /// [`Self::open_existing`] it must exist at this build's schema and nothing is migrated or
    /// started in the background (a running service's sequencer numbers what the tool appends),
    /// but its sessions may write.
    pub async fn open_for_tool(config: &DatabaseConfig) -> anyhow::Result<Self> {
        Self::connect(config, Access::Write)
            .await?
            .at_current_schema(config)
            .await
    }

    async fn at_current_schema(self, config: &DatabaseConfig) -> anyhow::Result<Self> {
        let pending = self.pending_migrations().await?;
        anyhow::ensure!(
            pending.is_empty(),
            "{} is not at this version's schema ({} migration(s) not applied); run `orders migrate` first",
            config.backend()?,
            pending.len()
        );
        Ok(self)
    }

    /// Like [`Self::open_existing`], without the schema check (`doctor` reports it instead).
    pub async fn connect_existing(config: &DatabaseConfig) -> anyhow::Result<Self> {
        Self::connect(config, Access::Inspect).await
    }

    async fn connect(config: &DatabaseConfig, access: Access) -> anyhow::Result<Self> {
        let backend = config.backend()?;
        let store = match &backend {
            DatabaseBackend::Postgres { url } => {
                let options = PostgresOptions {
                    max_connections: config.max_connections,
                    group_commit: None,
                    sequencer: false,
                    ..PostgresOptions::default()
                };
                let servers = ServerList::parse(url, SessionAttrs::ReadWrite).map_err(|e| {
                    anyhow::anyhow!(
                        "DATABASE_URL {} is not a PostgreSQL URL: {e}",
                        common::config::redact_password(url)
                    )
                })?;
                // Every transaction of an inspection's connections is read-only: it cannot
                // write, whatever a later change to the commands does. It still runs on the
                // primary: only there is the feed's durable head known.
                let servers = match access {
                    Access::Inspect => servers.read_only_sessions(),
                    Access::Write => servers,
                };
                let store = PostgresEventStore::connect_servers(servers, options)
                    .await
                    .map_err(|error| explain_postgres(error, url))?;
                Self::Postgres(store)
            }
            DatabaseBackend::Sqlite { url } => {
                let file = url
                    .parse::<sqlx::sqlite::SqliteConnectOptions>()
                    .map(|options| options.get_filename().to_path_buf())?;
                anyhow::ensure!(
                    file.exists(),
                    "there is no database at {}: nothing was stored there yet. `orders serve` or `orders migrate` creates it; or point DATABASE_URL or --data-dir at the one to inspect",
                    file.display()
                );
                let options = SqliteOptions {
                    read_connections: config.max_connections,
                    create_if_missing: false,
                    ..Default::default()
                };
                Self::Sqlite(SqliteEventStore::connect(url, options).await?)
            }
        };
        Ok(store)
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Self::Postgres(store) => store.migrate().await,
            Self::Sqlite(store) => store.migrate().await,
        }
    }

    /// `host:port` of the PostgreSQL server in use, if it was found fitting (none for SQLite).
    pub fn primary(&self) -> Option<String> {
        match self {
            Self::Postgres(store) => store.servers().current().map(str::to_owned),
            Self::Sqlite(_) => None,
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

    /// The database under the store, for the tables beside the event log.
    pub fn db(&self) -> Db {
        match self {
            Self::Postgres(store) => Db::Postgres(store.pool().clone()),
            Self::Sqlite(store) => Db::Sqlite {
                writer: store.writer().clone(),
                reader: store.reader().clone(),
            },
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

impl Store {
    /// This build's migrations the database has not applied.
    pub async fn pending_migrations(&self) -> Result<Vec<i64>> {
        delegate!(self, s => s.pending_migrations().await)
    }
}

impl Feed for Store {
    async fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>> {
        delegate!(self, s => s.read_all(after, limit).await)
    }

    async fn read_feed(&self, after: u64, limit: usize) -> Result<Vec<FeedEvent>> {
        delegate!(self, s => s.read_feed(after, limit).await)
    }

    async fn head(&self) -> Result<u64> {
        delegate!(self, s => s.head().await)
    }

    async fn committed_at(&self, position: u64) -> Result<Option<DateTime<Utc>>> {
        delegate!(self, s => s.committed_at(position).await)
    }

    async fn backlog(&self) -> Result<FeedBacklog> {
        delegate!(self, s => s.backlog().await)
    }

    fn wakeups(&self) -> FeedWakeups {
        delegate!(self, s => s.wakeups())
    }
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
            Err(event_store::EventStoreError::OutcomeUnknown(_)) => "outcome_unknown",
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

    async fn purge_idempotency_records(&self, older_than: std::time::Duration) -> Result<u64> {
        delegate!(self, s => s.purge_idempotency_records(older_than).await)
    }

    async fn ping(&self) -> Result<()> {
        delegate!(self, s => s.ping().await)
    }
}

/// What a tool does with the database it opens.
#[derive(Debug, Clone, Copy)]
enum Access {
    /// Reads only: every session is read-only.
    Inspect,
    /// Writes (events, read-model rows, keys), without migrating or background tasks.
    Write,
}

/// A connection failure, with the way out when the database itself is missing (SQLSTATE 3D000).
fn explain_postgres(error: event_store::EventStoreError, url: &str) -> anyhow::Error {
    let missing = std::error::Error::source(&error)
        .and_then(|source| source.downcast_ref::<sqlx::Error>())
        .and_then(sqlx::Error::as_database_error)
        .and_then(|db| db.code())
        .is_some_and(|code| code == "3D000");
    if !missing {
        return error.into();
    }
    let name = ServerList::parse(url, SessionAttrs::ReadWrite)
        .ok()
        .and_then(|list| {
            list.options()
                .next()
                .and_then(|options| options.get_database().map(str::to_owned))
        })
        .unwrap_or_else(|| "orders".to_owned());
    anyhow::anyhow!(
        "the database {name:?} does not exist on {}; create it with `createdb {name}` (or `psql -c 'CREATE DATABASE \"{name}\"'`), then start the service or run `orders migrate`",
        common::config::redact_password(url)
    )
}
