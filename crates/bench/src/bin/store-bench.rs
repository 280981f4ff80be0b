//! `store-bench`: what the PostgreSQL event store's appends cost compared with raw inserts.
//!
//! In one fresh database (`orders_bench_<uuid>`, dropped at the end) it measures four workloads,
//! each at every `--concurrency` (default 1, 16 and 64 writers) for `--duration` (default 5s, the
//! first `--warmup` unmeasured) or `--max-ops` calls, whichever comes first:
//!
//! - `append-1`: `EventStore::append_events` of one ~200-byte order event per call, with an exact
//!   expected version (`NoStream` to start each writer's next stream, every 50 events);
//! - `raw-1`: the same rows as single-row `INSERT`s into `raw_events`, a `LIKE events INCLUDING ALL`
//!   copy of the events table (same columns, identity, checks and indexes; no version check, no
//!   sequencer);
//! - `append-100`: 100-event appends with an exact expected version;
//! - `raw-100`: the same 100 rows in one `INSERT … SELECT * FROM UNNEST(…)`.
//!
//! Each raw case runs right before its append counterpart, and the background sequencer is allowed
//! to number every appended event before the next case starts. For each case it prints events/s,
//! calls/s and p50/p99 latency per call, the append/raw events-per-second ratio and what the case
//! cost the server (WAL bytes per event and write transactions per call, the sequencer's work
//! included; both cluster-wide), then a markdown table (medians over `--rounds`). `--json FILE`
//! also writes every measurement.
//!
//! Run it (PostgreSQL at `TEST_DATABASE_URL` or `--server-url`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`, as a user that may `CREATE DATABASE`):
//!
//! ```text
//! cargo run --release -p bench --bin store-bench -- --duration 5s
//! cargo run --release -p bench --bin store-bench -- --concurrency 1,16 --rounds 3 --json bench.json
//! ```

use anyhow::Context;
use bench::cli::Args;
use bench::db::{self, BenchDatabase, interruptible};
use bench::report;
use bench::workload::{self, Case, CaseResult, Limits, Method};
use clap::Parser;
use event_store_postgres::{PostgresEventStore, PostgresOptions};
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.validate()?;
    let database = BenchDatabase::create(&args.server_url).await?;
    eprintln!("benchmark database: {}", database.name);
    let outcome = interruptible(run(&args, &database)).await;
    database.finish(args.keep_database).await;
    outcome
}

async fn run(args: &Args, database: &BenchDatabase) -> anyhow::Result<()> {
    let max_writers = args.max_concurrency();
    let pool_size = u32::try_from(max_writers + 4).context("--concurrency too large")?;
    let store = PostgresEventStore::connect(
        &database.url,
        PostgresOptions {
            max_connections: pool_size,
            ..PostgresOptions::default()
        },
    )
    .await
    .with_context(|| format!("cannot connect to {}", database.url))?;
    store.migrate().await.context("migrations failed")?;
    db::create_raw_table(store.pool()).await?;
    // The baseline's own pool, one connection per writer (the store's background pool is
    // smaller; appends use the store's command connections). Each side closes its idle
    // connections before the other runs, so both fit the server's connection limit.
    let raw_pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(pool_size)
        .min_connections(0)
        .idle_timeout(std::time::Duration::from_secs(1))
        .test_before_acquire(false)
        .connect(&database.url)
        .await
        .with_context(|| format!("cannot connect to {}", database.url))?;
    print_settings(&store, pool_size).await?;

    let limits = Limits {
        duration: args.duration,
        warmup: args.warmup,
        max_ops: args.max_ops,
        calls_per_stream: args.calls_per_stream,
    };
    let mut results: Vec<CaseResult> = Vec::new();
    for round in 1..=args.rounds {
        if args.rounds > 1 {
            println!("\n## round {round} of {}", args.rounds);
        }
        for &batch in &args.batch {
            for &writers in &args.concurrency {
                let raw = run_one(
                    &store,
                    &raw_pool,
                    Case {
                        method: Method::Raw,
                        batch,
                        writers,
                    },
                    limits,
                )
                .await?;
                let append = run_one(
                    &store,
                    &raw_pool,
                    Case {
                        method: Method::Append,
                        batch,
                        writers,
                    },
                    limits,
                )
                .await?;
                println!("{}", report::case_line(&raw, None));
                println!(
                    "{}",
                    report::case_line(&append, report::ratio(&append, &raw))
                );
                results.push(raw);
                results.push(append);
            }
        }
    }

    let rows = report::summarize(&results);
    println!(
        "\n### Event store append vs raw insert ({:?} per case, {} round(s), median)\n",
        args.duration, args.rounds
    );
    print!("{}", report::markdown(&rows));
    if let Some(path) = &args.json {
        let settings = json!({
            "duration_secs": args.duration.as_secs_f64(),
            "warmup_secs": args.warmup.as_secs_f64(),
            "max_ops": args.max_ops,
            "rounds": args.rounds,
            "calls_per_stream": args.calls_per_stream,
            "pool_size": pool_size,
        });
        let text = serde_json::to_string_pretty(&report::json(&results, &rows, settings))?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    store.pool().close().await;
    Ok(())
}

/// Lets the sequencer finish the previous case's work, then runs `case`.
async fn run_one(
    store: &PostgresEventStore,
    raw: &sqlx::PgPool,
    case: Case,
    limits: Limits,
) -> anyhow::Result<CaseResult> {
    db::settle(store.pool(), workload::SETTLE_LIMIT).await?;
    if case.method == Method::Raw {
        store.close_idle_command_connections();
        db::warm_pool(raw, case.writers).await?;
    } else {
        // The baseline's idle connections close after a second; wait for that.
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
    workload::run_case(store, raw, case, limits)
        .await
        .with_context(|| format!("case {case} failed"))
}

async fn print_settings(store: &PostgresEventStore, pool_size: u32) -> anyhow::Result<()> {
    let setting = |name: &'static str| async move {
        sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(format!("SHOW {name}")))
            .fetch_one(store.pool())
            .await
            .with_context(|| format!("cannot read setting {name}"))
    };
    println!(
        "PostgreSQL {}; synchronous_commit={} fsync={} shared_buffers={}; pool {pool_size} connections",
        setting("server_version").await?,
        setting("synchronous_commit").await?,
        setting("fsync").await?,
        setting("shared_buffers").await?,
    );
    Ok(())
}
