//! `http-bench`: what an order command costs end to end over HTTP, against plain inserts of the
//! same event rows.
//!
//! It creates a fresh database (`orders_bench_<uuid>`, dropped at the end) and starts the real
//! service as a child process, `target/release/orders serve --listen 127.0.0.1:<free port>`, with
//! its own `ORDERS_JWT_SECRET` so it can mint tokens with [`orders::auth::JwtKeys`]. Then, at
//! every `--concurrency` (default 1, 16 and 64 clients), for `--duration` (default 10s, the first
//! `--warmup` unmeasured) or `--max-requests` commands, whichever comes first:
//!
//! - `raw`: each writer inserts the rows the two commands below store (an `OrderCreated` with
//!   `--items` lines and an `OrderConfirmed`, with the service's metadata: correlation, causation,
//!   user, timestamp) as single-row `INSERT`s into `raw_events`, a `LIKE events INCLUDING ALL`
//!   copy of the events table, through a pool of its own → inserts/s;
//! - `http`: each client places an order, `POST /orders` with a customer token and a JSON body of
//!   `--items` lines, then confirms it, `POST /orders/{id}/confirm` with a staff token → commands/s
//!   (each request is one command), p50/p99 latency per command and p99/p50.
//!
//! Before each case it waits until the service's sequencer and read model have caught up with the
//! previous one. It prints each case, the ratio commands/s ÷ raw inserts/s (target ≥ 0.6 at 64
//! clients), the service's resident memory (`VmRSS`, and the peak `VmHWM`, from
//! `/proc/<pid>/status`; target < 150 MiB) and a markdown table, then stops the service with
//! SIGTERM and drops the database.
//!
//! Build the service first, then run it (PostgreSQL at `TEST_DATABASE_URL` or `--server-url`,
//! default `postgres://postgres@127.0.0.1:5432/postgres`, as a user that may `CREATE DATABASE`):
//!
//! ```text
//! cargo build --release -p orders
//! cargo run --release -p bench --bin http-bench -- --duration 10s
//! cargo run --release -p bench --bin http-bench -- --concurrency 64 --service-max-connections 32
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use bench::cli::parse_duration;
use bench::db::{self, BenchDatabase, interruptible};
use bench::report::ms;
use bench::service::{self, CpuMark, CpuUse, Memory, Service, ServiceOptions};
use bench::stats::Latency;
use chrono::Utc;
use clap::Parser;
use domain::{DomainEvent, EventMetadata, OrderConfirmed, OrderCreated, OrderEvent, OrderItem};
use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

/// Measures order commands over HTTP against raw inserts of the same event rows.
#[derive(Debug, Clone, Parser)]
#[command(name = "http-bench", version, about)]
struct Args {
    /// Admin URL of the PostgreSQL server; the benchmark creates (and drops) its own database there.
    #[arg(long, env = "TEST_DATABASE_URL", hide_env_values = true, default_value = test_support::postgres::DEFAULT_SERVER_URL)]
    server_url: String,

    /// Wall-clock length of each case (e.g. `10s`, `1500ms`, `1m`), warm-up included.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,

    /// Start of each case that is run but not measured.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    warmup: Duration,

    /// Upper bound on commands (HTTP) or inserts (raw) per case.
    #[arg(long, default_value_t = 1_000_000)]
    max_requests: u64,

    /// Numbers of concurrent clients, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,

    /// Lines per order.
    #[arg(long, default_value_t = 2)]
    items: usize,

    /// The service binary (built by `cargo build --release -p orders`).
    #[arg(long, default_value_os_t = service::default_binary())]
    orders_bin: PathBuf,

    /// The service's database pool size (its own default is 16).
    #[arg(long, default_value_t = 16)]
    service_max_connections: u32,

    /// The service's log filter (`info` logs every command).
    #[arg(long, default_value = "warn")]
    service_log: String,

    /// Keeps the benchmark database instead of dropping it.
    #[arg(long)]
    keep_database: bool,
}

impl Args {
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.concurrency.is_empty() && self.concurrency.iter().all(|&c| c > 0),
            "--concurrency needs positive values"
        );
        anyhow::ensure!(
            (1..=100).contains(&self.items),
            "--items must lie in 1..=100"
        );
        anyhow::ensure!(
            self.warmup < self.duration,
            "--warmup ({:?}) must be shorter than --duration ({:?})",
            self.warmup,
            self.duration
        );
        Ok(())
    }
}

/// Longest wait for the service's sequencer and read model to catch up between cases.
const SETTLE_LIMIT: Duration = Duration::from_secs(120);

