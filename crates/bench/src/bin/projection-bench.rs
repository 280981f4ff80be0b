//! `projection-bench`: what the order read model costs, rebuilt and live.
//!
//! In one fresh database (`orders_bench_<uuid>`, dropped at the end), migrated by
//! [`store::Store::open`], it seeds `--orders` orders (default 25 000) of four events
//! each, `OrderCreated` (two lines), `OrderConfirmed`, `OrderShipped`, `OrderDelivered`: real
//! domain events converted to store events as `commands/codec.rs` does, appended with
//! `EventStore::append_events` by `--seed-writers` concurrent writers. By default each event is
//! its own append and the writers go stage by stage, so the feed holds every order's events far
//! apart, as in a real history, and a 5 000-event batch touches ~5 000 orders; `--grouped` appends
//! each order's four events at once instead. It waits until the sequencer has numbered every
//! event, reads the whole feed once to warm the cache, then measures:
//!
//! - (a) baseline: the same feed pages (`event_positions JOIN events … LIMIT --batch`) read and
//!   folded with the projection's own fold (`projections::batch::fold_batch`, over rows kept in
//!   memory), and one per-row `INSERT … ON CONFLICT (order_id) DO UPDATE` per changed order into a
//!   plain table `LIKE rm_order_details_g1 INCLUDING ALL`, one transaction per page → events/s;
//! - (b) `ReadModel::rebuild(|_, _| {})` (the engine's `Engine::rebuild`) → events/s, with its
//!   fixed 2 s pause before dropping the old tables left out, and the ratio (b) ÷ (a) (target
//!   ≥ 0.7). Both tables are compared row by row afterwards. `--profile` (or a ratio below 0.7)
//!   adds a breakdown of one projection batch into its statements, with `EXPLAIN ANALYZE`;
//! - (c) command-to-visible delay: it starts the real service (`target/release/orders serve`, a
//!   child process) on the same database and sends `--commands` creates (default 500) from
//!   `--command-concurrency` clients (default 4), after `--warmup-commands` unmeasured ones. A
//!   poller reads `SELECT position FROM projections WHERE name = 'orders'` every
//!   `--poll-interval` (1 ms); a command is visible at the first poll whose checkpoint reaches the
//!   `position` in its response. It reports command latency p50/p99, the delay from response to
//!   visible p50/p99 and p99(visible) ÷ p99(command) (target ≤ 3), then stops the service with
//!   SIGTERM.
//!
//! Build the service first, then run it (PostgreSQL at `TEST_DATABASE_URL` or `--server-url`,
//! default `postgres://postgres@127.0.0.1:5432/postgres`, as a user that may `CREATE DATABASE`):
//!
//! ```text
//! cargo build --release -p orders
//! cargo run --release -p bench --bin projection-bench
//! cargo run --release -p bench --bin projection-bench -- --orders 5000 --grouped --profile
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use bench::cli::parse_duration;
use bench::db::{self, BenchDatabase, interruptible};
use bench::report::ms;
use bench::service::{self, CpuMark, Service, ServiceOptions};
use bench::stats::{Latency, percentile};
use chrono::Utc;
use clap::Parser;
use common::DatabaseConfig;
use domain::{
    Currency, DomainEvent, EventMetadata, Money, OrderConfirmed, OrderCreated, OrderDelivered,
    OrderEvent, OrderItem, OrderShipped,
};
use event_store::{EventStore, ExpectedVersion, NewEvent, RecordedEvent};
use order_views::batch::{BatchWrites, by_order, fold_batch, order_ids};
use order_views::projection::{LoadRows, Storage};
use order_views::view::OrderView;
use order_views::{OnError, OrderProjection, ReadModel, Tables};
use read_model::PgDialect;
use sqlx::postgres::{PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool, Row};
use store::Store;
use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

/// Measures a read-model rebuild against a plain read-and-upsert, and command-to-visible delay.
#[derive(Debug, Clone, Parser)]
#[command(name = "projection-bench", version, about)]
struct Args {
    /// Admin URL of the PostgreSQL server; the benchmark creates (and drops) its own database there.
    #[arg(long, env = "TEST_DATABASE_URL", hide_env_values = true, default_value = test_support::postgres::DEFAULT_SERVER_URL)]
    server_url: String,

    /// Orders to seed (four events each).
    #[arg(long, default_value_t = 25_000)]
    orders: usize,

    /// Concurrent writers while seeding.
    #[arg(long, default_value_t = 16)]
    seed_writers: usize,

    /// Append each order's four events in one call (the feed then holds them side by side).
    #[arg(long)]
    grouped: bool,

