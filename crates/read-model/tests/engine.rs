//! The engine's contract, run once per backend (like the event store's conformance suite): a
//! small counting projection on a real PostgreSQL database and a real SQLite file.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use event_store::{EventStore, ExpectedVersion, NewEvent, RecordedEvent};
use read_model::{
    Applied, Dialect, Engine, Error, Fence, LeaseOptions, OnError, PgDialect, Projection,
    RetryOutcome, RunnerOptions, SqliteDialect, position_to_sql, walk,
};
use serde_json::json;
use uuid::Uuid;

/// Counts each stream's events and remembers its last version; an event that does not follow
/// the last one (applied twice, or out of order) fails, and so does a `Poison` event while
/// `poison_fails` is set.
#[derive(Clone)]
struct Counting {
    name: String,
    poison_fails: Arc<AtomicBool>,
}

impl Counting {
    fn new() -> Self {
        Self {
            name: format!("p{}", &Uuid::now_v7().simple().to_string()[20..]),
            poison_fails: Arc::new(AtomicBool::new(true)),
        }
    }

    fn table(&self, generation: i32) -> String {
        format!("{}_g{generation}", self.name)
    }

    fn fold(
        &self,
        rows: &mut HashMap<String, (i64, i64)>,
        changed: &mut Vec<String>,
        event: &RecordedEvent,
    ) -> Result<(), String> {
        if event.event_type == "Poison" && self.poison_fails.load(Ordering::SeqCst) {
            return Err("poison".into());
        }
        let stream = event.aggregate_id.to_string();
        let (count, last) = rows.get(&stream).copied().unwrap_or((0, 0));
        let version = i64::try_from(event.version).unwrap();
        if version != last + 1 {
            return Err(format!("version {version} after {last}"));
        }
        rows.insert(stream.clone(), (count + 1, version));
        changed.push(stream);
        Ok(())
    }
}

/// The same SQL on both backends; only the transaction type differs.
macro_rules! counting_on {
    ($dialect:ty, $pool:ident) => {
        impl Projection<$dialect> for Counting {
            fn name(&self) -> &str {
                &self.name
            }

            async fn create_tables(&self, db: &$dialect, generation: i32) -> read_model::Result<()> {
                let sql = format!(
                    "CREATE TABLE IF NOT EXISTS {} (stream TEXT PRIMARY KEY, events BIGINT NOT NULL, last_version BIGINT NOT NULL)",
                    self.table(generation)
                );
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(db.$pool()).await?;
                Ok(())
            }

            async fn drop_tables(&self, db: &$dialect, generation: i32) -> read_model::Result<()> {
                let sql = format!("DROP TABLE IF EXISTS {}", self.table(generation));
                sqlx::query(sqlx::AssertSqlSafe(sql)).execute(db.$pool()).await?;
                Ok(())
            }

            async fn apply(
                &self,
                tx: &mut <$dialect as Dialect>::Tx,
                generation: i32,
                after: u64,
                events: &[RecordedEvent],
                on_error: OnError,
            ) -> read_model::Result<Applied> {
                let table = self.table(generation);
                let mut rows = HashMap::new();
                for event in events {
                    let stream = event.aggregate_id.to_string();
                    let sql = format!("SELECT events, last_version FROM {table} WHERE stream = $1");
                    let row: Option<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                        .bind(&stream)
                        .fetch_optional(&mut **tx)
                        .await?;
                    if let Some(row) = row {
                        rows.insert(stream, row);
                    }
                }
                let mut changed = Vec::new();
                let applied = walk(events, after, on_error, |e| self.fold(&mut rows, &mut changed, e));
                changed.sort();
                changed.dedup();
                for stream in changed {
                    let (count, last) = rows[&stream];
                    let sql = format!(
                        "INSERT INTO {table} (stream, events, last_version) VALUES ($1, $2, $3)
                         ON CONFLICT (stream) DO UPDATE SET events = EXCLUDED.events, last_version = EXCLUDED.last_version"
                    );
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(&stream)
                        .bind(count)
                        .bind(last)
                        .execute(&mut **tx)
                        .await?;
                }
                Ok(applied)
            }
        }
    };
}

