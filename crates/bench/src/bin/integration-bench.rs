//! `integration-bench`: consumers without Kafka, each measured against a baseline in the same run.
//!
//! Against one throw-away PostgreSQL database (`orders_bench_<uuid>`, dropped at the end), the
//! release service as a child process, a tansu broker and an HTTP receiver in this process that
//! answers 204 at once:
//!
//! 1. **Webhooks against the Kafka relay.** `--events` orders are created over HTTP with the
//!    service running without Kafka; it is restarted with `KAFKA_BROKERS` while the benchmark
//!    holds the relay's lease, so the relay waits with a ready producer; the benchmark lets go and
//!    the relay publishes the backlog from position 0 (its rate: events ÷ the time from the
//!    release to its checkpoint covering them). Then a webhook endpoint is registered and replayed from 0 (its
//!    rate: events ÷ the time from the replay to the receiver having all). Ratio webhook ÷ relay.
//!    Then `--latency-events` single orders at `--rate`/s: commit → receiver p50/p99 (the
//!    event's `recorded_at` to its arrival, one clock).
//! 2. **Live streams.** Commands/s with `--writers` clients for `--duration` without subscribers;
//!    then `--subscribers` clients open `GET /feed/stream` (the service's memory before and after
//!    gives the memory per subscriber) and the same load runs again while they read: commands/s
//!    (target: at most 10 % fewer), events delivered to all subscribers per second, and commit →
//!    client p50/p99 on `--sampled` of them.
//!
//! ```text
//! cargo build --release -p orders
//! cargo run --release -p bench --bin integration-bench -- --events 5000 --subscribers 1000
//! ```

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use bench::cli::parse_duration;
use bench::db::BenchDatabase;
use bench::service::{self, CpuMark, Memory, Service, ServiceOptions};
use bench::stats::Latency;
use chrono::{DateTime, Utc};
use clap::Parser;
use outbox::lease::advisory_lock_name;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, PgPool};
use test_support::tansu::Tansu;
use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

const TOPIC: &str = "orders.integration-bench";

/// Flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "integration-bench",
    about = "Webhooks vs the Kafka relay; live streams with many subscribers"
)]
struct Args {
    /// Admin URL of the PostgreSQL server (a user that may CREATE DATABASE).
    #[arg(long, env = "TEST_DATABASE_URL", hide_env_values = true, default_value = test_support::postgres::DEFAULT_SERVER_URL)]
    server_url: String,
    /// The service binary (release build).
    #[arg(long)]
    orders_bin: Option<std::path::PathBuf>,
    /// Orders in the backlog that the relay and the webhook deliver.
    #[arg(long, default_value_t = 5_000)]
    events: usize,
    /// Orders created one at a time for the commit → receiver delay.
    #[arg(long, default_value_t = 300)]
    latency_events: usize,
    /// Their rate per second.
    #[arg(long, default_value_t = 50)]
    rate: u64,
    /// Stream subscribers.
    #[arg(long, default_value_t = 1_000)]
    subscribers: usize,
    /// Subscribers whose commit → client delay is measured (every one counts events).
    #[arg(long, default_value_t = 20)]
    sampled: usize,
    /// Command clients during the stream measurement.
    #[arg(long, default_value_t = 8)]
    writers: usize,
    /// Length of each command load.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 900)]
    max_seconds: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let database = BenchDatabase::create(&args.server_url).await?;
    eprintln!("benchmark database {}", database.name);
    let outcome =
        tokio::time::timeout(Duration::from_secs(args.max_seconds), run(&args, &database))
            .await
            .unwrap_or_else(|_| {
                Err(anyhow::anyhow!(
                    "gave up after {}s (--max-seconds)",
                    args.max_seconds
                ))
            });
    if let Err(error) = database.drop_database().await {
        eprintln!("warning: {error:#}");
    }
    outcome
}

/// What the receiver got: how many deliveries, and each one's commit → arrival delay.
#[derive(Default)]
struct Received {
    count: AtomicU64,
    delays: Mutex<Vec<Duration>>,
}

async fn receive(State(received): State<Arc<Received>>, body: Bytes) -> StatusCode {
    let arrived = Utc::now();
    if let Some(delay) = commit_delay(&body, arrived) {
        received.delays.lock().expect("not poisoned").push(delay);
    }
    received.count.fetch_add(1, Ordering::Relaxed);
    StatusCode::NO_CONTENT
}