    /// Events per baseline transaction (the rebuild's batch is 5 000).
    #[arg(long, default_value_t = 5_000)]
    batch: usize,

    /// Break one projection batch down into its statements (automatic when the ratio misses 0.7).
    #[arg(long)]
    profile: bool,

    /// Measured create commands for the visibility delay.
    #[arg(long, default_value_t = 500)]
    commands: usize,

    /// Unmeasured create commands sent first (connections, prepared statements).
    #[arg(long, default_value_t = 20)]
    warmup_commands: usize,

    /// Concurrent clients sending the commands.
    #[arg(long, default_value_t = 4)]
    command_concurrency: usize,

    /// How often the checkpoint is polled.
    #[arg(long, default_value = "1ms", value_parser = parse_duration)]
    poll_interval: Duration,

    /// The service binary (built by `cargo build --release -p orders`).
    #[arg(long, default_value_os_t = service::default_binary())]
    orders_bin: PathBuf,

    /// The service's database pool size (its own default is 16).
    #[arg(long, default_value_t = 16)]
    service_max_connections: u32,

    /// The service's log filter.
    #[arg(long, default_value = "warn")]
    service_log: String,

    /// Skips (c), the service and its visibility delay.
    #[arg(long)]
    no_service: bool,

    /// Keeps the benchmark database instead of dropping it.
    #[arg(long)]
    keep_database: bool,
}

impl Args {
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.orders > 0, "--orders must be positive");
        anyhow::ensure!(self.seed_writers > 0, "--seed-writers must be positive");
        anyhow::ensure!(self.batch > 0, "--batch must be positive");
        anyhow::ensure!(
            self.command_concurrency > 0,
            "--command-concurrency must be positive"
        );
        anyhow::ensure!(self.commands > 0, "--commands must be positive");
        Ok(())
    }
}

/// The rebuild's fixed pause between switching and dropping the old tables
/// (`read_model`'s `DROP_DELAY`, private there): left out of its events/s.
const REBUILD_DROP_DELAY: Duration = Duration::from_secs(2);

/// Longest wait for the sequencer or the read model to catch up.
const SETTLE_LIMIT: Duration = Duration::from_secs(300);

/// The baseline's table.
const BASELINE_TABLE: &str = "bench_order_details";

const TARGET_REBUILD_RATIO: f64 = 0.7;
const TARGET_VISIBLE_RATIO: f64 = 3.0;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.validate()?;
    let database = BenchDatabase::create(&args.server_url).await?;
    eprintln!("benchmark database: {}", database.name);
    let work_dir = service::scratch_dir("projection-bench");
    let outcome = interruptible(run(&args, &database, &work_dir)).await;
    database.finish(args.keep_database).await;
    if outcome.is_ok() {
        let _ = std::fs::remove_dir_all(&work_dir);
    } else {
        eprintln!("scratch files kept in {}", work_dir.display());
    }
    outcome
}