counting_on!(PgDialect, pool);
counting_on!(SqliteDialect, writer);

/// One backend: its store (the feed) and the engine's storage on the same database.
struct Backend<S, D> {
    store: S,
    dialect: D,
    /// The SQLite file's directory, removed with the backend.
    _keep: Option<tempfile::TempDir>,
}

async fn postgres() -> Backend<event_store_postgres::PostgresEventStore, PgDialect> {
    let url = test_support::postgres::fresh_database_url().await;
    let store = event_store_postgres::PostgresEventStore::connect(&url, Default::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let dialect = PgDialect::new(store.pool().clone());
    Backend {
        store,
        dialect,
        _keep: None,
    }
}

async fn sqlite() -> Backend<event_store_sqlite::SqliteEventStore, SqliteDialect> {
    let dir = tempfile::tempdir().unwrap();
    let store = event_store_sqlite::SqliteEventStore::open(
        dir.path().join("orders.db"),
        Default::default(),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let dialect = SqliteDialect::new(store.writer().clone(), store.reader().clone());
    Backend {
        store,
        dialect,
        _keep: Some(dir),
    }
}

fn event(kind: &str) -> NewEvent {
    NewEvent::new("Test", kind, 1, json!({}))
}

/// Appends `kinds` as one new stream; returns it and the position of its last event.
async fn stream<S: EventStore>(store: &S, kinds: &[&str]) -> (Uuid, u64) {
    let id = Uuid::now_v7();
    let events = kinds.iter().map(|k| event(k)).collect();
    store
        .append_events(id, ExpectedVersion::NoStream, events)
        .await
        .unwrap();
    let last = store.global_position(id, kinds.len() as u64).await.unwrap();
    (id, last)
}

impl<S, D> Backend<S, D>
where
    S: EventStore + Clone + 'static,
    D: Dialect,
    Counting: Projection<D>,
{
    fn engine(&self, projection: &Counting) -> Engine<S, D, Counting> {
        Engine::new(self.store.clone(), self.dialect.clone(), projection.clone())
    }

    /// (events, last version) of stream `id` in the projection's table of `generation`.
    async fn count(&self, projection: &Counting, generation: i32, id: Uuid) -> Option<(i64, i64)> {
        let sql = format!(
            "SELECT events, last_version FROM {} WHERE stream = $1",
            projection.table(generation)
        );
        let query = sqlx::AssertSqlSafe(sql);
        let any: &dyn std::any::Any = &self.dialect;
        if let Some(pg) = any.downcast_ref::<PgDialect>() {
            sqlx::query_as(query)
                .bind(id.to_string())
                .fetch_optional(pg.pool())
                .await
                .unwrap()
        } else if let Some(sqlite) = any.downcast_ref::<SqliteDialect>() {
            sqlx::query_as(query)
                .bind(id.to_string())
                .fetch_optional(sqlite.reader())
                .await
                .unwrap()
        } else {
            panic!("unknown dialect")
        }
    }

    async fn catch_up(&self, engine: &Engine<S, D, Counting>, on_error: OnError) -> Applied {
        let mut total = Applied::default();
        loop {
            let batch = engine.run_batch(2, on_error).await.unwrap();
            total.events += batch.events;
            total.last_position = batch.last_position;
            total.parked.extend(batch.parked);
            if batch.stopped.is_some() || batch.events == 0 {
                total.stopped = batch.stopped;
                return total;
            }
        }
    }
}

async fn batches_apply_events_and_move_the_checkpoint<S, D>(b: Backend<S, D>)
where
    S: EventStore + Clone + 'static,
    D: Dialect,
    Counting: Projection<D>,
{
    let projection = Counting::new();
    let engine = b.engine(&projection);
    let (a, _) = stream(&b.store, &["A", "A", "A"]).await;
    let (c, last) = stream(&b.store, &["A", "A"]).await;
    let registered = engine.register().await.unwrap();
    assert_eq!((registered.generation, registered.position), (1, 0));
    let applied = b.catch_up(&engine, OnError::Park).await;
    assert_eq!((applied.events, applied.last_position), (5, last));
    assert!(applied.parked.is_empty());
    assert_eq!(engine.checkpoint().await.unwrap().unwrap().position, last);
    assert_eq!(b.count(&projection, 1, a).await, Some((3, 3)));
    assert_eq!(b.count(&projection, 1, c).await, Some((2, 2)));
    let again = engine.run_batch(10, OnError::Park).await.unwrap();
    assert_eq!(
        (again.events, again.last_position),
        (0, last),
        "nothing new"
    );
}

async fn park_records_the_failure_and_goes_on<S, D>(b: Backend<S, D>)
where
    S: EventStore + Clone + 'static,
    D: Dialect,
    Counting: Projection<D>,
{
    let projection = Counting::new();
    let engine = b.engine(&projection);
    engine.register().await.unwrap();
    let (bad, poison_at) = stream(&b.store, &["Poison"]).await;
    let (good, last) = stream(&b.store, &["A"]).await;
    let applied = b.catch_up(&engine, OnError::Park).await;
    assert_eq!(applied.last_position, last);
    assert_eq!(b.count(&projection, 1, good).await, Some((1, 1)));
    assert_eq!(b.count(&projection, 1, bad).await, None);
    let parked = engine.parked().await.unwrap();
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0].position, poison_at);
    assert_eq!(parked[0].error, "poison");
    assert_eq!(parked[0].projection, projection.name);
    let event_id = b.store.read_all(poison_at - 1, 1).await.unwrap()[0].event_id;
    assert_eq!(parked[0].event_id, event_id);
}

