//! One case: a workload (store append or raw insert, at a batch size) run by concurrent writers.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use event_store::{EventStore, NewEvent};
use event_store_postgres::PostgresEventStore;
use serde_json::Value;
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

use crate::events::{AGGREGATE_TYPE, Batch, WriterStreams};
use crate::stats::Latency;

/// How the rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `EventStore::append_events` with an exact expected version.
    Append,
    /// A plain `INSERT` into `raw_events` (no version check, no sequencer).
    Raw,
}

/// A workload at one concurrency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Case {
    /// Append or raw insert.
    pub method: Method,
    /// Events per call.
    pub batch: usize,
    /// Concurrent writers.
    pub writers: usize,
}

impl Case {
    /// `append-1`, `raw-100`, …
    pub fn workload(&self) -> String {
        let method = match self.method {
            Method::Append => "append",
            Method::Raw => "raw",
        };
        format!("{method}-{}", self.batch)
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} × {} writers", self.workload(), self.writers)
    }
}

/// How long and how much a case may run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock length of the case, warm-up included.
    pub duration: Duration,
    /// The unmeasured start of the case.
    pub warmup: Duration,
    /// Upper bound on calls.
    pub max_ops: u64,
    /// Calls per stream before a writer starts a new one.
    pub calls_per_stream: u64,
}

/// What one run of a case measured (calls that started after the warm-up).
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case.
    pub case: Case,
    /// Measured calls.
    pub calls: u64,
    /// Events those calls wrote.
    pub events: u64,
    /// From the end of the warm-up until the last writer stopped.
    pub elapsed: Duration,
    /// Per-call latency.
    pub latency: Latency,
    /// For appends: events the sequencer had not numbered yet when the writers stopped.
    pub unsequenced_at_end: Option<i64>,
    /// What the case cost the server, measured after the sequencer caught up.
    pub cost: Cost,
}

/// Server-side work of a whole case (warm-up included), sequencing included.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cost {
    /// Calls completed, warm-up included.
    pub calls: u64,
    /// WAL written, in bytes (cluster-wide: other databases' writes count too).
    pub wal_bytes: f64,
    /// Transaction ids assigned (write transactions, cluster-wide).
    pub write_transactions: i64,
    /// How long the sequencer needed after the writers stopped to number every event.
    pub sequencer_drain: Duration,
}

impl Cost {
    /// WAL bytes per event written.
    pub fn wal_per_event(&self, batch: usize) -> f64 {
        let events = self.calls as f64 * batch as f64;
        if events == 0.0 {
            0.0
        } else {
            self.wal_bytes / events
        }
    }

    /// Write transactions per call.
    pub fn transactions_per_call(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.write_transactions as f64 / self.calls as f64
        }
    }
}

const SERVER_COUNTERS: &str = "SELECT pg_current_wal_lsn()::text, \
    pg_snapshot_xmax(pg_current_snapshot())::text::bigint";

/// (WAL position, next transaction id) of the server.
async fn server_counters(pool: &PgPool) -> anyhow::Result<(String, i64)> {
    sqlx::query_as(SERVER_COUNTERS)
        .fetch_one(pool)
        .await
        .context("cannot read the WAL position and transaction counter")
}

impl CaseResult {
    /// Events per second.
    pub fn events_per_sec(&self) -> f64 {
        per_sec(self.events, self.elapsed)
    }

    /// Calls per second.
    pub fn calls_per_sec(&self) -> f64 {
        per_sec(self.calls, self.elapsed)
    }
}

fn per_sec(count: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        0.0
    } else {
        count as f64 / elapsed.as_secs_f64()
    }
}

const RAW_INSERT_ONE: &str = "INSERT INTO raw_events \
    (event_id, aggregate_id, aggregate_type, version, event_type, schema_version, payload, metadata) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

const RAW_INSERT_MANY: &str = "INSERT INTO raw_events \
    (event_id, aggregate_id, aggregate_type, version, event_type, schema_version, payload, metadata) \
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::int8[], $5::text[], $6::int4[], \
                         $7::jsonb[], $8::jsonb[])";

/// Longest wait for the sequencer to number a case's events.
pub const SETTLE_LIMIT: Duration = Duration::from_secs(120);

struct Shared {
    store: PostgresEventStore,
    raw: PgPool,
    case: Case,
    limits: Limits,
    started_calls: AtomicU64,
    completed_calls: AtomicU64,
    measure_from: Instant,
    deadline: Instant,
}

/// What one writer measured.
struct WriterOutcome {
    latencies: Vec<Duration>,
    finished: Instant,
}

