//! `command-bench`: whole commands through `CommandHandler`, against raw single-row inserts of the
//! same rows, in one process and one run.
//!
//! Each of N workers loops create → confirm → ship on a new order (`--items` lines, default 3):
//! three commands, three events. Cases, at every `--workers` count (default 1, 16, 64), each for
//! `--duration` (default 8s):
//!
//! - `raw`: the same three rows as single-row `INSERT`s into `raw_events` (a `LIKE events
//!   INCLUDING ALL` copy), each its own commit, one dedicated connection per worker: the fastest
//!   way to store the rows one at a time;
//! - `command`: `CommandHandler::execute` on the PostgreSQL store with the service's defaults
//!   (group commit and the state cache on);
//! - `command-uncached`: the same without the state cache (every confirm and ship loads);
//! - `command-alone`: the same with group commit off (each append its own statement and commit);
//! - `sqlite-raw` / `sqlite-command` (unless `--no-sqlite`): the same on the embedded SQLite store
//!   (WAL, `synchronous = FULL`) against raw inserts into a copy of its table on one connection.
//!
//! It prints events/s, commands/s, p50/p99 per command, the ratio to the raw case of the same
//! backend and worker count, and errors by kind; then a markdown table.
//!
//! `--prefill N` (e.g. 1000000) then measures cost against store size: command latency at 1 worker
//! on the empty store, then again after N events were bulk-loaded into the store, with autovacuum
//! off and never analysed, and prints the p50 ratio (target ≤ 1.2).
//!
//! ```text
//! cargo run --release -p bench --bin command-bench -- --duration 8s
//! cargo run --release -p bench --bin command-bench -- --workers 1 --prefill 1000000 --no-sqlite
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bench::db::{BenchDatabase, interruptible};
use bench::stats::Latency;
use chrono::Utc;
use clap::Parser;
use domain::{
    AddressInput, Contact, ContactInput, CreateOrder, Currency, DomainEvent, EventMetadata,
    OrderAggregate, OrderCommand, OrderConfirmed, OrderCreated, OrderEvent, OrderItem,
    OrderShipped, ShipOrder, ShippingAddress,
};
use event_store::EventStore;
use event_store_postgres::{PostgresEventStore, PostgresOptions};
use event_store_sqlite::{SqliteEventStore, SqliteOptions};
use orders::commands::{CommandContext, CommandError, CommandHandler, HandlerConfig};
use personal_data::{KeyRing, KeyTable, MasterKey};
use serde_json::Value;
use sqlx::{Connection, PgConnection, SqliteConnection};
use store::Db;
use tokio::sync::Mutex;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(about = "Commands through CommandHandler against raw single-row inserts")]
struct Args {
    /// PostgreSQL server (a user that may CREATE DATABASE).
    #[arg(
        long,
        env = "TEST_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    server_url: String,
    /// Worker counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    workers: Vec<usize>,
    /// Length of each case.
    #[arg(long, value_parser = bench::cli::parse_duration, default_value = "8s")]
    duration: Duration,
    /// Order lines per order.
    #[arg(long, default_value_t = 3)]
    items: usize,
    /// Skip the SQLite cases.
    #[arg(long)]
    no_sqlite: bool,
    /// Skip the group-commit-off case.
    #[arg(long)]
    no_alone: bool,
    /// After the cases, bulk-load this many events and compare command latency with the empty
    /// store (0: skip).
    #[arg(long, default_value_t = 0)]
    prefill: u64,
    /// Group-commit batches in flight at once (default: the store's default).
    #[arg(long)]
    in_flight: Option<usize>,
    /// Keep the benchmark database.
    #[arg(long)]
    keep_database: bool,
    /// Orders are placed by this many customers, at random (0: a new customer per order, so
    /// that every sealed creation also makes a data key).
    #[arg(long, default_value_t = 1000)]
    customers: u64,
}

/// What one case measured.
#[derive(Debug, Clone)]
struct CaseResult {
    name: &'static str,
    workers: usize,
    events: u64,
    commands: u64,
    elapsed: Duration,
    latency: Latency,
    errors: BTreeMap<String, u64>,
}

