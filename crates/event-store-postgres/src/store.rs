//! [`PostgresEventStore`]: the [`EventStore`] implementation.

use std::sync::Arc;
use std::time::Duration;

use event_store::{
    AppendRequest, AppendResult, EventStore, EventStoreError, Feed, FeedBacklog, FeedEvent,
    FeedWakeups, IdempotencyRecord, LoadRequest, RecordedEvent, Result, Snapshot, StreamLoad,
};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgPool, Row};
use uuid::Uuid;

use crate::connections::{CommandConnections, release_after};
use crate::durable::DurableHead;
use crate::errors::unavailable;
use crate::feed::SharedWakeups;
use crate::group_commit::{GroupCommit, GroupCommitOptions};
use crate::group_load::GroupLoad;
use crate::rows::{EVENT_COLUMNS, FEED_COLUMNS, feed_event, recorded_event, signed, unsigned};
use crate::sequencer::Sequencer;
use crate::servers::{ServerList, Servers, SessionAttrs, Watcher};
use crate::{MIGRATOR, append, load};

/// How long [`EventStore::global_position`] waits for the sequencer before giving up.
const POSITION_TIMEOUT: Duration = Duration::from_secs(10);

/// Appends of at least this many events go out on their own: their statement and commit are
/// already shared by many rows, and batching them would only make them wait for each other
/// (measured with store-bench's 100-event appends).
const GROUP_COMMIT_BELOW_EVENTS: usize = 16;

/// The feed's rows after position `$1` up to the durable head `$3`, at most `$2`: positions first, then each event by its
/// primary key, a nested loop whatever the statistics say (`OFFSET 0` keeps the planner from
/// flattening the lateral subquery into a join it might run as a scan).
pub(crate) fn feed_sql() -> String {
    format!(
        "SELECT {FEED_COLUMNS} FROM (
             SELECT position, seq FROM event_positions
             WHERE position > $1 AND position <= $3 ORDER BY position LIMIT $2
         ) AS feed CROSS JOIN LATERAL (
             SELECT * FROM events WHERE events.seq = feed.seq OFFSET 0
         ) AS e
         ORDER BY feed.position"
    )
}

/// Stream `$1`'s events from version `$2` on, by the stream's `(aggregate_id, version)` index.
pub(crate) fn events_from_version_sql() -> String {
    format!(
        "SELECT {EVENT_COLUMNS} FROM events e
         WHERE e.aggregate_id = $1 AND e.version >= $2 ORDER BY e.version"
    )
}

/// The span of record ages one purge statement deletes.
const PURGE_SLICE: Duration = Duration::from_secs(10);

/// Deletes the idempotency records stored in the `$2` microseconds after the oldest one, and
/// more than `$1` microseconds ago. Both bounds are a range on the `created_at` index, whose
/// minimum is its first entry, so the plan is an index scan whatever the statistics (an
/// `ORDER BY created_at LIMIT n` would become a scan and sort while the planner guesses).
pub(crate) const PURGE_IDEMPOTENCY_SQL: &str = "WITH oldest AS (
         SELECT MIN(created_at) AS at FROM idempotency_keys
     )
     DELETE FROM idempotency_keys
     WHERE created_at >= (SELECT at FROM oldest)
       AND created_at < LEAST((SELECT at FROM oldest) + $2::int8 * interval '1 microsecond',
                              now() - $1::int8 * interval '1 microsecond')";

/// The feed position of stream `$1`'s event at version `$2`: no row when there is no such event,
/// a NULL position while the sequencer has not numbered it yet.
pub(crate) const POSITION_OF_SQL: &str =
    "SELECT (SELECT p.position FROM event_positions p WHERE p.seq = e.seq)
     FROM events e WHERE e.aggregate_id = $1 AND e.version = $2";

/// Connection settings.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Upper bound on the command path's connections (loads and appends). The background pool
    /// (sequencer, feed listeners, read models, tools) gets a quarter as many more, at least 8:
    /// see [`background_connections`](Self::background_connections).
    pub max_connections: u32,
    /// How long to wait for a free connection before failing with `Unavailable`.
    pub acquire_timeout: Duration,
    /// Batch concurrent appends into shared statements and commits, and concurrent loads into
    /// shared statements; `None` runs each on its own. See [`GroupCommitOptions`].
    pub group_commit: Option<GroupCommitOptions>,
    /// Run this process's sequencer. Off only for tools and tests that must not write positions
    /// (another process's sequencer still numbers this one's appends).
    pub sequencer: bool,
}