async fn run(args: &Args, database: &BenchDatabase, work_dir: &Path) -> anyhow::Result<()> {
    let config = DatabaseConfig {
        database_url: Some(database.url.clone()),
        data_dir: work_dir.join("data"),
        max_connections: u32::try_from(args.seed_writers + 4)?,
        group_commit: true,
    };
    let store = Store::open(&config).await?;
    let Store::Postgres(pg) = &store else {
        anyhow::bail!("the benchmark needs PostgreSQL");
    };
    let pool = pg.pool().clone();
    print_settings(&pool).await?;

    let seeded = seed(&store, args).await?;
    let sequenced = db::settle(&pool, SETTLE_LIMIT).await?;
    let total_events = (args.orders * 4) as u64;
    let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM event_positions")
        .fetch_one(&pool)
        .await?;
    anyhow::ensure!(
        head as u64 == total_events,
        "the feed holds {head} events, expected {total_events}"
    );
    println!(
        "seeded {} orders = {total_events} events ({}) in {:.1}s ({:.0} events/s), sequenced {:.1}s later",
        args.orders,
        if args.grouped {
            "4 events per append"
        } else {
            "one event per append, stage by stage"
        },
        seeded.as_secs_f64(),
        total_events as f64 / seeded.as_secs_f64(),
        sequenced.as_secs_f64()
    );

    let read_model = ReadModel::for_store(&store);
    let generation = read_model.register().await?.generation;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE TABLE {BASELINE_TABLE} (LIKE {} INCLUDING ALL)",
        Tables::new(generation).details
    )))
    .execute(&pool)
    .await
    .context("cannot create the baseline table")?;
    for table in ["events", "event_positions"] {
        sqlx::raw_sql(AssertSqlSafe(format!("VACUUM ANALYZE {table}")))
            .execute(&pool)
            .await?;
    }
    let warm = Instant::now();
    let (rows, bytes): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(octet_length(e.payload::text) + octet_length(e.metadata::text)), 0)::int8
         FROM event_positions p JOIN events e ON e.seq = p.seq",
    )
    .fetch_one(&pool)
    .await?;
    println!(
        "warm-up scan of the feed: {rows} events, {:.1} MiB of JSON, {}",
        bytes as f64 / 1_048_576.0,
        ms(warm.elapsed())
    );

    // (a) baseline
    let cpu = CpuMark::now(None)?;
    let baseline = baseline(&pool, args.batch).await?;
    let baseline_cpu = cpu.since(None)?;
    anyhow::ensure!(
        baseline.events == total_events,
        "the baseline read {} events, expected {total_events}",
        baseline.events
    );
    // (b) rebuild
    let progress: Mutex<Vec<(Instant, u64)>> = Mutex::new(Vec::new());
    let cpu = CpuMark::now(None)?;
    let started = Instant::now();
    let report = read_model
        .rebuild(&|done, _head| {
            if let Ok(mut marks) = progress.lock() {
                marks.push((Instant::now(), done));
            }
        })
        .await
        .context("the rebuild failed")?;
    let rebuild_wall = started.elapsed();
    let rebuild_cpu = cpu.since(None)?;
    let marks = progress.into_inner().unwrap_or_default();
    let apply_phase = marks.last().map_or(rebuild_wall, |(at, _)| {
        at.saturating_duration_since(started)
    });
    let rebuild_batches: Vec<Duration> = std::iter::once(started)
        .chain(marks.iter().map(|(at, _)| *at))
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| w[1] - w[0])
        .collect();
    let rebuild_time = rebuild_wall.saturating_sub(REBUILD_DROP_DELAY);
    let same = compare(&pool, report.generation).await?;

    let baseline_eps = per_sec(baseline.events, baseline.elapsed);
    let rebuild_eps = per_sec(report.events, rebuild_time);
    let apply_eps = per_sec(report.events, apply_phase);
    let ratio = rebuild_eps / baseline_eps.max(f64::MIN_POSITIVE);
    println!(
        "\n### Read model rebuild vs plain read + upsert ({total_events} events, {} orders)\n",
        args.orders
    );
    println!("| run | events | time | events/s | ratio vs baseline | batch p50 / max |");
    println!("|---|---:|---:|---:|---:|---:|");
    let batch_stats = |batches: &[Duration]| {
        let mut sorted = batches.to_vec();
        sorted.sort_unstable();
        format!(
            "{} / {}",
            ms(percentile(&sorted, 50.0)),
            ms(sorted.last().copied().unwrap_or_default())
        )
    };
    println!(
        "| (a) baseline: read page, fold in memory, per-row upsert, commit | {} | {:.2}s | {:.0} | 1.00 | {} |",
        baseline.events,
        baseline.elapsed.as_secs_f64(),
        baseline_eps,
        batch_stats(
            &baseline
                .batches
                .iter()
                .map(BatchTiming::total)
                .collect::<Vec<_>>()
        ),
    );
    println!(
        "| (b) `rebuild()` (wall {:.2}s less its fixed 2 s drop delay) | {} | {:.2}s | {:.0} | {:.2} | {} |",
        rebuild_wall.as_secs_f64(),
        report.events,
        rebuild_time.as_secs_f64(),
        rebuild_eps,
        ratio,
        batch_stats(&rebuild_batches),
    );
    println!(
        "| (b′) `rebuild()` batches only (until the last progress call) | {} | {:.2}s | {:.0} | {:.2} | |",
        report.events,
        apply_phase.as_secs_f64(),
        apply_eps,
        apply_eps / baseline_eps.max(f64::MIN_POSITIVE),
    );
    println!(
        "\nBaseline per batch (sum over {} batches): read {:.2}s, fold {:.2}s, upserts + commit {:.2}s ({} rows upserted).",
        baseline.batches.len(),
        sum(baseline.batches.iter().map(|b| b.read)),
        sum(baseline.batches.iter().map(|b| b.fold)),
        sum(baseline.batches.iter().map(|b| b.write)),
        baseline.rows,
    );
    println!(
        "Rebuilt generation {} at position {}; rows identical to the baseline's: {} of {} ({} in the baseline).",
        report.generation, report.position, same.0, same.1, same.2
    );
    println!(
        "Machine CPU busy (both cores, other processes included): {:.0}% during (a), {:.0}% during (b); \
         this process used {:.1}s CPU in (a), {:.1}s in (b).",
        baseline_cpu.machine_busy * 100.0,
        rebuild_cpu.machine_busy * 100.0,
        baseline_cpu.bench_secs,
        rebuild_cpu.bench_secs,
    );
    println!(
        "Rebuild ratio target ≥ {TARGET_REBUILD_RATIO}: {}.",
        if ratio >= TARGET_REBUILD_RATIO {
            "met"
        } else {
            "MISSED"
        }
    );

    if args.profile || ratio < TARGET_REBUILD_RATIO {
        profile(&pool, &read_model, args.batch, total_events).await?;
    }

    // Close this process's store first: its sequencer would compete with the service's.
    pool.close().await;
    drop(read_model);
    drop(store);
    if !args.no_service {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .connect(&database.url)
            .await?;
        visibility(args, database, work_dir, &pool).await?;
        pool.close().await;
    }
    Ok(())
}

