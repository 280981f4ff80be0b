//! The `orders` service as a child process: started on a free loopback port against a benchmark
//! database, tokens minted with its secret, its memory read from `/proc`, stopped with SIGTERM.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use orders::auth::{JwtKeys, Role};
use tokio::time::Instant;
use uuid::Uuid;

/// How long a started service may take to answer `/health/ready`.
const READY_LIMIT: Duration = Duration::from_secs(60);

/// How long tokens minted for a benchmark stay valid.
const TOKEN_TTL: Duration = Duration::from_secs(3 * 3600);

/// Where `cargo build --release -p orders` puts the service binary (`CARGO_TARGET_DIR` honoured).
pub fn default_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    target.join("release").join("orders")
}

/// How to start the service.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// The `orders` binary.
    pub binary: PathBuf,
    /// Its database (`--database-url`).
    pub database_url: String,
    /// Its pool size (`--max-connections`; the service's default is 16).
    pub max_connections: u32,
    /// Its log filter (`RUST_LOG`).
    pub log: String,
    /// Directory for its data dir and its log file.
    pub work_dir: PathBuf,
    /// More environment for it (`DATABASE_READ_URL`, …).
    pub env: Vec<(String, String)>,
}

/// Memory of a process, from `/proc/<pid>/status`, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memory {
    /// Resident set size now (`VmRSS`).
    pub rss_kib: u64,
    /// Peak resident set size since the start (`VmHWM`).
    pub hwm_kib: u64,
}

impl Memory {
    /// `VmRSS` in MiB.
    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }

    /// `VmHWM` in MiB.
    pub fn hwm_mib(&self) -> f64 {
        self.hwm_kib as f64 / 1024.0
    }

    /// Reads `VmRSS` and `VmHWM` of `pid`.
    pub fn of(pid: u32) -> anyhow::Result<Self> {
        let path = format!("/proc/{pid}/status");
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        let field = |name: &str| -> anyhow::Result<u64> {
            let line = text
                .lines()
                .find(|l| l.starts_with(name))
                .with_context(|| format!("{path} has no {name}"))?;
            line[name.len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .with_context(|| format!("cannot parse {line:?}"))
        };
        Ok(Self {
            rss_kib: field("VmRSS:")?,
            hwm_kib: field("VmHWM:")?,
        })
    }
}

/// How the service stopped.
#[derive(Debug)]
pub struct Stopped {
    /// From SIGTERM to exit.
    pub took: Duration,
    /// Its exit status (`None`: it did not stop within the grace period and was killed).
    pub status: Option<ExitStatus>,
}