impl CaseResult {
    fn events_per_sec(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
}

/// What one worker measured.
#[derive(Default)]
struct WorkerTally {
    events: u64,
    commands: u64,
    samples: Vec<Duration>,
    errors: BTreeMap<String, u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let database = BenchDatabase::create(&args.server_url).await?;
    eprintln!("benchmark database {}", database.name);
    let outcome = interruptible(run(&args, &database)).await;
    database.finish(args.keep_database).await;
    outcome
}

async fn run(args: &Args, database: &BenchDatabase) -> anyhow::Result<()> {
    let mut options = PostgresOptions::default();
    if let (Some(group), Some(in_flight)) = (options.group_commit.as_mut(), args.in_flight) {
        group.in_flight = in_flight;
    }
    let with_group = PostgresEventStore::connect(&database.url, options).await?;
    with_group.migrate().await?;
    sqlx::raw_sql("CREATE TABLE raw_events (LIKE events INCLUDING ALL)")
        .execute(with_group.pool())
        .await?;
    let alone = PostgresEventStore::connect(
        &database.url,
        PostgresOptions {
            group_commit: None,
            ..PostgresOptions::default()
        },
    )
    .await?;
    let sqlite_dir = std::env::temp_dir().join(format!("command-bench-{}", Uuid::now_v7()));
    std::fs::create_dir_all(&sqlite_dir)?;
    let sqlite = if args.no_sqlite {
        None
    } else {
        let store =
            SqliteEventStore::open(sqlite_dir.join("orders.db"), SqliteOptions::default()).await?;
        store.migrate().await?;
        let mut raw = SqliteConnection::connect(&format!(
            "sqlite://{}?mode=rwc",
            sqlite_dir.join("raw.db").display()
        ))
        .await?;
        sqlx::raw_sql(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
             CREATE TABLE raw_events (position INTEGER PRIMARY KEY AUTOINCREMENT,
                 event_id TEXT NOT NULL UNIQUE, aggregate_id TEXT NOT NULL, aggregate_type TEXT NOT NULL,
                 version INTEGER NOT NULL, event_type TEXT NOT NULL, schema_version INTEGER NOT NULL,
                 payload TEXT NOT NULL, metadata TEXT NOT NULL,
                 recorded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
                 UNIQUE (aggregate_id, version));",
        )
        .execute(&mut raw)
        .await?;
        Some((store, Arc::new(Mutex::new(raw))))
    };

    let master = MasterKey::generate();
    let pg_ring = KeyRing::new(
        KeyTable::new(Db::Postgres(with_group.pool().clone())),
        master.clone(),
    );
    let sqlite_ring = sqlite.as_ref().map(|(store, _)| {
        KeyRing::new(
            KeyTable::new(Db::Sqlite {
                writer: store.writer().clone(),
                reader: store.reader().clone(),
            }),
            master,
        )
    });
    let mut results = Vec::new();
    for &workers in &args.workers {
        let raw = raw_case(&database.url, workers, args).await?;
        print_case(&raw, None);
        let command = command_case("command", &with_group, workers, args, None).await?;
        print_case(&command, Some(&raw));
        settle(&with_group).await?;
        results.push(raw.clone());
        results.push(command);
        // The same with personal data sealed (the service's only mode): encryption on ÷ off.
        let sealed =
            command_case("command-sealed", &with_group, workers, args, Some(&pg_ring)).await?;
        print_case(&sealed, Some(&raw));
        settle(&with_group).await?;
        results.push(sealed);
        let uncached = command_case("command-uncached", &with_group, workers, args, None).await?;
        print_case(&uncached, Some(&raw));
        settle(&with_group).await?;
        results.push(uncached);
        if !args.no_alone {
            let command = command_case("command-alone", &alone, workers, args, None).await?;
            print_case(&command, Some(&raw));
            settle(&with_group).await?;
            results.push(command);
        }
        if let Some((store, raw_connection)) = &sqlite {
            let raw = sqlite_raw_case(raw_connection.clone(), workers, args).await?;
            print_case(&raw, None);
            let command = command_case("sqlite-command", store, workers, args, None).await?;
            print_case(&command, Some(&raw));
            results.push(raw);
            results.push(command);
            if let Some(ring) = &sqlite_ring {
                let sealed =
                    command_case("sqlite-command-sealed", store, workers, args, Some(ring)).await?;
                print_case(&sealed, Some(&results[results.len() - 2]));
                results.push(sealed);
            }
        }
    }
    println!("\n{}", markdown(&results));

    if args.prefill > 0 {
        prefill_comparison(&with_group, args).await?;
    }
    let _ = std::fs::remove_dir_all(&sqlite_dir);
    Ok(())
}

fn print_case(result: &CaseResult, baseline: Option<&CaseResult>) {
    let ratio = baseline
        .map(|raw| {
            format!(
                "  ratio {:.2}",
                result.events_per_sec() / raw.events_per_sec()
            )
        })
        .unwrap_or_default();
    eprintln!(
        "{:>15} × {:>2}: {:>8.0} events/s {:>8.0} commands/s  p50 {:>7.3} ms  p99 {:>7.3} ms{ratio}  errors {:?}",
        result.name,
        result.workers,
        result.events_per_sec(),
        result.commands as f64 / result.elapsed.as_secs_f64(),
        result.latency.p50.as_secs_f64() * 1e3,
        result.latency.p99.as_secs_f64() * 1e3,
        result.errors,
    );
}

/// Results as a markdown table; ratios against the raw case of the same backend and workers.
fn markdown(results: &[CaseResult]) -> String {
    let mut out = String::from(
        "| case | workers | events/s | p50 ms | p99 ms | ÷ raw | errors |\n|---|---:|---:|---:|---:|---:|---|\n",
    );
    for result in results {
        let raw_name = if result.name.starts_with("sqlite") {
            "sqlite-raw"
        } else {
            "raw"
        };
        let raw = results
            .iter()
            .find(|r| r.name == raw_name && r.workers == result.workers);
        let ratio = match raw {
            Some(raw) if raw.name != result.name => {
                format!("{:.2}", result.events_per_sec() / raw.events_per_sec())
            }
            _ => "1".into(),
        };
        let errors: u64 = result.errors.values().sum();
        out.push_str(&format!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {} | {} |\n",
            result.name,
            result.workers,
            result.events_per_sec(),
            result.latency.p50.as_secs_f64() * 1e3,
            result.latency.p99.as_secs_f64() * 1e3,
            ratio,
            errors
        ));
    }
    out
}