async fn stop_halts_before_the_failure<S, D>(b: Backend<S, D>)
where
    S: EventStore + Clone + 'static,
    D: Dialect,
    Counting: Projection<D>,
{
    let projection = Counting::new();
    let engine = b.engine(&projection);
    engine.register().await.unwrap();
    let (_, before) = stream(&b.store, &["A"]).await;
    let (_, poison_at) = stream(&b.store, &["Poison"]).await;
    let (after, _) = stream(&b.store, &["A"]).await;
    let applied = b.catch_up(&engine, OnError::Stop).await;
    assert_eq!(applied.stopped.map(|s| s.position), Some(poison_at));
    assert_eq!(engine.checkpoint().await.unwrap().unwrap().position, before);
    assert_eq!(
        b.count(&projection, 1, after).await,
        None,
        "nothing after the stop"
    );
    assert!(engine.parked().await.unwrap().is_empty());
}

async fn parked_events_can_be_retried_and_skipped<S, D>(b: Backend<S, D>)
where
    S: EventStore + Clone + 'static,
    D: Dialect,
    Counting: Projection<D>,
{
    let projection = Counting::new();
    let engine = b.engine(&projection);
    engine.register().await.unwrap();
    let (first, first_at) = stream(&b.store, &["Poison"]).await;
    let (_, second_at) = stream(&b.store, &["Poison"]).await;
    b.catch_up(&engine, OnError::Park).await;
    assert_eq!(engine.parked().await.unwrap().len(), 2);

    let outcome = engine.retry_parked(first_at).await.unwrap();
    assert_eq!(outcome, RetryOutcome::StillFails("poison".into()));
    assert_eq!(
        engine.parked().await.unwrap().len(),
        2,
        "a failed retry stays parked"
    );
    assert_eq!(b.count(&projection, 1, first).await, None);

    projection.poison_fails.store(false, Ordering::SeqCst); // "the fix"
    assert_eq!(
        engine.retry_parked(first_at).await.unwrap(),
        RetryOutcome::Applied
    );
    assert_eq!(b.count(&projection, 1, first).await, Some((1, 1)));
    let left: Vec<u64> = engine
        .parked()
        .await
        .unwrap()
        .iter()
        .map(|p| p.position)
        .collect();
    assert_eq!(left, [second_at]);

    engine.skip_parked(second_at).await.unwrap();
    assert!(engine.parked().await.unwrap().is_empty());
    for position in [first_at, second_at] {
        assert!(matches!(
            engine.retry_parked(position).await,
            Err(Error::NotParked { .. })
        ));
        assert!(matches!(
            engine.skip_parked(position).await,
            Err(Error::NotParked { .. })
        ));
    }
}

