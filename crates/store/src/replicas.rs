//! Hot standbys that answer queries (`DATABASE_READ_URL`), and how fresh each one is.
//!
//! Each host of the read URL is a [`Replica`] with a pool of its own. A monitor task checks every
//! [`CHECK_EVERY`] that each one is reachable and in recovery, and estimates its lag as a time:
//! it samples the primary's WAL flush position each round, and a standby's lag is how long ago the
//! primary was at the position the standby has replayed (an idle primary leaves every standby at
//! lag zero, which `now() - pg_last_xact_replay_timestamp()` would not). A standby that is down,
//! promoted, or whose query failed ([`Replica::suspend`]) is out of rotation until a round finds
//! it well again.
//!
//! What a query may read from a standby is decided above this module: with a consistency token,
//! only once the standby's replicated checkpoint has reached it (exact, whatever the lag); without
//! one, when the lag is within `ORDERS_READ_MAX_LAG` ([`Replicas::fresh`]). Commands, leases, the
//! sequencer and the relay never come here.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use event_store_postgres::{ServerList, SessionAttrs};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::watch;
use tokio::time::Instant;

/// How often the monitor checks every standby.
pub const CHECK_EVERY: Duration = Duration::from_millis(100);

/// How long a round waits for one standby before counting it as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// How much primary history the lag estimate keeps (a standby further behind reads as this).
const HISTORY: usize = 600;

/// The replicas' settings.
#[derive(Debug, Clone)]
pub struct ReplicaOptions {
    /// Longest lag at which a standby answers a query that carries no consistency token.
    pub max_lag: Duration,
    /// Connections per standby.
    pub max_connections: u32,
}

/// One standby.
#[derive(Debug)]
pub struct Replica {
    name: String,
    pool: PgPool,
    in_rotation: AtomicBool,
    lag_micros: AtomicU64,
}

impl Replica {
    /// `host:port`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its connections.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Whether the last check found it reachable and in recovery, and no query failed since.
    pub fn in_rotation(&self) -> bool {
        self.in_rotation.load(Ordering::Relaxed)
    }

    /// Its estimated lag behind the primary.
    pub fn lag(&self) -> Duration {
        Duration::from_micros(self.lag_micros.load(Ordering::Relaxed))
    }

    /// Takes it out of rotation after a failed query (down, or a query cancelled for a
    /// replication conflict); the monitor's next good round puts it back.
    pub fn suspend(&self, why: &str) {
        if self.in_rotation.swap(false, Ordering::Relaxed) {
            tracing::warn!(standby = %self.name, why, "standby out of rotation");
            metrics::gauge!("event_store_standby_in_rotation", "server" => self.name.clone())
                .set(0.0);
        }
    }
}

/// The standbys of `DATABASE_READ_URL`.
#[derive(Debug, Clone)]
pub struct Replicas {
    members: Arc<[Arc<Replica>]>,
    options: ReplicaOptions,
    next: Arc<AtomicU64>,
}

impl Replicas {
    /// Connects (lazily) to every host of `url` and starts the monitor, which compares each with
    /// `primary` until `shutdown`.
    pub fn start(
        url: &str,
        primary: PgPool,
        options: ReplicaOptions,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        let list = ServerList::parse(url, SessionAttrs::Standby).map_err(|e| {
            anyhow::anyhow!(
                "DATABASE_READ_URL {} is not a PostgreSQL URL: {e}",
                common::config::redact_password(url)
            )
        })?;
        let members: Vec<Arc<Replica>> = list
            .labels()
            .zip(list.options())
            .map(|(name, connect)| {
                // Queries only: every transaction read-only, whatever a later change does.
                let connect = connect
                    .clone()
                    .options([("default_transaction_read_only", "on")]);
                let pool = PgPoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(CHECK_TIMEOUT)
                    .connect_lazy_with(connect);
                Arc::new(Replica {
                    name: name.to_owned(),
                    pool,
                    in_rotation: AtomicBool::new(false),
                    lag_micros: AtomicU64::new(u64::MAX),
                })
            })
            .collect();
        anyhow::ensure!(!members.is_empty(), "DATABASE_READ_URL names no server");
        let replicas = Self {
            members: members.into(),
            options,
            next: Arc::new(AtomicU64::new(0)),
        };
        tokio::spawn(monitor(replicas.members.clone(), primary, shutdown));
        Ok(replicas)
    }

    /// Every standby.
    pub fn members(&self) -> &[Arc<Replica>] {
        &self.members
    }

    /// A standby in rotation, taking turns; for a query that checks what the standby has
    /// (a consistency token or a position) before it trusts it.
    pub fn any(&self) -> Option<Arc<Replica>> {
        self.pick(|_| true)
    }

    /// A standby in rotation whose lag is within `ORDERS_READ_MAX_LAG`, taking turns; for a
    /// query that carries no consistency token.
    pub fn fresh(&self) -> Option<Arc<Replica>> {
        let max = self.options.max_lag;
        self.pick(|replica| replica.lag() <= max)
    }