fn per_sec(count: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        0.0
    } else {
        count as f64 / elapsed.as_secs_f64()
    }
}

fn sum(durations: impl Iterator<Item = Duration>) -> f64 {
    durations.map(|d| d.as_secs_f64()).sum()
}

// ---------------------------------------------------------------------------------------------
// Seeding

/// The four events of one order, converted like `commands/codec.rs` does.
fn order_events(order_id: Uuid, customer_id: Uuid) -> anyhow::Result<[NewEvent; 4]> {
    let eur = Currency::new("EUR")?;
    let items = vec![
        OrderItem::new(Uuid::now_v7(), "SKU-001", 2, 1050, eur.clone())?,
        OrderItem::new(Uuid::now_v7(), "SKU-002", 1, 2599, eur.clone())?,
    ];
    let total = items
        .iter()
        .map(|i| i.line_total().map(|m| m.amount_minor()))
        .sum::<Result<i64, _>>()?;
    let events = [
        OrderEvent::Created(OrderCreated {
            order_id,
            customer_id,
            currency: eur.clone(),
            items,
            total: Money::new(total, eur),
            shipping_address: None,
            contact: None,
        }),
        OrderEvent::Confirmed(OrderConfirmed {}),
        OrderEvent::Shipped(OrderShipped {
            carrier: Some("DHL".into()),
            tracking_number: Some("JD014600006281234567".into()),
        }),
        OrderEvent::Delivered(OrderDelivered {}),
    ];
    Ok(events.map(|event| {
        let request = Uuid::now_v7();
        let metadata = EventMetadata::new(request, Utc::now())
            .with_causation(request)
            .with_user(if matches!(event, OrderEvent::Created(_)) {
                customer_id.to_string()
            } else {
                "ops".to_owned()
            });
        NewEvent::new(
            "Order",
            event.event_type(),
            event.schema_version(),
            event.to_payload(),
        )
        .with_metadata(serde_json::to_value(&metadata).unwrap_or_default())
    }))
}

async fn seed(store: &Store, args: &Args) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let orders: Arc<Vec<(Uuid, Uuid)>> = Arc::new(
        (0..args.orders)
            .map(|_| (Uuid::now_v7(), Uuid::now_v7()))
            .collect(),
    );
    let mut writers = JoinSet::new();
    for writer in 0..args.seed_writers {
        let store = store.clone();
        let orders = orders.clone();
        let (count, grouped) = (args.seed_writers, args.grouped);
        writers.spawn(async move {
            let mine: Vec<(Uuid, [NewEvent; 4])> = orders
                .iter()
                .skip(writer)
                .step_by(count)
                .map(|&(order, customer)| Ok((order, order_events(order, customer)?)))
                .collect::<anyhow::Result<_>>()?;
            if grouped {
                for (order, events) in mine {
                    store
                        .append_events(order, ExpectedVersion::NoStream, events.to_vec())
                        .await
                        .with_context(|| format!("seeding {order} failed"))?;
                }
            } else {
                for stage in 0..4 {
                    for (order, events) in &mine {
                        store
                            .append_events(
                                *order,
                                ExpectedVersion::from(stage as u64),
                                vec![events[stage].clone()],
                            )
                            .await
                            .with_context(|| format!("seeding {order} failed"))?;
                    }
                }
            }
            anyhow::Ok(())
        });
    }
    while let Some(joined) = writers.join_next().await {
        joined.context("a seeding writer panicked")??;
    }
    Ok(started.elapsed())
}