/// A case stops early after this many failed requests.
const MAX_ERRORS: u64 = 100;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.validate()?;
    let database = BenchDatabase::create(&args.server_url).await?;
    eprintln!("benchmark database: {}", database.name);
    let work_dir = service::scratch_dir("http-bench");
    let outcome = interruptible(run(&args, &database, &work_dir)).await;
    database.finish(args.keep_database).await;
    if outcome.is_ok() {
        let _ = std::fs::remove_dir_all(&work_dir);
    } else {
        eprintln!("service log kept in {}", work_dir.display());
    }
    outcome
}

/// One measured case.
#[derive(Debug, Clone)]
struct CaseResult {
    clients: usize,
    /// Measured commands (HTTP) or inserts (raw).
    ops: u64,
    elapsed: Duration,
    latency: Latency,
    /// HTTP only: per-kind latencies.
    create: Latency,
    confirm: Latency,
    errors: u64,
    first_error: Option<String>,
    memory: Option<Memory>,
    cpu: CpuUse,
}

impl CaseResult {
    fn per_sec(&self) -> f64 {
        if self.elapsed.is_zero() {
            0.0
        } else {
            self.ops as f64 / self.elapsed.as_secs_f64()
        }
    }

    fn tail_ratio(&self) -> f64 {
        let p50 = self.latency.p50.as_secs_f64();
        if p50 == 0.0 {
            0.0
        } else {
            self.latency.p99.as_secs_f64() / p50
        }
    }
}

async fn run(
    args: &Args,
    database: &BenchDatabase,
    work_dir: &std::path::Path,
) -> anyhow::Result<()> {
    let max_clients = args.concurrency.iter().copied().max().unwrap_or(1);
    let pool_size = u32::try_from(max_clients + 4).context("--concurrency too large")?;
    // The service migrates the database when it starts.
    let service = Service::start(&ServiceOptions {
        binary: args.orders_bin.clone(),
        database_url: database.url.clone(),
        max_connections: args.service_max_connections,
        log: args.service_log.clone(),
        work_dir: work_dir.to_path_buf(),
        env: Vec::new(),
    })
    .await?;
    let started = service.memory()?;
    println!(
        "service pid {} at {} (pool {} connections, log {}); RSS after start {:.1} MiB",
        service.pid(),
        service.base_url,
        args.service_max_connections,
        args.service_log,
        started.rss_mib()
    );
    let pool = PgPoolOptions::new()
        .max_connections(pool_size)
        .connect(&database.url)
        .await
        .with_context(|| format!("cannot connect to {}", database.url))?;
    db::create_raw_table(&pool).await?;
    db::warm_pool(&pool, max_clients).await?;
    print_settings(&pool, pool_size).await?;

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(max_clients * 2)
        .timeout(Duration::from_secs(60))
        .build()?;
    let staff = service.staff_token()?;
    let body = service::create_order_body(args.items);
    println!(
        "POST /orders body: {} bytes; raw rows use the same domain events and metadata\n",
        body.len()
    );

    let mut rows = Vec::new();
    for &clients in &args.concurrency {
        db::settle_projection(&pool, SETTLE_LIMIT).await?;
        let cpu = CpuMark::now(Some(service.pid()))?;
        let mut raw = raw_case(&pool, clients, args).await?;
        raw.cpu = cpu.since(Some(service.pid()))?;
        print_case("raw", &raw);
        db::settle_projection(&pool, SETTLE_LIMIT).await?;
        let cpu = CpuMark::now(Some(service.pid()))?;
        let mut http = http_case(&client, &service, &staff, &body, clients, args).await?;
        http.cpu = cpu.since(Some(service.pid()))?;
        http.memory = Some(service.memory()?);
        print_case("http", &http);
        if let Some(error) = &http.first_error {
            println!("  first error: {error}");
        }
        rows.push((raw, http));
    }
    db::settle_projection(&pool, SETTLE_LIMIT).await?;
    let sizes = stored_sizes(&pool).await?;
    let means = service
        .histogram_means(&client, &service::TIMED_METRICS)
        .await?;
    let memory = service.memory()?;
    let stopped = service.stop(Duration::from_secs(30)).await?;
    pool.close().await;

    println!(
        "\n### HTTP commands (create + confirm) vs raw inserts of the same rows ({:?} per case, first {:?} unmeasured)\n",
        args.duration, args.warmup
    );
    println!(
        "| clients | commands | commands/s | p50 | p99 | p99/p50 | create p50 / p99 | confirm p50 / p99 | errors | raw inserts/s | raw p50 | raw p99 | commands/s ÷ raw/s | service RSS / peak |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (raw, http) in &rows {
        let ratio = if raw.per_sec() > 0.0 {
            format!("{:.2}", http.per_sec() / raw.per_sec())
        } else {
            "–".into()
        };
        let mem = http.memory.map_or_else(
            || "–".into(),
            |m| format!("{:.1} / {:.1} MiB", m.rss_mib(), m.hwm_mib()),
        );
        println!(
            "| {} | {} | {:.0} | {} | {} | {:.1} | {} / {} | {} / {} | {} | {:.0} | {} | {} | {} | {} |",
            http.clients,
            http.ops,
            http.per_sec(),
            ms(http.latency.p50),
            ms(http.latency.p99),
            http.tail_ratio(),
            ms(http.create.p50),
            ms(http.create.p99),
            ms(http.confirm.p50),
            ms(http.confirm.p99),
            http.errors,
            raw.per_sec(),
            ms(raw.latency.p50),
            ms(raw.latency.p99),
            ratio,
            mem,
        );
    }
    println!(
        "\nService memory at the end: VmRSS {:.1} MiB, VmHWM (peak) {:.1} MiB (target < 150 MiB: {}).",
        memory.rss_mib(),
        memory.hwm_mib(),
        if memory.hwm_mib() < 150.0 {
            "met"
        } else {
            "MISSED"
        }
    );
    if let Some((raw, http)) = rows.iter().find(|(_, h)| h.clients == 64) {
        let ratio = http.per_sec() / raw.per_sec().max(f64::MIN_POSITIVE);
        println!(
            "At 64 clients: commands/s ÷ raw inserts/s = {ratio:.2} (target ≥ 0.6: {}).",
            if ratio >= 0.6 { "met" } else { "MISSED" }
        );
    }
    println!(
        "Stored row sizes (mean bytes, payload / metadata): service events {:.0} / {:.0}, raw_events {:.0} / {:.0}.",
        sizes.0, sizes.1, sizes.2, sizes.3
    );
    println!("Service metrics (all cases, warm-ups included): series, count, mean:");
    for (series, count, mean) in &means {
        println!(
            "  {series}: {count:.0} × {}",
            ms(Duration::from_secs_f64(*mean))
        );
    }
    match stopped.status {
        Some(status) => println!(
            "SIGTERM: the service exited with {status} after {}.",
            ms(stopped.took)
        ),
        None => println!(
            "SIGTERM: the service did not exit within {}; killed.",
            ms(stopped.took)
        ),
    }
    Ok(())
}