/// The three commands of one order's run, by a customer of `customers` (0: a new one).
fn commands(items: usize, customers: u64) -> anyhow::Result<(Uuid, [OrderCommand; 3])> {
    let order_id = Uuid::now_v7();
    // A v7 id ends in random bits: they pick the customer.
    let customer_id = match customers {
        0 => Uuid::now_v7(),
        n => Uuid::from_u128(1 + u128::from((order_id.as_u128() as u64) % n)),
    };
    let eur = Currency::new("EUR")?;
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
    Ok((
        order_id,
        [
            OrderCommand::Create(CreateOrder {
                order_id,
                customer_id,
                currency: eur,
                items: lines,
                shipping_address: Some(address()?),
                contact: Some(Contact::new(ContactInput {
                    email: "ada@example.com".into(),
                    phone: Some("+49 30 1234567".into()),
                })?),
            }),
            OrderCommand::Confirm(Default::default()),
            OrderCommand::Ship(ShipOrder {
                carrier: Some("DHL".into()),
                tracking_number: Some("JD014600006281234567".into()),
            }),
        ],
    ))
}

/// The rows the three commands store (payload and metadata as `commands/codec.rs` builds them).
/// One stored row: event type, payload, metadata.
type Row = (&'static str, Value, Value);

/// A typical address: its fields are what a sealed creation encrypts.
fn address() -> anyhow::Result<ShippingAddress> {
    Ok(ShippingAddress::new(AddressInput {
        recipient_name: "Ada Lovelace".into(),
        line1: "Unter den Linden 1".into(),
        line2: Some("3rd floor".into()),
        postal_code: "10117".into(),
        city: "Berlin".into(),
        country: "DE".into(),
    })?)
}

fn rows(items: usize) -> anyhow::Result<(Uuid, Vec<Row>)> {
    let (order_id, [create, _, _]) = commands(items, 0)?;
    let OrderCommand::Create(create) = create else {
        anyhow::bail!("the first command is a creation");
    };
    let total: i64 = create
        .items
        .iter()
        .map(|l| l.line_total().map(|m| m.amount_minor()).unwrap_or_default())
        .sum();
    let events = [
        OrderEvent::Created(OrderCreated {
            order_id,
            customer_id: create.customer_id,
            currency: create.currency.clone(),
            items: create.items.clone(),
            total: domain::Money::new(total, create.currency),
            shipping_address: create.shipping_address.map(domain::Personal::Plain),
            contact: create.contact.map(domain::Personal::Plain),
        }),
        OrderEvent::Confirmed(OrderConfirmed {}),
        OrderEvent::Shipped(OrderShipped {
            carrier: Some("DHL".into()),
            tracking_number: Some("JD014600006281234567".into()),
        }),
    ];
    let mut out = Vec::new();
    for event in events {
        let metadata = serde_json::to_value(
            EventMetadata::new(Uuid::now_v7(), Utc::now()).with_user("bench".to_owned()),
        )?;
        out.push((event.event_type(), event.to_payload(), metadata));
    }
    Ok((order_id, out))
}

const RAW_INSERT: &str = "INSERT INTO raw_events \
    (event_id, aggregate_id, aggregate_type, version, event_type, schema_version, payload, metadata) \
    VALUES ($1, $2, 'Order', $3, $4, 1, $5, $6)";

async fn raw_case(url: &str, workers: usize, args: &Args) -> anyhow::Result<CaseResult> {
    let mut connections = Vec::new();
    for _ in 0..workers {
        connections.push(PgConnection::connect(url).await?);
    }
    let deadline = Instant::now() + args.duration;
    let items = args.items;
    let started = Instant::now();
    let tasks = connections.into_iter().map(|mut connection| {
        tokio::spawn(async move {
            let mut tally = WorkerTally::default();
            while Instant::now() < deadline {
                let (id, rows) = rows(items)?;
                for (version, (event_type, payload, metadata)) in rows.iter().enumerate() {
                    let start = Instant::now();
                    sqlx::query(RAW_INSERT)
                        .bind(Uuid::now_v7())
                        .bind(id)
                        .bind(version as i64 + 1)
                        .bind(*event_type)
                        .bind(payload)
                        .bind(metadata)
                        .execute(&mut connection)
                        .await?;
                    tally.samples.push(start.elapsed());
                    tally.events += 1;
                    tally.commands += 1;
                }
            }
            anyhow::Ok(tally)
        })
    });
    collect("raw", workers, started, tasks).await
}

async fn sqlite_raw_case(
    connection: Arc<Mutex<SqliteConnection>>,
    workers: usize,
    args: &Args,
) -> anyhow::Result<CaseResult> {
    let deadline = Instant::now() + args.duration;
    let items = args.items;
    let started = Instant::now();
    let tasks = (0..workers).map(|_| {
        let connection = connection.clone();
        tokio::spawn(async move {
            let mut tally = WorkerTally::default();
            while Instant::now() < deadline {
                let (id, rows) = rows(items)?;
                for (version, (event_type, payload, metadata)) in rows.iter().enumerate() {
                    let start = Instant::now();
                    let mut connection = connection.lock().await;
                    sqlx::query(
                        "INSERT INTO raw_events (event_id, aggregate_id, aggregate_type, version, \
                         event_type, schema_version, payload, metadata) VALUES (?1, ?2, 'Order', ?3, ?4, 1, ?5, ?6)",
                    )
                    .bind(Uuid::now_v7().to_string())
                    .bind(id.to_string())
                    .bind(version as i64 + 1)
                    .bind(*event_type)
                    .bind(payload.to_string())
                    .bind(metadata.to_string())
                    .execute(&mut *connection)
                    .await?;
                    drop(connection);
                    tally.samples.push(start.elapsed());
                    tally.events += 1;
                    tally.commands += 1;
                }
            }
            anyhow::Ok(tally)
        })
    });
    collect("sqlite-raw", workers, started, tasks).await
}

async fn command_case<S: EventStore + Clone + 'static>(
    name: &'static str,
    store: &S,
    workers: usize,
    args: &Args,
    ring: Option<&KeyRing>,
) -> anyhow::Result<CaseResult> {
    // `…-uncached` cases load every aggregate (no state cache), like a fresh process would.
    let config = if name.ends_with("-uncached") {
        HandlerConfig {
            state_cache: 0,
            ..HandlerConfig::default()
        }
    } else {
        HandlerConfig::default()
    };
    let mut handler = CommandHandler::new(store.clone(), config);
    if let Some(ring) = ring {
        handler = handler.with_key_ring(ring.clone());
    }
    let deadline = Instant::now() + args.duration;
    let items = args.items;
    let customers = args.customers;
    let started = Instant::now();
    let tasks = (0..workers).map(|_| {
        let handler = handler.clone();
        tokio::spawn(async move {
            let mut tally = WorkerTally::default();
            while Instant::now() < deadline {
                one_order(&handler, items, customers, &mut tally).await?;
            }
            anyhow::Ok(tally)
        })
    });
    collect(name, workers, started, tasks).await
}