// ---------------------------------------------------------------------------------------------
// (a) The baseline

const FEED_PAGE: &str =
    "SELECT e.event_id, e.aggregate_id, e.aggregate_type, e.version, p.position, e.event_type,
        e.schema_version, e.payload, e.metadata, e.recorded_at
    FROM event_positions p JOIN events e ON e.seq = p.seq
    WHERE p.position > $1 ORDER BY p.position LIMIT $2";

fn upsert_sql(table: &str) -> String {
    format!(
        "INSERT INTO {table} (order_id, customer_id, status, currency, total_minor, items, cancellation_reason, carrier,
            tracking_number, created_at, confirmed_at, cancelled_at, shipped_at, delivered_at, version, last_position)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT (order_id) DO UPDATE SET status = EXCLUDED.status, cancellation_reason = EXCLUDED.cancellation_reason,
            carrier = EXCLUDED.carrier, tracking_number = EXCLUDED.tracking_number, confirmed_at = EXCLUDED.confirmed_at,
            cancelled_at = EXCLUDED.cancelled_at, shipped_at = EXCLUDED.shipped_at, delivered_at = EXCLUDED.delivered_at,
            version = EXCLUDED.version, last_position = EXCLUDED.last_position"
    )
}

#[derive(Debug, Clone, Copy)]
struct BatchTiming {
    read: Duration,
    fold: Duration,
    write: Duration,
}

impl BatchTiming {
    fn total(&self) -> Duration {
        self.read + self.fold + self.write
    }
}

struct Baseline {
    events: u64,
    rows: u64,
    elapsed: Duration,
    batches: Vec<BatchTiming>,
}

async fn read_page(
    conn: &mut PgConnection,
    after: u64,
    limit: usize,
) -> anyhow::Result<Vec<RecordedEvent>> {
    let rows = sqlx::query(FEED_PAGE)
        .bind(i64::try_from(after)?)
        .bind(i64::try_from(limit)?)
        .fetch_all(conn)
        .await
        .context("reading the feed failed")?;
    rows.iter().map(recorded).collect()
}

fn recorded(r: &PgRow) -> anyhow::Result<RecordedEvent> {
    Ok(RecordedEvent {
        event_id: r.try_get("event_id")?,
        aggregate_id: r.try_get("aggregate_id")?,
        aggregate_type: r.try_get("aggregate_type")?,
        version: u64::try_from(r.try_get::<i64, _>("version")?)?,
        position: Some(u64::try_from(r.try_get::<i64, _>("position")?)?),
        event_type: r.try_get("event_type")?,
        schema_version: u32::try_from(r.try_get::<i32, _>("schema_version")?)?,
        payload: r.try_get("payload")?,
        metadata: r.try_get("metadata")?,
        recorded_at: r.try_get("recorded_at")?,
    })
}

async fn upsert_rows(conn: &mut PgConnection, sql: &str, rows: &[OrderView]) -> anyhow::Result<()> {
    for row in rows {
        sqlx::query(AssertSqlSafe(sql.to_owned()))
            .bind(row.order_id)
            .bind(row.customer_id)
            .bind(&row.status)
            .bind(&row.currency)
            .bind(row.total_minor)
            .bind(&row.items)
            .bind(&row.cancellation_reason)
            .bind(&row.carrier)
            .bind(&row.tracking_number)
            .bind(row.created_at)
            .bind(row.confirmed_at)
            .bind(row.cancelled_at)
            .bind(row.shipped_at)
            .bind(row.delivered_at)
            .bind(i64::try_from(row.version)?)
            .bind(i64::try_from(row.last_position)?)
            .execute(&mut *conn)
            .await
            .context("upsert failed")?;
    }
    Ok(())
}