async fn a_rebuild_equals_the_live_model_and_switches<S, D>(b: Backend<S, D>)
where
    S: EventStore + Clone + 'static,
    D: Dialect,
    Counting: Projection<D>,
{
    let projection = Counting::new();
    let engine = b.engine(&projection);
    engine.register().await.unwrap();
    let mut streams = Vec::new();
    for n in 1..=4 {
        streams.push(stream(&b.store, &vec!["A"; n]).await.0);
    }
    b.catch_up(&engine, OnError::Park).await;
    let progress = std::sync::Mutex::new(Vec::new());
    let report = engine
        .rebuild(|done, head| progress.lock().unwrap().push((done, head)))
        .await
        .unwrap();
    let head = b.store.head().await.unwrap();
    assert_eq!(report.generation, 2);
    assert_eq!(report.position, head);
    assert_eq!(report.events, head);
    assert_eq!(progress.lock().unwrap().last().copied(), Some((head, head)));
    let checkpoint = engine.checkpoint().await.unwrap().unwrap();
    assert_eq!((checkpoint.generation, checkpoint.position), (2, head));
    for (n, id) in streams.iter().enumerate() {
        let n = n as i64 + 1;
        assert_eq!(b.count(&projection, 2, *id).await, Some((n, n)));
    }
}

async fn concurrent_engines_never_apply_an_event_twice<S, D>(b: Backend<S, D>)
where
    S: EventStore + Clone + 'static,
    D: Dialect,
    Counting: Projection<D>,
{
    let projection = Counting::new();
    let engines = [b.engine(&projection), b.engine(&projection)];
    engines[0].register().await.unwrap();
    let writer = {
        let store = b.store.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..20 {
                ids.push(stream(&store, &["A", "A", "A"]).await.0);
            }
            ids
        })
    };
    let runners = engines.clone().map(|engine| {
        tokio::spawn(async move {
            for _ in 0..400 {
                engine.run_batch(4, OnError::Park).await.unwrap();
            }
        })
    });
    let ids = writer.await.unwrap();
    for runner in runners {
        runner.await.unwrap();
    }
    b.catch_up(&engines[0], OnError::Park).await;
    assert!(
        engines[0].parked().await.unwrap().is_empty(),
        "an event was applied twice"
    );
    for id in ids {
        assert_eq!(b.count(&projection, 1, id).await, Some((3, 3)));
    }
}

async fn a_running_projection_catches_up_and_can_be_waited_for<S, D>(b: Backend<S, D>)
where
    S: EventStore + Clone + 'static,
    D: Dialect,
    Counting: Projection<D>,
{
    let projection = Counting::new();
    let (shutdown, stop) = tokio::sync::watch::channel(false);
    let running = b
        .engine(&projection)
        .start(RunnerOptions::default(), stop)
        .await
        .unwrap();
    assert_eq!(running.name(), projection.name);
    let (id, last) = stream(&b.store, &["A", "A"]).await;
    assert!(running.wait_for(last, Duration::from_secs(10)).await);
    assert!(running.position() >= last);
    assert_eq!(b.count(&projection, 1, id).await, Some((2, 2)));
    assert!(
        !running
            .wait_for(last + 1_000, Duration::from_millis(300))
            .await,
        "a position not yet written is not waited for forever"
    );
    shutdown.send(true).unwrap();
}