/// Runs `case` against `store`; raw inserts go through `raw`, a pool as large as the writers, so
/// the baseline never waits for a connection.
pub async fn run_case(
    store: &PostgresEventStore,
    raw: &PgPool,
    case: Case,
    limits: Limits,
) -> anyhow::Result<CaseResult> {
    let (wal_before, xid_before) = server_counters(store.pool()).await?;
    let start = Instant::now();
    let shared = Arc::new(Shared {
        store: store.clone(),
        raw: raw.clone(),
        case,
        limits,
        started_calls: AtomicU64::new(0),
        completed_calls: AtomicU64::new(0),
        measure_from: start + limits.warmup,
        deadline: start + limits.duration,
    });
    let mut writers = JoinSet::new();
    for _ in 0..case.writers {
        writers.spawn(writer(shared.clone()));
    }
    // A stuck call must not hang the benchmark: give the writers the case's length plus a margin.
    let grace = limits.duration + Duration::from_secs(60);
    let mut latencies = Vec::new();
    let mut finished = shared.measure_from;
    let collect = async {
        while let Some(joined) = writers.join_next().await {
            let outcome = joined.context("a writer task panicked")??;
            latencies.extend(outcome.latencies);
            finished = finished.max(outcome.finished);
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(grace, collect)
        .await
        .with_context(|| format!("{case} did not finish within {grace:?}"))??;
    let unsequenced_at_end = match case.method {
        Method::Append => Some(crate::db::unsequenced(store.pool()).await?),
        Method::Raw => None,
    };
    let sequencer_drain = crate::db::settle(store.pool(), SETTLE_LIMIT).await?;
    let (wal_bytes, write_transactions): (f64, i64) = sqlx::query_as(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::float8, \
                pg_snapshot_xmax(pg_current_snapshot())::text::bigint - $2",
    )
    .bind(&wal_before)
    .bind(xid_before)
    .fetch_one(store.pool())
    .await
    .context("cannot read the WAL position and transaction counter")?;
    let cost = Cost {
        calls: shared.completed_calls.load(Ordering::Relaxed),
        wal_bytes,
        write_transactions,
        sequencer_drain,
    };
    let calls = latencies.len() as u64;
    Ok(CaseResult {
        case,
        calls,
        events: calls * case.batch as u64,
        elapsed: finished.saturating_duration_since(shared.measure_from),
        latency: Latency::of(latencies),
        unsequenced_at_end,
        cost,
    })
}

async fn writer(shared: Arc<Shared>) -> anyhow::Result<WriterOutcome> {
    let case = shared.case;
    let mut streams = WriterStreams::new(shared.limits.calls_per_stream);
    let expected_calls = (shared.limits.duration.as_millis() as usize).min(1 << 20);
    let mut latencies = Vec::with_capacity(expected_calls);
    let mut finished = Instant::now();
    loop {
        if Instant::now() >= shared.deadline
            || shared.started_calls.fetch_add(1, Ordering::Relaxed) >= shared.limits.max_ops
        {
            break;
        }
        let batch = streams.next_batch(case.batch);
        let started = Instant::now();
        match case.method {
            Method::Append => append(&shared.store, batch).await?,
            Method::Raw => raw_insert(&shared.raw, &batch).await?,
        }
        finished = Instant::now();
        shared.completed_calls.fetch_add(1, Ordering::Relaxed);
        if started >= shared.measure_from {
            latencies.push(finished - started);
        }
        streams.committed(case.batch);
    }
    Ok(WriterOutcome {
        latencies,
        finished,
    })
}

async fn append(store: &PostgresEventStore, batch: Batch) -> anyhow::Result<()> {
    let Batch {
        aggregate_id,
        expected,
        first_version,
        events,
    } = batch;
    let size = events.len() as u64;
    let result = store
        .append_events(aggregate_id, expected, events)
        .await
        .with_context(|| format!("append to {aggregate_id} expecting {expected} failed"))?;
    anyhow::ensure!(
        result.first_version == first_version
            && result.last_version == first_version + size - 1
            && !result.deduplicated,
        "append to {aggregate_id} stored versions {}..={} (deduplicated: {}), expected {first_version}..",
        result.first_version,
        result.last_version,
        result.deduplicated
    );
    Ok(())
}

async fn raw_insert(pool: &PgPool, batch: &Batch) -> anyhow::Result<()> {
    let version = |offset: usize| -> anyhow::Result<i64> {
        i64::try_from(batch.first_version + offset as u64).context("version beyond BIGINT")
    };
    let schema = |e: &NewEvent| i32::try_from(e.schema_version).context("schema_version too big");
    let inserted = if let [event] = batch.events.as_slice() {
        sqlx::query(RAW_INSERT_ONE)
            .bind(event.event_id)
            .bind(batch.aggregate_id)
            .bind(AGGREGATE_TYPE)
            .bind(version(0)?)
            .bind(&event.event_type)
            .bind(schema(event)?)
            .bind(&event.payload)
            .bind(&event.metadata)
            .execute(pool)
            .await
    } else {
        let n = batch.events.len();
        let ids: Vec<Uuid> = batch.events.iter().map(|e| e.event_id).collect();
        let aggregates: Vec<Uuid> = vec![batch.aggregate_id; n];
        let types: Vec<&str> = vec![AGGREGATE_TYPE; n];
        let versions: Vec<i64> = (0..n).map(version).collect::<anyhow::Result<_>>()?;
        let event_types: Vec<&str> = batch.events.iter().map(|e| e.event_type.as_str()).collect();
        let schemas: Vec<i32> = batch
            .events
            .iter()
            .map(schema)
            .collect::<anyhow::Result<_>>()?;
        let payloads: Vec<&Value> = batch.events.iter().map(|e| &e.payload).collect();
        let metadata: Vec<&Value> = batch.events.iter().map(|e| &e.metadata).collect();
        sqlx::query(RAW_INSERT_MANY)
            .bind(&ids)
            .bind(&aggregates)
            .bind(&types)
            .bind(&versions)
            .bind(&event_types)
            .bind(&schemas)
            .bind(&payloads)
            .bind(&metadata)
            .execute(pool)
            .await
    }
    .with_context(|| format!("raw insert into stream {} failed", batch.aggregate_id))?;
    anyhow::ensure!(
        inserted.rows_affected() == batch.events.len() as u64,
        "raw insert wrote {} rows, expected {}",
        inserted.rows_affected(),
        batch.events.len()
    );
    Ok(())
}