/// Reads the feed page by page and upserts the changed rows, one transaction per page; the rows'
/// current state is kept in memory, never read back.
async fn baseline(pool: &PgPool, batch: usize) -> anyhow::Result<Baseline> {
    let sql = upsert_sql(BASELINE_TABLE);
    let mut conn = pool.acquire().await?;
    let mut state: HashMap<Uuid, OrderView> = HashMap::new();
    let mut after = 0;
    let mut result = Baseline {
        events: 0,
        rows: 0,
        elapsed: Duration::ZERO,
        batches: Vec::new(),
    };
    let started = Instant::now();
    loop {
        let t0 = Instant::now();
        let mut tx = conn.begin().await?;
        let events = read_page(&mut tx, after, batch).await?;
        if events.is_empty() {
            tx.commit().await?;
            break;
        }
        let t1 = Instant::now();
        let current: HashMap<Uuid, OrderView> = order_ids(&events)
            .iter()
            .filter_map(|id| state.get(id).map(|row| (*id, row.clone())))
            .collect();
        let writes: BatchWrites = fold_batch(&events, current, after, OnError::Park);
        anyhow::ensure!(
            writes.applied.parked.is_empty(),
            "the fold parked {} events: {:?}",
            writes.applied.parked.len(),
            writes.applied.parked.first()
        );
        let t2 = Instant::now();
        upsert_rows(&mut tx, &sql, &writes.rows).await?;
        tx.commit().await?;
        let t3 = Instant::now();
        result.events += writes.applied.events as u64;
        result.rows += writes.rows.len() as u64;
        after = writes.applied.last_position;
        for row in writes.rows {
            state.insert(row.order_id, row);
        }
        result.batches.push(BatchTiming {
            read: t1 - t0,
            fold: t2 - t1,
            write: t3 - t2,
        });
        if events.len() < batch {
            break;
        }
    }
    result.elapsed = started.elapsed();
    Ok(result)
}

/// (rows of the rebuilt table equal to the baseline's, rows rebuilt, rows in the baseline).
async fn compare(pool: &PgPool, generation: i32) -> anyhow::Result<(i64, i64, i64)> {
    let details = Tables::new(generation).details;
    let sql = format!(
        "SELECT (SELECT COUNT(*) FROM {details} r JOIN {BASELINE_TABLE} b USING (order_id)
                 WHERE (r.customer_id, r.status, r.currency, r.total_minor, r.items, r.carrier, r.tracking_number,
                        r.created_at, r.confirmed_at, r.shipped_at, r.delivered_at, r.version, r.last_position)
                   IS NOT DISTINCT FROM
                       (b.customer_id, b.status, b.currency, b.total_minor, b.items, b.carrier, b.tracking_number,
                        b.created_at, b.confirmed_at, b.shipped_at, b.delivered_at, b.version, b.last_position)),
                (SELECT COUNT(*) FROM {details}),
                (SELECT COUNT(*) FROM {BASELINE_TABLE})"
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql)).fetch_one(pool).await?)
}

// ---------------------------------------------------------------------------------------------
// Profile: one projection batch, statement by statement

/// Runs one projection batch at a time into a scratch generation with the read model's own
/// pieces (its load, its fold, its write: what `Engine::apply_into` runs, minus parking), timing
/// each step, and prints `EXPLAIN ANALYZE` of the two reads.
async fn profile(
    pool: &PgPool,
    read_model: &ReadModel,
    batch: usize,
    total_events: u64,
) -> anyhow::Result<()> {
    const SCRATCH: i32 = 9_999;
    let tables = Tables::new(SCRATCH);
    read_model.drop_tables(SCRATCH).await?;
    read_model.create_tables(SCRATCH).await?;
    println!(
        "\n### Profile: the rebuild's steps, batch by batch (scratch tables, {batch} events per batch)\n"
    );
    println!(
        "| batch | read feed | read current rows | fold | write (one statement) | commit | rows written | rows read back |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut after = 0;
    let mut totals = [Duration::ZERO; 5];
    let mut n = 0;
    let middle = (total_events as usize / batch) / 2;
    let mut explain_at = None;
    loop {
        let mut tx = pool.begin().await?;
        let t0 = Instant::now();
        let events = read_page(&mut tx, after, batch).await?;
        if events.is_empty() {
            tx.commit().await?;
            break;
        }
        let ids = order_ids(&events);
        let t1 = Instant::now();
        let rows: Vec<OrderView> = PgDialect::load(&mut tx, &tables.details, &ids).await?;
        let rows = by_order(rows);
        let read_back = rows.len();
        let t2 = Instant::now();
        let writes = fold_batch(&events, rows, after, OnError::Park);
        let t3 = Instant::now();
        <PgDialect as Storage<OrderProjection>>::write(&mut tx, &tables, &writes).await?;
        let t4 = Instant::now();
        tx.commit().await?;
        let t5 = Instant::now();
        let steps = [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4];
        for (total, step) in totals.iter_mut().zip(steps) {
            *total += step;
        }
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            n + 1,
            ms(steps[0]),
            ms(steps[1]),
            ms(steps[2]),
            ms(steps[3]),
            ms(steps[4]),
            writes.rows.len(),
            read_back
        );
        if n == middle {
            explain_at = Some((after, ids));
        }
        n += 1;
        after = writes.applied.last_position;
        if events.len() < batch {
            break;
        }
    }
    println!(
        "| **total** | {} | {} | {} | {} | {} | | |",
        ms(totals[0]),
        ms(totals[1]),
        ms(totals[2]),
        ms(totals[3]),
        ms(totals[4])
    );
    if let Some((after, ids)) = explain_at {
        let select = format!("SELECT * FROM {} WHERE order_id = ANY($1)", tables.details);
        let mut conn = pool.acquire().await?;
        explain(&mut conn, &select, &ids, after, batch).await?;
    }
    read_model.drop_tables(SCRATCH).await?;
    Ok(())
}