/// From the message's `recorded_at` (the commit) to `arrived`.
fn commit_delay(message: &[u8], arrived: DateTime<Utc>) -> Option<Duration> {
    let value: Value = serde_json::from_slice(message).ok()?;
    let recorded: DateTime<Utc> = value["recorded_at"].as_str()?.parse().ok()?;
    (arrived - recorded).to_std().ok()
}

async fn start_receiver() -> anyhow::Result<(String, Arc<Received>)> {
    let received = Arc::new(Received::default());
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, received))
}

fn options(
    args: &Args,
    database: &BenchDatabase,
    work: &std::path::Path,
    kafka: Option<&str>,
) -> ServiceOptions {
    let mut env = vec![(
        "ORDERS_WEBHOOKS_ALLOW_LOOPBACK".to_owned(),
        "true".to_owned(),
    )];
    if let Some(brokers) = kafka {
        env.push(("KAFKA_BROKERS".to_owned(), brokers.to_owned()));
        env.push(("KAFKA_TOPIC".to_owned(), TOPIC.to_owned()));
    }
    ServiceOptions {
        binary: args
            .orders_bin
            .clone()
            .unwrap_or_else(service::default_binary),
        database_url: database.url.clone(),
        max_connections: 16,
        log: "warn".to_owned(),
        work_dir: work.to_path_buf(),
        env,
    }
}