async fn a_negative_checkpoint_is_corrupt_not_zero<S, D>(b: Backend<S, D>)
where
    S: EventStore + Clone + 'static,
    D: Dialect,
    Counting: Projection<D>,
{
    let projection = Counting::new();
    let engine = b.engine(&projection);
    engine.register().await.unwrap();
    stream(&b.store, &["A"]).await;
    let mut tx = b.dialect.begin().await.unwrap();
    let checkpoint = D::lock(&mut tx, &projection.name).await.unwrap();
    assert!(position_to_sql(checkpoint.position).is_ok());
    drop(tx);
    corrupt_checkpoint(&b, &projection.name).await;
    assert!(matches!(
        engine.run_batch(10, OnError::Park).await,
        Err(Error::Corrupt(_))
    ));
    assert!(matches!(engine.checkpoint().await, Err(Error::Corrupt(_))));
}

async fn corrupt_checkpoint<S, D>(b: &Backend<S, D>, name: &str)
where
    D: Dialect,
{
    let any: &dyn std::any::Any = &b.dialect;
    let sql = "UPDATE projections SET position = -1 WHERE name = $1";
    if let Some(pg) = any.downcast_ref::<PgDialect>() {
        sqlx::query(sql)
            .bind(name)
            .execute(pg.pool())
            .await
            .unwrap();
    } else if let Some(sqlite) = any.downcast_ref::<SqliteDialect>() {
        sqlx::query(sql)
            .bind(name)
            .execute(sqlite.writer())
            .await
            .unwrap();
    } else {
        panic!("unknown dialect");
    }
}