fn print_case(kind: &str, result: &CaseResult) {
    let unit = if kind == "raw" { "inserts" } else { "commands" };
    println!(
        "{kind:<4} × {:>2} clients: {:>8.0} {unit}/s  p50 {:>9}  p99 {:>9}  max {:>9}  p99/p50 {:>5.1}  ({} {unit} in {:.2}s, {} errors)",
        result.clients,
        result.per_sec(),
        ms(result.latency.p50),
        ms(result.latency.p99),
        ms(result.latency.max),
        result.tail_ratio(),
        result.ops,
        result.elapsed.as_secs_f64(),
        result.errors,
    );
    let cpu = &result.cpu;
    let per_op = |secs: f64| secs * 1e6 / (result.ops.max(1) as f64);
    println!(
        "{:<16} machine CPU busy {:.0}% (all cores); service {:.2} cores ({:.0} µs/{}), bench process {:.2} cores ({:.0} µs/{})",
        "",
        cpu.machine_busy * 100.0,
        cpu.service_secs / cpu.wall_secs.max(f64::MIN_POSITIVE),
        per_op(cpu.service_secs),
        &unit[..unit.len() - 1],
        cpu.bench_secs / cpu.wall_secs.max(f64::MIN_POSITIVE),
        per_op(cpu.bench_secs),
        &unit[..unit.len() - 1],
    );
}

/// What every task of a case shares.
struct Window {
    measure_from: Instant,
    deadline: Instant,
    started: AtomicU64,
    errors: AtomicU64,
    max: u64,
}

impl Window {
    fn new(args: &Args) -> Self {
        let start = Instant::now();
        Self {
            measure_from: start + args.warmup,
            deadline: start + args.duration,
            started: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            max: args.max_requests,
        }
    }

    /// Whether a task may start `ops` more operations.
    fn go(&self, ops: u64) -> bool {
        Instant::now() < self.deadline
            && self.errors.load(Ordering::Relaxed) < MAX_ERRORS
            && self.started.fetch_add(ops, Ordering::Relaxed) < self.max
    }
}

