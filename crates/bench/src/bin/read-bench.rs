//! Reads on hot standbys: a read-heavy mix against the primary alone, then against the primary
//! with one streaming standby (`DATABASE_READ_URL`), in one run on the same private clusters.
//!
//! Each worker loops for `--seconds`: one command in five (a creation as its customer, or a
//! confirmation as staff), the rest reads: four in five with the worker's latest consistency
//! token (the list filtered to its customer), one in five without (`GET /stats`). Every read with
//! a token is checked against the write it names (a stale answer is counted). Reported per case:
//! the share of reads the standby answered, stale reads, p50/p99 of reads with a token, and the
//! CPU time the primary's PostgreSQL processes spent per read: on a 2-core machine that runs both
//! servers, throughput is not the measure, the work taken off the primary is.
//!
//! ```text
//! cargo build --release -p orders -p bench
//! target/release/read-bench --seconds 20 --workers 8
//! ```

use std::time::{Duration, Instant};

use anyhow::Context;
use bench::service::{Service, ServiceOptions, bearer, create_order_body, order_id, scratch_dir};
use bench::stats::Latency;
use clap::Parser;
use reqwest::StatusCode;
use serde_json::Value;
use test_support::cluster::Cluster;
use uuid::Uuid;

#[derive(Debug, Parser)]
struct Args {
    /// Seconds each case runs.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// The `orders` binary.
    #[arg(long, default_value_os_t = bench::service::default_binary())]
    orders_bin: std::path::PathBuf,
}

/// What one worker saw.
#[derive(Debug, Default)]
struct Tally {
    commands: usize,
    token_reads: Vec<Duration>,
    plain_reads: usize,
    on_standby: usize,
    stale: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let primary = Cluster::start();
    let standby = Cluster::standby_of(&primary, "s1", &[]);
    println!(
        "read-bench: {} workers, {} s per case, primary :{} and standby :{} (private clusters, asynchronous streaming)",
        args.workers,
        args.seconds,
        primary.port(),
        standby.port()
    );
    println!(
        "\n| case | reads/s | commands/s | reads on the standby | stale reads | token read p50 | p99 | primary CPU per read | WAL per command |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let primary_pool = sqlx::PgPool::connect(&primary.url()).await?;
    for (name, read_url) in [
        ("primary alone", None),
        ("primary + 1 standby", Some(standby.url())),
    ] {
        let env = read_url
            .map(|url| vec![("DATABASE_READ_URL".to_owned(), url)])
            .unwrap_or_default();
        let service = Service::start(&ServiceOptions {
            binary: args.orders_bin.clone(),
            database_url: primary.url(),
            max_connections: 16,
            log: "warn".to_owned(),
            work_dir: scratch_dir(&format!("read-bench-{}", name.replace(' ', "-"))),
            env,
        })
        .await?;
        // Let the standby monitor put the standby in rotation.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let postmaster = primary
            .postmaster_pid()
            .context("the primary is not running")?;
        let staff = service.staff_token()?;
        let customers: Vec<(Uuid, String)> = (0..args.workers)
            .map(|_| {
                let customer = Uuid::now_v7();
                service
                    .customer_token(customer)
                    .map(|token| (customer, token))
            })
            .collect::<anyhow::Result<_>>()?;
        let mut latest: Vec<Latest> = vec![None; args.workers];
        // The mix, then a phase of reads only (half as long) for the primary's CPU per read.
        let mut phases = Vec::new();
        for mix in [true, false] {
            let cpu_before = cluster_cpu(postmaster);
            let wal_before = wal_position(&primary_pool).await?;
            let started = Instant::now();
            let seconds = if mix { args.seconds } else { args.seconds / 2 };
            let until = started + Duration::from_secs(seconds);
            let mut workers = Vec::new();
            for (worker, (customer, token)) in customers.iter().cloned().enumerate() {
                let base = service.base_url().to_owned();
                let staff = staff.clone();
                let last = latest[worker].take();
                workers.push(tokio::spawn(async move {
                    run_worker(worker, &base, &staff, customer, &token, until, last, mix).await
                }));
            }
            let mut total = Tally::default();
            for (worker, handle) in workers.into_iter().enumerate() {
                let (tally, last) = handle.await??;
                latest[worker] = last;
                total.commands += tally.commands;
                total.token_reads.extend(tally.token_reads);
                total.plain_reads += tally.plain_reads;
                total.on_standby += tally.on_standby;
                total.stale += tally.stale;
            }
            let elapsed = started.elapsed().as_secs_f64();
            let cpu = cluster_cpu(postmaster).saturating_sub(cpu_before);
            let wal = wal_position(&primary_pool).await? - wal_before;
            phases.push((total, elapsed, cpu, wal));
        }
        service.stop(Duration::from_secs(5)).await?;
        let [(mix, elapsed, _, wal), (reads_only, _, reads_only_cpu, _)] = &phases[..] else {
            anyhow::bail!("two phases ran");
        };
        let reads = mix.token_reads.len() + mix.plain_reads;
        let only_reads = reads_only.token_reads.len() + reads_only.plain_reads;
        let latency = Latency::of(mix.token_reads.clone());
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} % | {} | {:.1} ms | {:.1} ms | {:.0} µs | {:.1} KiB |",
            reads as f64 / elapsed,
            mix.commands as f64 / elapsed,
            100.0 * (mix.on_standby + reads_only.on_standby) as f64
                / (reads + only_reads).max(1) as f64,
            mix.stale + reads_only.stale,
            latency.p50.as_secs_f64() * 1e3,
            latency.p99.as_secs_f64() * 1e3,
            reads_only_cpu.as_secs_f64() * 1e6 / only_reads.max(1) as f64,
            *wal as f64 / 1024.0 / mix.commands.max(1) as f64,
        );
    }
    println!(
        "\nreads/s, commands/s and p50/p99 (reads with a token): the mix, one command in five. Primary CPU per read: a second phase of reads only, half as long; the CPU time of the primary cluster's processes (postmaster and children) divided by its reads. WAL per command: the primary's WAL over the mix (events, idempotency records, read models, checkpoints) divided by its commands."
    );
    Ok(())
}