impl PostgresOptions {
    /// Size of the background pool: a quarter of `max_connections`, at least 8 (each feed
    /// listener holds one for good, the sequencer and every projection batch one at a time).
    pub fn background_connections(&self) -> u32 {
        (self.max_connections / 4).max(8)
    }
}

impl Default for PostgresOptions {
    fn default() -> Self {
        // 2 × cores is PostgreSQL's own rule of thumb for busy connections; 16 leaves headroom.
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            group_commit: Some(GroupCommitOptions::default()),
            sequencer: true,
        }
    }
}

/// The PostgreSQL event store. Clones share the pools, the group-commit writer and the sequencer.
#[derive(Debug, Clone)]
pub struct PostgresEventStore {
    pool: PgPool,
    commands: CommandConnections,
    group_commit: Option<GroupCommit>,
    group_load: Option<GroupLoad>,
    sequencer: Option<Arc<Sequencer>>,
    wakeups: Arc<SharedWakeups>,
    servers: Arc<Servers>,
    /// Moves every connection to the new primary after a failover (several servers only).
    _watcher: Option<Arc<Watcher>>,
    durable: Arc<DurableHead>,
}

impl PostgresEventStore {
    /// The feed's rows after `after` up to the durable head ([`feed_sql`]).
    async fn feed_rows(&self, after: u64, limit: usize) -> Result<Vec<sqlx::postgres::PgRow>> {
        let wanted = after.saturating_add(u64::try_from(limit).unwrap_or(u64::MAX));
        let durable = self.durable.at_least(wanted, &self.pool).await?;
        if durable <= after {
            return Ok(Vec::new());
        }
        sqlx::query(AssertSqlSafe(feed_sql()))
            .bind(signed(after)?)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(signed(durable)?)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)
    }

    /// Connects to `url` (one server, or several the way libpq writes them:
    /// `postgres://h1:5432,h2:5433/db?target_session_attrs=read-write`, where `read-write` is
    /// the default) and starts the sequencer and group-commit writer on the current runtime.
    /// Does not migrate: call [`Self::migrate`].
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self> {
        let servers = ServerList::parse(url, SessionAttrs::ReadWrite).map_err(unavailable)?;
        Self::connect_servers(servers, options).await
    }

    /// Like [`Self::connect`], with parsed connection options of one server.
    pub async fn connect_with(connect: PgConnectOptions, options: PostgresOptions) -> Result<Self> {
        Self::connect_servers(
            ServerList::single(connect, SessionAttrs::ReadWrite),
            options,
        )
        .await
    }

    /// Like [`Self::connect`], with a parsed server list. Fails when no server of the list has
    /// the role it asks for.
    pub async fn connect_servers(list: ServerList, options: PostgresOptions) -> Result<Self> {
        let servers = Servers::new(list.map_options(|o| {
            o.options([
                crate::connections::JIT_OFF,
                crate::connections::NO_STATEMENT_TIMEOUT,
            ])
        }));
        // Find the server to use now: a clear error at start-up when none fits.
        let first = servers.connect().await.map_err(unavailable)?;
        drop(first);
        let checker = Arc::downgrade(&servers);
        let pool = PgPoolOptions::new()
            .max_connections(options.background_connections())
            .acquire_timeout(options.acquire_timeout)
            // The server is asked when a connection is given back anyway; asking again when it
            // is taken only adds a round trip.
            .test_before_acquire(false)
            // Every new connection checks its server's role once; a misfit is refused (the pool
            // tries again) and the watcher looks for the server that fits.
            .after_connect(move |connection, _| {
                let servers = checker.upgrade();
                Box::pin(async move {
                    let Some(servers) = servers else {
                        return Ok(());
                    };
                    servers
                        .check(connection)
                        .await
                        .inspect_err(|_| servers.suspect())
                })
            })
            .connect_lazy_with(servers.current_options());
        servers.follow_with(&pool);
        let commands = CommandConnections::new(
            servers.clone(),
            options.max_connections as usize,
            options.acquire_timeout,
        );
        Ok(Self::assemble(pool, commands, servers, &options))
    }

    /// Wraps an existing pool (the command path gets connections of its own with the pool's
    /// connect options) and starts the sequencer and writer with the default options.
    pub fn from_pool(pool: PgPool) -> Self {
        let options = PostgresOptions::default();
        let servers = Servers::new(ServerList::single(
            pool.connect_options().as_ref().clone(),
            SessionAttrs::ReadWrite,
        ));
        let commands = CommandConnections::new(
            servers.clone(),
            options.max_connections as usize,
            options.acquire_timeout,
        );
        Self::assemble(pool, commands, servers, &options)
    }

    fn assemble(
        pool: PgPool,
        commands: CommandConnections,
        servers: Arc<Servers>,
        options: &PostgresOptions,
    ) -> Self {
        let sequencer = options
            .sequencer
            .then(|| Arc::new(Sequencer::spawn(pool.clone())));
        let group_commit = options
            .group_commit
            .map(|group| GroupCommit::spawn(commands.clone(), group));
        // Loads are batched whenever appends are: both are the same trade (a task hop for
        // shared statements), switched together.
        let group_load = options
            .group_commit
            .map(|_| GroupLoad::spawn(commands.clone()));
        // One server has nowhere else to go: nothing to watch.
        let watcher =
            (servers.list().labels().count() > 1).then(|| Arc::new(servers.spawn_watcher()));
        Self {
            pool,
            commands,
            group_commit,
            group_load,
            sequencer,
            wakeups: Arc::default(),
            servers,
            _watcher: watcher,
            durable: Arc::default(),
        }
    }

    /// The servers this store may use and the one it uses now.
    pub fn servers(&self) -> &Servers {
        &self.servers
    }

    /// Applies the embedded migrations that are not applied yet.
    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(EventStoreError::unavailable)
    }

    /// The versions of this build's migrations the database has not applied (all of them on a
    /// database that was never migrated). Reads only: tools use it to refuse a database that
    /// `migrate` has not brought up to date instead of migrating it themselves.
    pub async fn pending_migrations(&self) -> Result<Vec<i64>> {
        let applied: Vec<i64> =
            match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
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

    /// The background connection pool, for read models and tools that share the database.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The command path's connections (in use, idle).
    pub fn command_connections(&self) -> (usize, usize) {
        self.commands.usage()
    }

    /// Closes the command path's idle connections, e.g. before a benchmark's baseline needs the
    /// server's connection slots; they are opened again on demand.
    pub fn close_idle_command_connections(&self) {
        self.commands.close_idle();
    }

    async fn append_alone(&self, request: &AppendRequest) -> Result<AppendResult> {
        let mut connection = self.commands.get().await?;
        let result = append::append(&mut connection, request).await;
        if matches!(
            result,
            Err(EventStoreError::Unavailable(_) | EventStoreError::OutcomeUnknown(_))
        ) {
            drop(deadpool::managed::Object::take(connection));
        }
        result
    }

    /// [`EventStore::load_stream`] with every position the store has.
    async fn load_stream_unchecked(&self, request: LoadRequest) -> Result<StreamLoad> {
        if let Some(group) = &self.group_load {
            return group.load(request).await;
        }
        let mut connection = self.commands.get().await?;
        match load::load_streams(&mut connection, &[&request]).await {
            Ok(mut answers) => {
                release_after(connection, None);
                answers.pop().unwrap_or_else(|| {
                    Err(EventStoreError::Corrupt("the load returned nothing".into()))
                })
            }
            Err(error) => {
                release_after(connection, Some(&error));
                Err(unavailable(error))
            }
        }
    }

    async fn wait_for_sequencer(&self) {
        match &self.sequencer {
            Some(sequencer) => sequencer.next_round().await,
            None => tokio::time::sleep(crate::sequencer::POLL_INTERVAL).await,
        }
    }
}