async fn explain(
    conn: &mut PgConnection,
    select: &str,
    ids: &[Uuid],
    after: u64,
    batch: usize,
) -> anyhow::Result<()> {
    let plan = |rows: Vec<String>| rows.join("\n");
    let feed: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
        "EXPLAIN (ANALYZE, BUFFERS) {FEED_PAGE}"
    )))
    .bind(i64::try_from(after)?)
    .bind(i64::try_from(batch)?)
    .fetch_all(&mut *conn)
    .await?;
    let current: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
        "EXPLAIN (ANALYZE, BUFFERS) {select}"
    )))
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    println!(
        "\nEXPLAIN ANALYZE of the feed page after {after}:\n```\n{}\n```\nEXPLAIN ANALYZE of reading back the batch's {} rows:\n```\n{}\n```\n",
        plan(feed),
        ids.len(),
        plan(current)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// (c) Command-to-visible delay

/// One measured command.
struct Sent {
    latency: Duration,
    answered: Instant,
    order: uuid::Uuid,
    /// Filled in once the feed has numbered the creation.
    position: u64,
}

async fn visibility(
    args: &Args,
    database: &BenchDatabase,
    work_dir: &Path,
    pool: &PgPool,
) -> anyhow::Result<()> {
    let service = Service::start(&ServiceOptions {
        binary: args.orders_bin.clone(),
        database_url: database.url.clone(),
        max_connections: args.service_max_connections,
        log: args.service_log.clone(),
        work_dir: work_dir.join("service"),
        env: Vec::new(),
    })
    .await?;
    db::settle_projection(pool, SETTLE_LIMIT).await?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let body = service::create_order_body(2);

    // The poller: the first time each checkpoint was seen.
    let stop = Arc::new(AtomicBool::new(false));
    let mut poll_conn = PgConnection::connect(&database.url).await?;
    let poller = {
        let stop = stop.clone();
        let interval = args.poll_interval;
        tokio::spawn(async move {
            let mut seen: Vec<(Instant, u64)> = Vec::new();
            let mut last = -1_i64;
            let mut polls = 0_u64;
            while !stop.load(Ordering::Relaxed) {
                let position: i64 =
                    sqlx::query_scalar("SELECT position FROM projections WHERE name = 'orders'")
                        .fetch_one(&mut poll_conn)
                        .await?;
                polls += 1;
                if position > last {
                    last = position;
                    seen.push((Instant::now(), u64::try_from(position)?));
                }
                tokio::time::sleep(interval).await;
            }
            anyhow::Ok((seen, polls))
        })
    };

    let cpu = CpuMark::now(Some(service.pid()))?;
    let warmup = Arc::new(AtomicU64::new(args.warmup_commands as u64));
    let measured = Arc::new(AtomicU64::new(args.commands as u64));
    let started = Instant::now();
    let mut clients = JoinSet::new();
    for _ in 0..args.command_concurrency {
        let token = service::bearer(&service.customer_token(Uuid::now_v7())?);
        let (client, body, url) = (
            client.clone(),
            body.clone(),
            format!("{}/orders", service.base_url),
        );
        let (warmup, measured) = (warmup.clone(), measured.clone());
        clients.spawn(async move {
            let mut sent = Vec::new();
            loop {
                let measure = if take(&warmup) {
                    false
                } else if take(&measured) {
                    true
                } else {
                    break;
                };
                let t0 = Instant::now();
                let response = client
                    .post(&url)
                    .header("authorization", &token)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .context("POST /orders failed")?;
                let status = response.status();
                let bytes = response.bytes().await?;
                let answered = Instant::now();
                anyhow::ensure!(
                    status.as_u16() == 201,
                    "POST /orders answered {status}: {}",
                    String::from_utf8_lossy(&bytes)
                );
                let order = service::order_id(&bytes)?;
                if measure {
                    sent.push(Sent {
                        latency: answered - t0,
                        answered,
                        order,
                        position: 0,
                    });
                }
            }
            anyhow::Ok(sent)
        });
    }
    let mut sent = Vec::new();
    while let Some(joined) = clients.join_next().await {
        sent.extend(joined.context("a client panicked")??);
    }
    let sending = started.elapsed();
    let orders: Vec<uuid::Uuid> = sent.iter().map(|s| s.order).collect();
    for (s, position) in sent
        .iter_mut()
        .zip(service::creation_positions(pool, &orders).await?)
    {
        s.position = position;
    }
    let highest = sent.iter().map(|s| s.position).max().unwrap_or(0);
    let waited = Instant::now();
    loop {
        let checkpoint: i64 =
            sqlx::query_scalar("SELECT position FROM projections WHERE name = 'orders'")
                .fetch_one(pool)
                .await?;
        if u64::try_from(checkpoint)? >= highest {
            break;
        }
        anyhow::ensure!(
            waited.elapsed() < Duration::from_secs(30),
            "the read model did not reach position {highest} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(args.poll_interval * 5).await;
    stop.store(true, Ordering::Relaxed);
    let (seen, polls) = poller.await.context("the poller panicked")??;
    let cpu = cpu.since(Some(service.pid()))?;
    let means = service
        .histogram_means(&client, &service::TIMED_METRICS)
        .await?;
    let memory = service.memory()?;
    let stopped = service.stop(Duration::from_secs(30)).await?;

    let mut visible = Vec::with_capacity(sent.len());
    let mut already = 0;
    for command in &sent {
        let at = seen
            .iter()
            .find(|(_, position)| *position >= command.position)
            .map(|(at, _)| *at)
            .with_context(|| format!("position {} was never seen", command.position))?;
        if at <= command.answered {
            already += 1;
        }
        visible.push(at.saturating_duration_since(command.answered));
    }
    let commands = Latency::of(sent.iter().map(|s| s.latency).collect());
    let delay = Latency::of(visible);
    let ratio = delay.p99.as_secs_f64() / commands.p99.as_secs_f64().max(f64::MIN_POSITIVE);
    println!(
        "\n### Command to visible in the read model ({} creates, {} clients, checkpoint polled every {:?})\n",
        sent.len(),
        args.command_concurrency,
        args.poll_interval
    );
    println!(
        "| commands | clients | commands/s | command p50 | command p99 | visible after p50 | visible after p99 | max | p99 visible ÷ p99 command |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {:.2} |",
        sent.len(),
        args.command_concurrency,
        per_sec((sent.len() + args.warmup_commands) as u64, sending),
        ms(commands.p50),
        ms(commands.p99),
        ms(delay.p50),
        ms(delay.p99),
        ms(delay.max),
        ratio
    );
    println!(
        "\n{already} of {} commands were already visible at the first poll after their response; \
         {polls} polls, {} checkpoint advances seen. Target p99 ratio ≤ {TARGET_VISIBLE_RATIO}: {}.",
        sent.len(),
        seen.len(),
        if ratio <= TARGET_VISIBLE_RATIO {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "Machine CPU busy {:.0}% (both cores); the service used {:.1}s CPU ({:.2} ms per command).",
        cpu.machine_busy * 100.0,
        cpu.service_secs,
        cpu.service_secs * 1000.0 / (sent.len() + args.warmup_commands) as f64,
    );
    println!("\nService metrics (whole run, warm-up included): series, count, mean:");
    for (series, count, mean) in &means {
        println!(
            "  {series}: {count:.0} × {}",
            ms(Duration::from_secs_f64(*mean))
        );
    }
    println!(
        "Service memory: VmRSS {:.1} MiB, VmHWM (peak) {:.1} MiB; SIGTERM → exit {} in {}.",
        memory.rss_mib(),
        memory.hwm_mib(),
        stopped
            .status
            .map_or_else(|| "none (killed)".to_owned(), |s| s.to_string()),
        ms(stopped.took)
    );
    Ok(())
}

/// Takes one from `counter` if any is left.
fn take(counter: &AtomicU64) -> bool {
    counter
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

async fn print_settings(pool: &PgPool) -> anyhow::Result<()> {
    let setting = |name: &'static str| async move {
        sqlx::query_scalar::<_, String>(AssertSqlSafe(format!("SHOW {name}")))
            .fetch_one(pool)
            .await
            .with_context(|| format!("cannot read setting {name}"))
    };
    println!(
        "PostgreSQL {}; synchronous_commit={} fsync={} shared_buffers={} work_mem={}; {} CPUs",
        setting("server_version").await?,
        setting("synchronous_commit").await?,
        setting("fsync").await?,
        setting("shared_buffers").await?,
        setting("work_mem").await?,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    Ok(())
}