/// What one task measured.
#[derive(Default)]
struct TaskOutcome {
    create: Vec<Duration>,
    confirm: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
    finished: Option<Instant>,
}

async fn http_case(
    client: &reqwest::Client,
    service: &Service,
    staff: &str,
    body: &str,
    clients: usize,
    args: &Args,
) -> anyhow::Result<CaseResult> {
    let window = Arc::new(Window::new(args));
    let mut tasks = JoinSet::new();
    for _ in 0..clients {
        let customer = service.customer_token(Uuid::now_v7())?;
        tasks.spawn(http_client(
            client.clone(),
            service.base_url.clone(),
            service::bearer(&customer),
            service::bearer(staff),
            body.to_owned(),
            window.clone(),
        ));
    }
    let outcomes = join(tasks, args.duration).await?;
    let mut create = Vec::new();
    let mut confirm = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    let mut finished = window.measure_from;
    for outcome in outcomes {
        create.extend(outcome.create);
        confirm.extend(outcome.confirm);
        errors += outcome.errors;
        if first_error.is_none() {
            first_error = outcome.first_error;
        }
        finished = finished.max(outcome.finished.unwrap_or(finished));
    }
    let all: Vec<Duration> = create.iter().chain(&confirm).copied().collect();
    Ok(CaseResult {
        clients,
        ops: all.len() as u64,
        elapsed: finished.saturating_duration_since(window.measure_from),
        latency: Latency::of(all),
        create: Latency::of(create),
        confirm: Latency::of(confirm),
        errors,
        first_error,
        memory: None,
        cpu: CpuUse::default(),
    })
}

async fn http_client(
    client: reqwest::Client,
    base: String,
    customer: String,
    staff: String,
    body: String,
    window: Arc<Window>,
) -> anyhow::Result<TaskOutcome> {
    let mut outcome = TaskOutcome::default();
    let create_url = format!("{base}/orders");
    while window.go(2) {
        let started = Instant::now();
        let created = client
            .post(&create_url)
            .header("authorization", &customer)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        let id = match read(created, 201).await {
            Ok(bytes) => {
                let now = Instant::now();
                if started >= window.measure_from {
                    outcome.create.push(now - started);
                }
                outcome.finished = Some(now);
                service::order_id(&bytes)?
            }
            Err(error) => {
                failed(&window, &mut outcome, error);
                continue;
            }
        };
        let started = Instant::now();
        let confirmed = client
            .post(format!("{base}/orders/{id}/confirm"))
            .header("authorization", &staff)
            .send()
            .await;
        match read(confirmed, 200).await {
            Ok(_) => {
                let now = Instant::now();
                if started >= window.measure_from {
                    outcome.confirm.push(now - started);
                }
                outcome.finished = Some(now);
            }
            Err(error) => failed(&window, &mut outcome, error),
        }
    }
    Ok(outcome)
}

fn failed(window: &Window, outcome: &mut TaskOutcome, error: String) {
    window.errors.fetch_add(1, Ordering::Relaxed);
    outcome.errors += 1;
    outcome.first_error.get_or_insert(error);
}

/// The body of a response with status `expected`, or what went wrong.
async fn read(
    response: reqwest::Result<reqwest::Response>,
    expected: u16,
) -> Result<Vec<u8>, String> {
    let response = response.map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| format!("reading the response failed: {e}"))?;
    if status.as_u16() == expected {
        Ok(bytes.to_vec())
    } else {
        Err(format!(
            "{status}: {}",
            String::from_utf8_lossy(&bytes)
                .chars()
                .take(300)
                .collect::<String>()
        ))
    }
}