/// A running `orders serve`; killed (SIGKILL) if dropped before [`Service::stop`].
pub struct Service {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    keys: JwtKeys,
    log_path: PathBuf,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("pid", &self.child.id())
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Starts `orders serve` on a free loopback port with a fresh token secret and waits until it
    /// answers `GET /health/ready` with 200. Its output goes to `<work_dir>/orders.log`.
    pub async fn start(options: &ServiceOptions) -> anyhow::Result<Self> {
        anyhow::ensure!(
            options.binary.is_file(),
            "{} does not exist: build it first with `cargo build --release -p orders` (or pass --orders-bin)",
            options.binary.display()
        );
        std::fs::create_dir_all(&options.work_dir)
            .with_context(|| format!("cannot create {}", options.work_dir.display()))?;
        let secret = format!(
            "bench-{}{}",
            Uuid::new_v4().simple(),
            Uuid::new_v4().simple()
        );
        let listen = free_port()?;
        let log_path = options.work_dir.join("orders.log");
        let log = File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let child = Command::new(&options.binary)
            .arg("serve")
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--database-url")
            .arg(&options.database_url)
            .arg("--max-connections")
            .arg(options.max_connections.to_string())
            .arg("--data-dir")
            .arg(options.work_dir.join("data"))
            .env("ORDERS_JWT_SECRET", &secret)
            .env("RUST_LOG", &options.log)
            // Measure the service alone: no Redis cache even if the environment names one.
            .env_remove("REDIS_URL")
            .envs(options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", options.binary.display()))?;
        let mut service = Self {
            child,
            base_url: format!("http://{listen}"),
            keys: JwtKeys::new(secret.as_bytes()),
            log_path,
        };
        service.wait_ready().await?;
        Ok(service)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let url = format!("{}/health/ready", self.base_url);
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!(
                    "the service exited with {status} before it was ready; its log:\n{}",
                    self.log_tail()
                );
            }
            if let Ok(response) = client.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if start.elapsed() > READY_LIMIT {
                anyhow::bail!(
                    "the service was not ready within {READY_LIMIT:?}; its log:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The service's log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last lines of the service's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// A staff token (subject `bench`).
    pub fn staff_token(&self) -> anyhow::Result<String> {
        Ok(self.keys.issue("bench", Role::Staff, TOKEN_TTL)?)
    }

    /// A token of the customer `customer_id`.
    pub fn customer_token(&self, customer_id: Uuid) -> anyhow::Result<String> {
        Ok(self
            .keys
            .issue(&customer_id.to_string(), Role::Customer, TOKEN_TTL)?)
    }

    /// The service's current and peak resident memory.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        Memory::of(self.pid())
    }

    /// Sends SIGTERM (`kill -TERM <pid>`) and waits up to `grace` for the service to exit; kills
    /// it after that.
    pub async fn stop(mut self, grace: Duration) -> anyhow::Result<Stopped> {
        let pid = self.pid().to_string();
        let sent = Instant::now();
        let kill = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .context("cannot run kill -TERM")?;
        anyhow::ensure!(kill.success(), "kill -TERM {pid} failed: {kill}");
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Stopped {
                    took: sent.elapsed(),
                    status: Some(status),
                });
            }
            if sent.elapsed() > grace {
                self.child.kill()?;
                self.child.wait()?;
                return Ok(Stopped {
                    took: sent.elapsed(),
                    status: None,
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A loopback address with a port that was free a moment ago.
fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("no free local port")?;
    Ok(listener.local_addr()?)
}

/// A per-run scratch directory under the system temp dir (the service's data dir and log).
pub fn scratch_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{name}-{}", Uuid::now_v7().simple()))
}

/// The body of `POST /orders` with `items` lines (2 by default in the benchmarks).
pub fn create_order_body(items: usize) -> String {
    let lines: Vec<serde_json::Value> = (1..=items)
        .map(|i| {
            serde_json::json!({
                "product_id": Uuid::now_v7(),
                "sku": format!("SKU-{i:03}"),
                "quantity": 2,
                "unit_price": 1050 + i as i64,
            })
        })
        .collect();
    serde_json::json!({"currency": "EUR", "items": lines}).to_string()
}

/// The `id` of a command's JSON response. (Writes answer with a consistency token, not a feed
/// position: PostgreSQL numbers the event a moment after the commit; see ADR 0010.)
pub fn order_id(body: &[u8]) -> anyhow::Result<Uuid> {
    let value: serde_json::Value =
        serde_json::from_slice(body).context("the response is not JSON")?;
    value
        .get("id")
        .and_then(serde_json::Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
        .context("the response has no id")
}

/// The feed positions of the creations of `orders`, once the feed has numbered them all (at most
/// 30 s), in the order given.
pub async fn creation_positions(pool: &sqlx::PgPool, orders: &[Uuid]) -> anyhow::Result<Vec<u64>> {
    let started = std::time::Instant::now();
    loop {
        let rows: Vec<(Uuid, Option<i64>)> = sqlx::query_as(
            "SELECT e.aggregate_id, (SELECT p.position FROM event_positions p WHERE p.seq = e.seq)
             FROM events e WHERE e.aggregate_id = ANY($1) AND e.version = 1",
        )
        .bind(orders)
        .fetch_all(pool)
        .await?;
        let found: std::collections::HashMap<Uuid, Option<i64>> = rows.into_iter().collect();
        let positions: Option<Vec<u64>> = orders
            .iter()
            .map(|id| {
                found
                    .get(id)
                    .copied()
                    .flatten()
                    .and_then(|p| u64::try_from(p).ok())
            })
            .collect();
        if let Some(positions) = positions {
            return Ok(positions);
        }
        anyhow::ensure!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the feed did not number every creation within 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Sets `Authorization: Bearer <token>`.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Clock ticks per second of `/proc` CPU times (`getconf CLK_TCK`; 100 on Linux x86-64).
const CLOCK_TICKS: f64 = 100.0;

/// CPU seconds (user + system) a process has used, from `/proc/<pid>/stat` (`self` for this one).
pub fn cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let time = crate::cpu::process_time(pid)?
        .with_context(|| format!("cannot read /proc/{pid}/stat: no such process"))?;
    Ok(time.as_secs_f64())
}

/// The machine's CPU time so far, from `/proc/stat`: (busy seconds, total seconds), all CPUs.
pub fn machine_cpu_seconds() -> anyhow::Result<(f64, f64)> {
    let text = std::fs::read_to_string("/proc/stat").context("cannot read /proc/stat")?;
    let line = text.lines().next().context("/proc/stat is empty")?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .context("cannot parse /proc/stat")?;
    let total: u64 = ticks.iter().take(8).sum();
    // idle and iowait
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    Ok((
        (total - idle) as f64 / CLOCK_TICKS,
        total as f64 / CLOCK_TICKS,
    ))
}

/// CPU use over an interval: of the whole machine, the service and this process.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUse {
    /// Machine busy share of all CPUs, 0–1.
    pub machine_busy: f64,
    /// Service CPU seconds.
    pub service_secs: f64,
    /// This process's CPU seconds.
    pub bench_secs: f64,
    /// Wall seconds.
    pub wall_secs: f64,
}

/// A starting point for [`CpuUse`].
#[derive(Debug, Clone, Copy)]
pub struct CpuMark {
    machine: (f64, f64),
    service: f64,
    bench: f64,
    at: std::time::Instant,
}

impl CpuMark {
    /// Now, for the service `pid` (if any).
    pub fn now(pid: Option<u32>) -> anyhow::Result<Self> {
        Ok(Self {
            machine: machine_cpu_seconds()?,
            service: pid.map_or(Ok(0.0), |p| cpu_seconds(&p.to_string()))?,
            bench: cpu_seconds("self")?,
            at: std::time::Instant::now(),
        })
    }

    /// What was used since this mark.
    pub fn since(&self, pid: Option<u32>) -> anyhow::Result<CpuUse> {
        let later = Self::now(pid)?;
        let total = later.machine.1 - self.machine.1;
        Ok(CpuUse {
            machine_busy: if total > 0.0 {
                (later.machine.0 - self.machine.0) / total
            } else {
                0.0
            },
            service_secs: later.service - self.service,
            bench_secs: later.bench - self.bench,
            wall_secs: (later.at - self.at).as_secs_f64(),
        })
    }
}

/// Histograms of the service's `/metrics` whose means the benchmarks print.
pub const TIMED_METRICS: [&str; 4] = [
    "command_duration_seconds",
    "event_store_append_duration_seconds",
    "projection_batch_seconds",
    "http_request_duration_seconds",
];

impl Service {
    /// `(series, count, mean seconds)` of every `_sum`/`_count` pair of the histograms in `names`
    /// on the service's `GET /metrics`.
    pub async fn histogram_means(
        &self,
        client: &reqwest::Client,
        names: &[&str],
    ) -> anyhow::Result<Vec<(String, f64, f64)>> {
        let text = client
            .get(format!("{}/metrics", self.base_url))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let mut sums: Vec<(String, f64)> = Vec::new();
        let mut counts: Vec<(String, f64)> = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = series.split_once('{').unwrap_or((series, ""));
            for base in names {
                let key = |suffix: &str| {
                    (name == format!("{base}{suffix}")).then(|| {
                        format!("{base}{{{}", labels)
                            .trim_end_matches('{')
                            .to_owned()
                    })
                };
                if let Some(key) = key("_sum") {
                    sums.push((key, value));
                } else if let Some(key) = key("_count") {
                    counts.push((key, value));
                }
            }
        }
        Ok(counts
            .into_iter()
            .filter(|(_, count)| *count > 0.0)
            .filter_map(|(key, count)| {
                let sum = sums.iter().find(|(k, _)| *k == key)?.1;
                Some((key, count, sum / count))
            })
            .collect())
    }
}