async fn a_stale_lease_holder_cannot_write<S, D>(b: Backend<S, D>)
where
    S: EventStore + Clone + 'static,
    D: Dialect,
    Counting: Projection<D>,
{
    let projection = Counting::new();
    let engine = b.engine(&projection);
    engine.register().await.unwrap();
    let ttl = Duration::from_millis(1500);
    let (early, early_at) = stream(&b.store, &["A"]).await;
    let first = b
        .dialect
        .acquire(&projection.name, "first", ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        b.dialect
            .acquire(&projection.name, "second", ttl)
            .await
            .unwrap(),
        None,
        "a running lease is not taken"
    );
    assert_eq!(
        b.dialect
            .acquire(&projection.name, "first", ttl)
            .await
            .unwrap(),
        Some(first),
        "its holder keeps its epoch"
    );
    let fence = |owner: &str, epoch| Fence {
        owner: owner.into(),
        epoch,
        ttl,
    };
    engine
        .run_fenced_batch(10, OnError::Park, &fence("first", first))
        .await
        .unwrap();
    assert_eq!(b.count(&projection, 1, early).await, Some((1, 1)));

    tokio::time::sleep(ttl * 2).await; // "first" freezes past its lease
    let second = b
        .dialect
        .acquire(&projection.name, "second", ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(second > first, "a new holder gets a new epoch");
    let (late, late_at) = stream(&b.store, &["A"]).await;
    let stale = engine
        .run_fenced_batch(10, OnError::Park, &fence("first", first))
        .await;
    assert!(matches!(stale, Err(Error::LeaseLost(_))), "{stale:?}");
    let checkpoint = engine.checkpoint().await.unwrap().unwrap();
    assert_eq!(
        checkpoint.position, early_at,
        "the stale holder wrote no checkpoint"
    );
    assert_eq!(b.count(&projection, 1, late).await, None, "nor any row");
    assert!(
        engine
            .run_fenced_batch(10, OnError::Park, &fence("second", first))
            .await
            .is_err(),
        "the right owner at a stale epoch is fenced too"
    );
    engine
        .run_fenced_batch(10, OnError::Park, &fence("second", second))
        .await
        .unwrap();
    assert_eq!(b.count(&projection, 1, late).await, Some((1, 1)));
    let checkpoint = engine.checkpoint().await.unwrap().unwrap();
    assert_eq!(checkpoint.position, late_at);
    let holder = checkpoint.holder.unwrap();
    assert_eq!((holder.owner.as_str(), holder.epoch), ("second", second));
    assert!(holder.expires_in.is_some(), "the batch renewed the lease");
}

async fn a_standby_follows_and_takes_over_from_a_frozen_holder<S, D>(b: Backend<S, D>)
where
    S: EventStore + Clone + 'static,
    D: Dialect,
    Counting: Projection<D>,
{
    let projection = Counting::new();
    let engine = b.engine(&projection);
    engine.register().await.unwrap();
    // A holder that took the lease and then froze: it never renews.
    let ttl = Duration::from_millis(800);
    let frozen = b
        .dialect
        .acquire(&projection.name, "frozen", ttl)
        .await
        .unwrap()
        .unwrap();
    let (shutdown, stop) = tokio::sync::watch::channel(false);
    let lease = LeaseOptions {
        owner: "standby".into(),
        ttl,
        standby_interval: Duration::from_millis(100),
    };
    let options = RunnerOptions {
        lease: Some(lease),
        ..RunnerOptions::default()
    };
    let started = std::time::Instant::now();
    let running = b.engine(&projection).start(options, stop).await.unwrap();
    let (id, last) = stream(&b.store, &["A", "A"]).await;
    assert!(
        running.wait_for(last, Duration::from_secs(10)).await,
        "no takeover"
    );
    let took = started.elapsed();
    println!("takeover after {took:?} (lease {ttl:?})");
    assert!(
        took >= ttl / 2,
        "the standby waited for the lease to run out: {took:?}"
    );
    assert_eq!(b.count(&projection, 1, id).await, Some((2, 2)));
    let holder = engine.checkpoint().await.unwrap().unwrap().holder.unwrap();
    assert_eq!(holder.owner, "standby");
    assert!(holder.epoch > frozen);

    // At shutdown the holder hands over at once.
    shutdown.send(true).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let holder = engine.checkpoint().await.unwrap().unwrap().holder.unwrap();
        if holder.expires_in.is_none() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lease was not released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let next = b
        .dialect
        .acquire(&projection.name, "next", ttl)
        .await
        .unwrap();
    assert!(next.is_some(), "a released lease is free at once");
}

async fn a_standby_answers_waits_from_the_holders_checkpoint<S, D>(b: Backend<S, D>)
where
    S: EventStore + Clone + 'static,
    D: Dialect,
    Counting: Projection<D>,
{
    let projection = Counting::new();
    let (shutdown, stop) = tokio::sync::watch::channel(false);
    let options = |owner: &str| RunnerOptions {
        lease: Some(LeaseOptions::new(owner)),
        ..RunnerOptions::default()
    };
    let holder = b
        .engine(&projection)
        .start(options("holder"), stop.clone())
        .await
        .unwrap();
    let (_, first) = stream(&b.store, &["A"]).await;
    assert!(holder.wait_for(first, Duration::from_secs(10)).await);
    let standby = b
        .engine(&projection)
        .start(options("standby"), stop)
        .await
        .unwrap();
    let (id, last) = stream(&b.store, &["A", "A", "A"]).await;
    assert!(standby.wait_for(last, Duration::from_secs(10)).await);
    assert_eq!(b.count(&projection, 1, id).await, Some((3, 3)));
    let held = b.engine(&projection).checkpoint().await.unwrap().unwrap();
    assert_eq!(
        held.holder.unwrap().owner,
        "holder",
        "the standby never took over"
    );
    shutdown.send(true).unwrap();
}

macro_rules! engine_tests {
    ($backend:ident: $($name:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::$backend().await).await;
                }
            )*
        }
    };
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        engine_tests!(postgres: $($name),*);
        engine_tests!(sqlite: $($name),*);
    };
}

on_both_backends!(
    batches_apply_events_and_move_the_checkpoint,
    park_records_the_failure_and_goes_on,
    stop_halts_before_the_failure,
    parked_events_can_be_retried_and_skipped,
    a_rebuild_equals_the_live_model_and_switches,
    concurrent_engines_never_apply_an_event_twice,
    a_running_projection_catches_up_and_can_be_waited_for,
    a_negative_checkpoint_is_corrupt_not_zero,
    a_stale_lease_holder_cannot_write,
    a_standby_follows_and_takes_over_from_a_frozen_holder,
    a_standby_answers_waits_from_the_holders_checkpoint,
);