/// Leaves out the positions past `durable` (see `durable.rs`): the events are committed, their
/// numbering is not yet known to be on the standbys.
fn hide_undurable(events: &mut [RecordedEvent], durable: u64) {
    for event in events {
        if event.position.is_some_and(|position| position > durable) {
            event.position = None;
        }
    }
}

impl EventStore for PostgresEventStore {
    #[tracing::instrument(level = "debug", skip_all, fields(aggregate_id = %request.aggregate_id, events = request.events.len(), expected = %request.expected), err(level = "debug", Display))]
    async fn append(&self, request: AppendRequest) -> Result<AppendResult> {
        request.validate()?;
        let result = match &self.group_commit {
            Some(group)
                if request.events.len() < GROUP_COMMIT_BELOW_EVENTS
                    && !append::takes_turns(request.expected) =>
            {
                group.append(request).await
            }
            _ => self.append_alone(&request).await,
        };
        if matches!(&result, Ok(r) if !r.deduplicated)
            && let Some(sequencer) = &self.sequencer
        {
            sequencer.wake();
        }
        result
    }

    #[tracing::instrument(level = "debug", skip_all, fields(aggregate_id = %request.aggregate_id), err(level = "debug", Display))]
    async fn load_stream(&self, request: LoadRequest) -> Result<StreamLoad> {
        // With synchronous standbys, positions past the durable head known so far are left out
        // (no query on the command path: such a position is shown a moment later, as one the
        // sequencer has not numbered yet).
        let durable = self.durable.known_if_gated();
        self.load_stream_unchecked(request).await.map(|mut load| {
            hide_undurable(&mut load.events, durable);
            load
        })
    }