/// Create, confirm and ship one new order, recording each command.
async fn one_order<S: EventStore>(
    handler: &CommandHandler<S>,
    items: usize,
    customers: u64,
    tally: &mut WorkerTally,
) -> anyhow::Result<()> {
    let (id, commands) = commands(items, customers)?;
    for command in commands {
        let context = CommandContext {
            user_id: Some("bench".into()),
            new_stream: matches!(command, OrderCommand::Create(_)),
            ..CommandContext::new()
        };
        let start = Instant::now();
        let outcome = handler
            .execute::<OrderAggregate>(id, command, &context, |_| Ok(()), |_, _| Value::Null)
            .await;
        tally.samples.push(start.elapsed());
        match outcome {
            Ok(_) => {
                tally.events += 1;
                tally.commands += 1;
            }
            Err(error) => {
                let kind = match error {
                    CommandError::Rejected(_) => "rejected",
                    CommandError::Conflict { .. } => "conflict",
                    CommandError::Store(_) => "store",
                    CommandError::Corrupt(_) => "corrupt",
                    _ => "other",
                };
                *tally.errors.entry(kind.to_owned()).or_default() += 1;
                return Ok(()); // give up on this order
            }
        }
    }
    Ok(())
}

async fn collect(
    name: &'static str,
    workers: usize,
    started: Instant,
    tasks: impl Iterator<Item = tokio::task::JoinHandle<anyhow::Result<WorkerTally>>>,
) -> anyhow::Result<CaseResult> {
    let tasks: Vec<_> = tasks.collect();
    let mut total = WorkerTally::default();
    for task in tasks {
        let tally = task.await.context("a worker panicked")??;
        total.events += tally.events;
        total.commands += tally.commands;
        total.samples.extend(tally.samples);
        for (kind, n) in tally.errors {
            *total.errors.entry(kind).or_default() += n;
        }
    }
    Ok(CaseResult {
        name,
        workers,
        events: total.events,
        commands: total.commands,
        elapsed: started.elapsed(),
        latency: Latency::of(total.samples),
        errors: total.errors,
    })
}