    fn pick(&self, fits: impl Fn(&Replica) -> bool) -> Option<Arc<Replica>> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let count = self.members.len() as u64;
        (0..count)
            .map(|i| &self.members[((start + i) % count) as usize])
            .find(|replica| replica.in_rotation() && fits(replica))
            .cloned()
    }
}

/// When the primary was at which WAL position, newest last.
#[derive(Debug, Default)]
struct PrimaryHistory {
    samples: VecDeque<(Instant, u64)>,
}

impl PrimaryHistory {
    fn push(&mut self, at: Instant, lsn: u64) {
        if self.samples.len() == HISTORY {
            self.samples.pop_front();
        }
        self.samples.push_back((at, lsn));
    }

    /// How far behind `now` a standby that has replayed `replayed` is: zero when it has the
    /// primary's latest sampled position; otherwise the age of the first sample it does not have
    /// (the primary was past it then), or the whole history when it has none of them.
    fn lag(&self, replayed: u64, now: Instant) -> Duration {
        match self.samples.iter().find(|(_, lsn)| *lsn > replayed) {
            None => Duration::ZERO,
            Some((at, _)) => now.saturating_duration_since(*at),
        }
    }
}

async fn monitor(
    members: Arc<[Arc<Replica>]>,
    primary: PgPool,
    mut shutdown: watch::Receiver<bool>,
) {
    let history = Mutex::new(PrimaryHistory::default());
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let now = Instant::now();
        match tokio::time::timeout(CHECK_TIMEOUT, primary_lsn(&primary)).await {
            Ok(Ok(lsn)) => {
                if let Ok(mut history) = history.lock() {
                    history.push(now, lsn);
                }
            }
            // Without the primary no lag can be told: the standbys keep their last estimate.
            _ => continue,
        }
        for replica in members.iter() {
            let checked = tokio::time::timeout(CHECK_TIMEOUT, standby_lsn(&replica.pool)).await;
            let replayed = match checked {
                Ok(Ok(Some(lsn))) => lsn,
                Ok(Ok(None)) => {
                    replica.suspend("it is not in recovery (promoted?): it could take writes");
                    continue;
                }
                Ok(Err(error)) => {
                    replica.suspend(&format!("check failed: {error}"));
                    continue;
                }
                Err(_) => {
                    replica.suspend("check timed out");
                    continue;
                }
            };
            let lag = history
                .lock()
                .map(|history| history.lag(replayed, Instant::now()))
                .unwrap_or(Duration::MAX);
            replica.lag_micros.store(
                u64::try_from(lag.as_micros()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            metrics::gauge!("event_store_standby_lag_seconds", "server" => replica.name.clone())
                .set(lag.as_secs_f64());
            if !replica.in_rotation.swap(true, Ordering::Relaxed) {
                tracing::info!(standby = %replica.name, "standby in rotation");
                metrics::gauge!("event_store_standby_in_rotation", "server" => replica.name.clone())
                    .set(1.0);
            }
        }
    }
}

/// The primary's WAL flush position, as a byte offset.
async fn primary_lsn(pool: &PgPool) -> sqlx::Result<u64> {
    let lsn: i64 =
        sqlx::query_scalar("SELECT (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::bigint")
            .fetch_one(pool)
            .await?;
    Ok(u64::try_from(lsn).unwrap_or(0))
}

/// The standby's replayed WAL position, or `None` when the server is not a standby.
async fn standby_lsn(pool: &PgPool) -> sqlx::Result<Option<u64>> {
    let (recovering, replayed): (bool, Option<i64>) = sqlx::query_as(
        "SELECT pg_is_in_recovery(), (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint",
    )
    .fetch_one(pool)
    .await?;
    Ok(recovering.then(|| u64::try_from(replayed.unwrap_or(0)).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_with_the_latest_position_has_no_lag() {
        let start = Instant::now();
        let mut history = PrimaryHistory::default();
        history.push(start, 100);
        history.push(start + Duration::from_millis(100), 200);
        let now = start + Duration::from_millis(300);
        assert_eq!(history.lag(200, now), Duration::ZERO);
        assert_eq!(history.lag(250, now), Duration::ZERO);
    }

    #[test]
    fn lag_is_the_age_of_the_first_position_the_standby_lacks() {
        let start = Instant::now();
        let mut history = PrimaryHistory::default();
        history.push(start, 100);
        history.push(start + Duration::from_millis(100), 200);
        history.push(start + Duration::from_millis(200), 300);
        let now = start + Duration::from_millis(500);
        assert_eq!(history.lag(150, now), Duration::from_millis(400));
        assert_eq!(history.lag(99, now), Duration::from_millis(500));
    }

    #[test]
    fn the_history_keeps_its_newest_samples() {
        let start = Instant::now();
        let mut history = PrimaryHistory::default();
        for i in 0..(HISTORY as u64 + 10) {
            history.push(start + Duration::from_millis(i), i);
        }
        assert_eq!(history.samples.len(), HISTORY);
        assert_eq!(history.samples.front().map(|s| s.1), Some(10));
    }
}