/// A worker's latest write: (order, version, consistency token).
type Latest = Option<(Uuid, u64, String)>;

/// Runs the mix until `until` (reads only when `mix` is false); returns what it saw and the
/// worker's latest write.
#[allow(clippy::too_many_arguments)]
async fn run_worker(
    worker: usize,
    base: &str,
    staff: &str,
    customer: Uuid,
    token: &str,
    until: Instant,
    mut latest: Latest,
    mix: bool,
) -> anyhow::Result<(Tally, Latest)> {
    let client = reqwest::Client::new();
    let mut tally = Tally::default();
    let mut step = worker;
    while Instant::now() < until {
        step += 1;
        let command = latest.is_none() || (mix && step.is_multiple_of(5));
        match (command, step % 5, &latest) {
            (true, _, _) => {
                let confirm = step.is_multiple_of(10) && latest.as_ref().is_some_and(|l| l.1 == 1);
                let response = match (&latest, confirm) {
                    (Some((id, _, _)), true) => {
                        client
                            .post(format!("{base}/orders/{id}/confirm"))
                            .header("authorization", bearer(staff))
                            .send()
                            .await?
                    }
                    _ => {
                        client
                            .post(format!("{base}/orders"))
                            .header("authorization", bearer(token))
                            .header("content-type", "application/json")
                            .body(create_order_body(1))
                            .send()
                            .await?
                    }
                };
                anyhow::ensure!(
                    response.status().is_success(),
                    "a command failed: {}",
                    response.status()
                );
                let body = response.bytes().await?;
                let id = order_id(&body)?;
                let json: Value = serde_json::from_slice(&body)?;
                let version = json["version"].as_u64().unwrap_or(0);
                let written = json["consistency_token"].as_str().unwrap_or("").to_owned();
                latest = Some((id, version, written));
                tally.commands += 1;
            }
            (false, 0 | 4, _) | (false, _, None) => {
                let response = client
                    .get(format!("{base}/stats"))
                    .header("authorization", bearer(staff))
                    .send()
                    .await?;
                anyhow::ensure!(
                    response.status() == StatusCode::OK,
                    "/stats: {}",
                    response.status()
                );
                tally.on_standby += usize::from(served_by_standby(&response));
                tally.plain_reads += 1;
            }
            (false, _, Some((id, version, written))) => {
                let sent = Instant::now();
                let response = client
                    .get(format!(
                        "{base}/orders?customer={customer}&consistent_with={written}"
                    ))
                    .header("authorization", bearer(staff))
                    .send()
                    .await?;
                anyhow::ensure!(
                    response.status() == StatusCode::OK,
                    "a list: {}",
                    response.status()
                );
                let standby = served_by_standby(&response);
                let page: Value = response.json().await?;
                tally.token_reads.push(sent.elapsed());
                tally.on_standby += usize::from(standby);
                let seen = page["orders"].as_array().and_then(|orders| {
                    orders
                        .iter()
                        .find(|o| o["id"].as_str() == Some(&id.to_string()))
                        .and_then(|o| o["version"].as_u64())
                });
                if seen.is_none_or(|seen| seen < *version) {
                    tally.stale += 1;
                }
            }
        }
    }
    Ok((tally, latest))
}

fn served_by_standby(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get("x-served-by")
        .is_some_and(|v| v.as_bytes() == b"standby")
}

/// The primary's WAL insert position, in bytes.
async fn wal_position(pool: &sqlx::PgPool) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint")
            .fetch_one(pool)
            .await?,
    )
}

/// CPU time (user + system) of a PostgreSQL cluster: its postmaster and every child of it.
fn cluster_cpu(postmaster: u32) -> Duration {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    let ticks: u64 = entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // After the command name in parentheses: state, ppid, …, utime (14th), stime (15th).
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let ppid: u32 = fields.get(1)?.parse().ok()?;
            (pid == postmaster || ppid == postmaster).then(|| {
                let utime: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
                let stime: u64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
                utime + stime
            })
        })
        .sum();
    Duration::from_millis(ticks * 10)
}