/// Waits until the sequencer has numbered every event (at most a minute).
async fn settle(store: &PostgresEventStore) -> anyhow::Result<()> {
    bench::db::settle(store.pool(), Duration::from_secs(60)).await?;
    Ok(())
}

/// Command latency at 1 worker on the (nearly) empty store, then after bulk-loading
/// `args.prefill` events (no ANALYZE; autovacuum is off on these machines).
async fn prefill_comparison(store: &PostgresEventStore, args: &Args) -> anyhow::Result<()> {
    let pool = store.pool();
    let events_before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(pool)
        .await?;
    // Uncached: every confirm and ship loads, which is what the store's size could slow down.
    let before = command_case("command-uncached", store, 1, args, None).await?;
    settle(store).await?;
    eprintln!("loading {} events (no ANALYZE) …", args.prefill);
    let load_started = Instant::now();
    let orders = args.prefill.div_ceil(3) as i64;
    // Random stream ids (so the stream index is as scattered as in production), three events
    // each, numbered straight into the feed.
    let mut batch_start = 0_i64;
    while batch_start < orders {
        let batch = (orders - batch_start).min(100_000);
        sqlx::query(
            "WITH ins AS (
                 INSERT INTO events (event_id, aggregate_id, aggregate_type, version, event_type,
                                     schema_version, payload, metadata)
                 SELECT gen_random_uuid(), a.id, 'Order', v,
                        (ARRAY['OrderCreated','OrderConfirmed','OrderShipped'])[v], 1,
                        '{\"bulk\": true}'::jsonb, '{}'::jsonb
                 FROM (SELECT gen_random_uuid() AS id FROM generate_series(1, $1)) a,
                      generate_series(1, 3) v
                 RETURNING seq
             )
             INSERT INTO event_positions (position, seq)
             SELECT (SELECT COALESCE(MAX(position), 0) FROM event_positions)
                    + row_number() OVER (ORDER BY seq), seq FROM ins",
        )
        .bind(batch)
        .execute(pool)
        .await
        .context("bulk load failed")?;
        batch_start += batch;
    }
    let analysed: Option<chrono::DateTime<Utc>> = sqlx::query_scalar(
        "SELECT GREATEST(last_analyze, last_autoanalyze) FROM pg_stat_user_tables WHERE relname = 'events'",
    )
    .fetch_one(pool)
    .await?;
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(pool)
        .await?;
    eprintln!(
        "loaded in {:.1}s: {events} events, events table last analysed: {analysed:?}",
        load_started.elapsed().as_secs_f64()
    );
    let after = command_case("command-uncached", store, 1, args, None).await?;
    print_case(&before, None);
    print_case(&after, None);
    println!(
        "\n| store | events stored | p50 ms | p99 ms |\n|---|---:|---:|---:|\n| before the bulk load | {events_before} | {:.3} | {:.3} |\n| after it, never analysed | {events} | {:.3} | {:.3} |\n\np50 ratio (after ÷ before): {:.2}",
        before.latency.p50.as_secs_f64() * 1e3,
        before.latency.p99.as_secs_f64() * 1e3,
        after.latency.p50.as_secs_f64() * 1e3,
        after.latency.p99.as_secs_f64() * 1e3,
        after.latency.p50.as_secs_f64() / before.latency.p50.as_secs_f64(),
    );
    Ok(())
}