    #[tracing::instrument(level = "debug", skip(self), err(level = "debug", Display))]
    async fn load_events_from_version(
        &self,
        aggregate_id: Uuid,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>> {
        let rows = sqlx::query(AssertSqlSafe(events_from_version_sql()))
            .bind(aggregate_id)
            .bind(signed(from_version)?)
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        let mut events = rows
            .iter()
            .map(recorded_event)
            .collect::<Result<Vec<_>>>()?;
        // With synchronous standbys, a position past the durable head is left out (one more
        // query only when the head known so far does not cover these events).
        let highest = events.iter().filter_map(|e| e.position).max().unwrap_or(0);
        if highest > self.durable.known_if_gated() {
            let durable = self.durable.refresh(&self.pool).await?;
            hide_undurable(&mut events, durable);
        }
        Ok(events)
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
    async fn global_position(&self, aggregate_id: Uuid, version: u64) -> Result<u64> {
        let wait = async {
            loop {
                match self.position_of(aggregate_id, version).await? {
                    Some(position) => return Ok(position),
                    None => self.wait_for_sequencer().await,
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

    #[tracing::instrument(level = "debug", skip(self), err(level = "debug", Display))]
    async fn position_of(&self, aggregate_id: Uuid, version: u64) -> Result<Option<u64>> {
        let found: Option<Option<i64>> = sqlx::query_scalar(POSITION_OF_SQL)
            .bind(aggregate_id)
            .bind(signed(version)?)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        match found {
            None => Err(EventStoreError::EventNotFound {
                aggregate_id,
                version,
            }),
            Some(None) => Ok(None),
            Some(Some(position)) => {
                // A position is shown only once it is durable (see `durable.rs`).
                let position = unsigned(position, "position")?;
                let durable = self.durable.at_least(position, &self.pool).await?;
                Ok((position <= durable).then_some(position))
            }
        }
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

    #[tracing::instrument(level = "debug", skip(self), err(level = "debug", Display))]
    async fn purge_idempotency_records(&self, older_than: std::time::Duration) -> Result<u64> {
        let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        let mut purged = 0;
        // Slice by slice from the oldest: each statement deletes at least the oldest record,
        // until the oldest is younger than the age.
        loop {
            let deleted = sqlx::query(PURGE_IDEMPOTENCY_SQL)
                .bind(micros(older_than))
                .bind(micros(PURGE_SLICE))
                .execute(&self.pool)
                .await
                .map_err(unavailable)?
                .rows_affected();
            if deleted == 0 {
                return Ok(purged);
            }
            purged += deleted;
        }
    }

    /// Asks the server in use whether it still has the role the URL asks for (by default:
    /// accepts writes), not merely whether it answers.
    async fn ping(&self) -> Result<()> {
        let mut connection = self.pool.acquire().await.map_err(unavailable)?;
        if self.servers.list().attrs() == SessionAttrs::Any {
            sqlx::query("SELECT 1")
                .execute(&mut *connection)
                .await
                .map_err(unavailable)?;
            return Ok(());
        }
        if let Err(error) = self.servers.check(&mut connection).await {
            self.servers.suspect();
            connection.close_on_drop();
            return Err(unavailable(error));
        }
        Ok(())
    }
}

impl Feed for PostgresEventStore {
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

    /// The durable head: the feed shows nothing past it (see `durable.rs`).
    async fn head(&self) -> Result<u64> {
        self.durable.refresh(&self.pool).await
    }

    async fn committed_at(&self, position: u64) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        crate::feed::committed_at(&self.pool, position).await
    }

    async fn backlog(&self) -> Result<FeedBacklog> {
        crate::feed::backlog(&self.pool).await
    }

    fn wakeups(&self) -> FeedWakeups {
        self.wakeups.subscribe(&self.pool)
    }
}