async fn run(args: &Args, database: &BenchDatabase) -> anyhow::Result<()> {
    let work = service::scratch_dir("integration-bench");
    let pool = PgPool::connect(&database.url).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;

    // The backlog, written with the service running without Kafka.
    let first = Service::start(&options(args, database, &work.join("1"), None)).await?;
    let written = create_orders(&client, &first, args.writers, None, Some(args.events)).await?;
    first.stop(Duration::from_secs(20)).await?;
    let head = wait_head(&pool, written as i64).await?;
    println!("backlog: {head} events");

    let broker = Tansu::start();
    broker.create_topic(TOPIC);
    // The benchmark holds the relay's lease while the service starts, so that its relay waits
    // as a standby with a ready producer (as at a takeover), then lets go and times from there
    // to the checkpoint covering the backlog.
    let name = outbox::checkpoint_name(TOPIC);
    let mut holder = PgConnection::connect(&database.url).await?;
    sqlx::query("SELECT pg_advisory_lock(hashtextextended($1, 0))")
        .bind(advisory_lock_name(&name))
        .execute(&mut holder)
        .await?;
    let service = Service::start(&options(
        args,
        database,
        &work.join("2"),
        Some(&broker.bootstrap()),
    ))
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before: Option<i64> =
        sqlx::query_scalar("SELECT position FROM projections WHERE name = $1")
            .bind(&name)
            .fetch_optional(&pool)
            .await?;
    anyhow::ensure!(
        before.unwrap_or(0) == 0,
        "the relay published while the benchmark held its lease"
    );
    let released = Instant::now();
    holder.close().await?;
    catch_up(&pool, &name, head).await?;
    let relay = (head, released.elapsed());
    let relay_rate = relay.0 as f64 / relay.1.as_secs_f64();

    let (url, received) = start_receiver().await?;
    let staff = service.staff_token()?;
    let endpoint: Value = client
        .post(format!("{}/webhooks", service.base_url()))
        .bearer_auth(&staff)
        .json(&json!({ "url": url }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = endpoint["id"].as_str().context("no endpoint id")?;
    let started = Instant::now();
    client
        .post(format!("{}/webhooks/{id}/replay", service.base_url()))
        .bearer_auth(&staff)
        .json(&json!({ "after": 0 }))
        .send()
        .await?
        .error_for_status()?;
    while received.count.load(Ordering::Relaxed) < head {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "the webhook did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let webhook_rate = head as f64 / started.elapsed().as_secs_f64();
    println!(
        "delivery of {head} events: Kafka relay {relay_rate:.0} events/s, webhooks {webhook_rate:.0} events/s, ratio {:.2}",
        webhook_rate / relay_rate
    );

    received.delays.lock().expect("not poisoned").clear();
    let paced = create_paced(&client, &service, args.latency_events, args.rate).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.count.load(Ordering::Relaxed) < head + paced as u64 && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let webhook_latency = Latency::of(received.delays.lock().expect("not poisoned").clone());
    println!(
        "commit → webhook receiver ({paced} orders at {}/s): p50 {:.1?}  p99 {:.1?}",
        args.rate, webhook_latency.p50, webhook_latency.p99
    );

    // Streams: the same command load without and with subscribers reading the live feed.
    let mark = CpuMark::now(Some(service.pid()))?;
    let without = create_orders(&client, &service, args.writers, Some(args.duration), None).await?;
    let without_cpu = mark.since(Some(service.pid()))?;
    let without_rate = without as f64 / args.duration.as_secs_f64();
    let before = Memory::of(service.pid())?;
    let streams = Subscribers::open(&service, &staff, args.subscribers, args.sampled).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = Memory::of(service.pid())?;
    let per_subscriber_kib =
        after.rss_kib.saturating_sub(before.rss_kib) as f64 / args.subscribers as f64;
    let delivered_before = streams.events.load(Ordering::Relaxed);
    let mark = CpuMark::now(Some(service.pid()))?;
    let with = create_orders(&client, &service, args.writers, Some(args.duration), None).await?;
    let with_cpu = mark.since(Some(service.pid()))?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let delivered = streams.events.load(Ordering::Relaxed) - delivered_before;
    let with_rate = with as f64 / args.duration.as_secs_f64();
    let stream_latency = streams.latency();
    let cut_off = streams.ended.load(Ordering::Relaxed);
    println!(
        "commands: {without_rate:.0}/s without subscribers, {with_rate:.0}/s with {} (ratio {:.2}, target >= 0.90)",
        args.subscribers,
        with_rate / without_rate
    );
    println!(
        "CPU seconds per second: without subscribers service {:.2}, benchmark {:.2} (machine {:.0} % busy); with them service {:.2}, benchmark {:.2} (machine {:.0} % busy)",
        without_cpu.service_secs / without_cpu.wall_secs,
        without_cpu.bench_secs / without_cpu.wall_secs,
        without_cpu.machine_busy * 100.0,
        with_cpu.service_secs / with_cpu.wall_secs,
        with_cpu.bench_secs / with_cpu.wall_secs,
        with_cpu.machine_busy * 100.0,
    );
    println!(
        "streams: {:.0} events/s delivered to {} subscribers ({} events each expected), commit → client p50 {:.1?} p99 {:.1?}; service memory {:.1} → {:.1} MiB, {per_subscriber_kib:.1} KiB per subscriber; {cut_off} streams ended early",
        delivered as f64 / (args.duration.as_secs_f64() + 1.0),
        args.subscribers,
        with,
        stream_latency.p50,
        stream_latency.p99,
        before.rss_mib(),
        after.rss_mib(),
    );
    println!();
    println!("| measure | baseline in the same run | result |");
    println!("|---|---|---|");
    println!(
        "| webhook delivery, {head} events | Kafka relay {relay_rate:.0} events/s | {webhook_rate:.0} events/s (**{:.2}**) |",
        webhook_rate / relay_rate
    );
    println!(
        "| commit → webhook receiver | | p50 {:.1?}, p99 {:.1?} |",
        webhook_latency.p50, webhook_latency.p99
    );
    println!(
        "| commands with {} stream subscribers | {without_rate:.0}/s without | {with_rate:.0}/s (**{:.2}**) |",
        args.subscribers,
        with_rate / without_rate
    );
    println!(
        "| stream delivery | | {:.0} events/s; p50 {:.1?}, p99 {:.1?}; {per_subscriber_kib:.1} KiB per subscriber |",
        delivered as f64 / (args.duration.as_secs_f64() + 1.0),
        stream_latency.p50,
        stream_latency.p99
    );
    streams.close();
    service.stop(Duration::from_secs(20)).await?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// Creates orders with `writers` clients, for `duration` or until `total`; how many were created.
async fn create_orders(
    client: &reqwest::Client,
    service: &Service,
    writers: usize,
    duration: Option<Duration>,
    total: Option<usize>,
) -> anyhow::Result<usize> {
    let created = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..writers {
        let (client, created) = (client.clone(), created.clone());
        let url = format!("{}/orders", service.base_url());
        let token = service.customer_token(Uuid::now_v7())?;
        tasks.spawn(async move {
            loop {
                if duration.is_some_and(|d| started.elapsed() >= d) {
                    return Ok::<_, anyhow::Error>(());
                }
                if total.is_some_and(|t| created.fetch_add(1, Ordering::Relaxed) >= t as u64) {
                    return Ok(());
                }
                client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(service::create_order_body(2))
                    .send()
                    .await?
                    .error_for_status()?;
                if total.is_none() {
                    created.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let count = created.load(Ordering::Relaxed) as usize;
    Ok(total.map_or(count, |t| count.min(t)))
}

/// One order at a time, `rate` per second; how many.
async fn create_paced(
    client: &reqwest::Client,
    service: &Service,
    count: usize,
    rate: u64,
) -> anyhow::Result<usize> {
    let token = service.customer_token(Uuid::now_v7())?;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
    for _ in 0..count {
        tick.tick().await;
        client
            .post(format!("{}/orders", service.base_url()))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(service::create_order_body(2))
            .send()
            .await?
            .error_for_status()?;
    }
    Ok(count)
}

/// Waits until the feed has numbered `events` events; the head.
async fn wait_head(pool: &PgPool, events: i64) -> anyhow::Result<u64> {
    let started = Instant::now();
    loop {
        let head: Option<i64> = sqlx::query_scalar("SELECT max(position) FROM event_positions")
            .fetch_one(pool)
            .await?;
        if head.unwrap_or(0) >= events {
            return Ok(u64::try_from(head.unwrap_or(0))?);
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "the feed did not number the backlog"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls a checkpoint row until it reaches `head`; the events it moved over and how long that
/// took, from the first checkpoint it stored (so a consumer's start-up is not counted).
async fn catch_up(pool: &PgPool, name: &str, head: u64) -> anyhow::Result<(u64, Duration)> {
    let started = Instant::now();
    let mut first: Option<(u64, Instant)> = None;
    loop {
        let position: Option<i64> =
            sqlx::query_scalar("SELECT position FROM projections WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await?;
        let position = u64::try_from(position.unwrap_or(0))?;
        if position > 0 && first.is_none() {
            first = Some((position, Instant::now()));
        }
        if position >= head
            && let Some((from, at)) = first
        {
            return Ok((head - from, at.elapsed()));
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "{name} did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Clients reading `GET /feed/stream`.
struct Subscribers {
    events: Arc<AtomicU64>,
    ended: Arc<AtomicU64>,
    delays: Arc<Mutex<Vec<Duration>>>,
    stop: Arc<AtomicBool>,
    tasks: JoinSet<()>,
}

impl Subscribers {
    async fn open(
        service: &Service,
        token: &str,
        count: usize,
        sampled: usize,
    ) -> anyhow::Result<Self> {
        let events = Arc::new(AtomicU64::new(0));
        let ended = Arc::new(AtomicU64::new(0));
        let delays = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let connected = Arc::new(AtomicU64::new(0));
        let mut tasks = JoinSet::new();
        // One connection per subscriber, as separate clients would have.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()?;
        for n in 0..count {
            let (client, events, ended, delays, stop, connected) = (
                client.clone(),
                events.clone(),
                ended.clone(),
                delays.clone(),
                stop.clone(),
                connected.clone(),
            );
            let url = format!("{}/feed/stream", service.base_url());
            let token = token.to_owned();
            tasks.spawn(async move {
                let Ok(mut response) = client.get(&url).bearer_auth(&token).send().await else {
                    ended.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                connected.fetch_add(1, Ordering::Relaxed);
                // Sampled subscribers parse each message for its delay; the others only count
                // messages (a `data:` line each), so that the clients cost this machine little.
                let mut partial = Vec::new();
                let mut carry = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    match response.chunk().await {
                        Ok(Some(chunk)) if n >= sampled => {
                            carry.extend_from_slice(&chunk);
                            let found = memchr::memmem::find_iter(&carry, b"data: ").count();
                            events.fetch_add(found as u64, Ordering::Relaxed);
                            let keep = carry.len().saturating_sub(5);
                            carry.drain(..keep);
                        }
                        Ok(Some(chunk)) => {
                            let arrived = Utc::now();
                            partial.extend_from_slice(&chunk);
                            while let Some(end) = memchr::memmem::find(&partial, b"\n\n") {
                                let message: Vec<u8> = partial.drain(..end + 2).collect();
                                if let Some(at) = memchr::memmem::find(&message, b"data: ") {
                                    events.fetch_add(1, Ordering::Relaxed);
                                    if let Some(delay) = commit_delay(&message[at + 6..], arrived) {
                                        delays.lock().expect("not poisoned").push(delay);
                                    }
                                }
                            }
                        }
                        _ => {
                            ended.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            });
        }
        let started = Instant::now();
        while (connected.load(Ordering::Relaxed) + ended.load(Ordering::Relaxed)) < count as u64 {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "subscribers did not connect"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self {
            events,
            ended,
            delays,
            stop,
            tasks,
        })
    }

    fn latency(&self) -> Latency {
        Latency::of(self.delays.lock().expect("not poisoned").clone())
    }

    fn close(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.tasks.abort_all();
    }
}