async fn join(
    mut tasks: JoinSet<anyhow::Result<TaskOutcome>>,
    duration: Duration,
) -> anyhow::Result<Vec<TaskOutcome>> {
    let grace = duration + Duration::from_secs(90);
    let mut outcomes = Vec::new();
    let collect = async {
        while let Some(joined) = tasks.join_next().await {
            outcomes.push(joined.context("a client task panicked")??);
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(grace, collect)
        .await
        .with_context(|| format!("the clients did not finish within {grace:?}"))??;
    Ok(outcomes)
}

const RAW_INSERT: &str = "INSERT INTO raw_events \
    (event_id, aggregate_id, aggregate_type, version, event_type, schema_version, payload, metadata) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// The two rows a create + confirm stores, as the service builds them (`commands/codec.rs`).
fn order_rows(items: usize, customer: Uuid) -> anyhow::Result<(Uuid, [(OrderEvent, Value); 2])> {
    let order_id = Uuid::now_v7();
    let eur = domain::Currency::new("EUR")?;
    let lines = (1..=items)
        .map(|i| {
            OrderItem::new(
                Uuid::now_v7(),
                &format!("SKU-{i:03}"),
                2,
                1050 + i as i64,
                eur.clone(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let total: i64 = lines
        .iter()
        .map(|l| l.line_total().map(|m| m.amount_minor()).unwrap_or_default())
        .sum();
    let created = OrderEvent::Created(OrderCreated {
        order_id,
        customer_id: customer,
        currency: eur.clone(),
        items: lines,
        total: domain::Money::new(total, eur),
        shipping_address: None,
        contact: None,
    });
    let metadata = |user: String| {
        let request = Uuid::now_v7();
        serde_json::to_value(
            EventMetadata::new(request, Utc::now())
                .with_causation(request)
                .with_user(user),
        )
    };
    Ok((
        order_id,
        [
            (created, metadata(customer.to_string())?),
            (
                OrderEvent::Confirmed(OrderConfirmed {}),
                metadata("bench".into())?,
            ),
        ],
    ))
}

async fn raw_case(pool: &PgPool, clients: usize, args: &Args) -> anyhow::Result<CaseResult> {
    let window = Arc::new(Window::new(args));
    let mut tasks = JoinSet::new();
    for _ in 0..clients {
        tasks.spawn(raw_writer(pool.clone(), args.items, window.clone()));
    }
    let outcomes = join(tasks, args.duration).await?;
    let mut latencies = Vec::new();
    let mut finished = window.measure_from;
    for outcome in outcomes {
        latencies.extend(outcome.create);
        finished = finished.max(outcome.finished.unwrap_or(finished));
    }
    Ok(CaseResult {
        clients,
        ops: latencies.len() as u64,
        elapsed: finished.saturating_duration_since(window.measure_from),
        latency: Latency::of(latencies),
        create: Latency::default(),
        confirm: Latency::default(),
        errors: 0,
        first_error: None,
        memory: None,
        cpu: CpuUse::default(),
    })
}

async fn raw_writer(
    pool: PgPool,
    items: usize,
    window: Arc<Window>,
) -> anyhow::Result<TaskOutcome> {
    let mut outcome = TaskOutcome::default();
    let customer = Uuid::now_v7();
    'orders: loop {
        let (order_id, rows) = order_rows(items, customer)?;
        for (version, (event, metadata)) in (1_i64..).zip(rows) {
            if !window.go(1) {
                break 'orders;
            }
            let started = Instant::now();
            sqlx::query(RAW_INSERT)
                .bind(Uuid::now_v7())
                .bind(order_id)
                .bind("Order")
                .bind(version)
                .bind(event.event_type())
                .bind(i32::try_from(event.schema_version())?)
                .bind(event.to_payload())
                .bind(metadata)
                .execute(&pool)
                .await
                .context("raw insert failed")?;
            let now = Instant::now();
            if started >= window.measure_from {
                outcome.create.push(now - started);
            }
            outcome.finished = Some(now);
        }
    }
    Ok(outcome)
}

/// Mean payload and metadata sizes (bytes of their JSON text) in `events` and `raw_events`.
async fn stored_sizes(pool: &PgPool) -> anyhow::Result<(f64, f64, f64, f64)> {
    sqlx::query_as(
        "SELECT (SELECT COALESCE(AVG(octet_length(payload::text)), 0)::float8 FROM events),
                (SELECT COALESCE(AVG(octet_length(metadata::text)), 0)::float8 FROM events),
                (SELECT COALESCE(AVG(octet_length(payload::text)), 0)::float8 FROM raw_events),
                (SELECT COALESCE(AVG(octet_length(metadata::text)), 0)::float8 FROM raw_events)",
    )
    .fetch_one(pool)
    .await
    .context("cannot measure stored row sizes")
}

async fn print_settings(pool: &PgPool, pool_size: u32) -> anyhow::Result<()> {
    let setting = |name: &'static str| async move {
        sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!("SHOW {name}")))
            .fetch_one(pool)
            .await
            .with_context(|| format!("cannot read setting {name}"))
    };
    println!(
        "PostgreSQL {}; synchronous_commit={} fsync={} shared_buffers={}; raw pool {pool_size} connections; {} CPUs",
        setting("server_version").await?,
        setting("synchronous_commit").await?,
        setting("fsync").await?,
        setting("shared_buffers").await?,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    Ok(())
}
