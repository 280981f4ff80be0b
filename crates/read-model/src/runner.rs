//! Keeping a projection current: catch up in batches, then wait for the feed to grow.

use std::sync::Arc;
use std::time::{Duration, Instant};

use event_store::Feed;
use tokio::sync::{Notify, watch};

use crate::{Applied, Dialect, Engine, Error, Fence, OnError, Projection};

/// How the runner works.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Events per transaction: big enough to amortise the commit, small enough to keep locks
    /// short.
    pub batch_size: usize,
    /// What to do with an event the fold cannot apply.
    pub on_error: OnError,
    /// How often to read the feed when no wake-up arrives (events of another process on SQLite,
    /// a lost notification on PostgreSQL).
    pub poll_interval: Duration,
    /// Share the work with other instances on the database through a lease; `None` runs every
    /// batch unfenced (one instance, or tests).
    pub lease: Option<LeaseOptions>,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        Self {
            batch_size: 500,
            on_error: OnError::Park,
            poll_interval: Duration::from_millis(200),
            lease: None,
        }
    }
}

/// How instances share a projection: one holds its lease and applies its events, the others
/// stand by, follow its checkpoint (so their waits for a position still answer) and take the
/// lease over once it expires.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// This instance's name, unique among the instances on the database (shown by
    /// `orders projections status`).
    pub owner: String,
    /// How long a lease lasts without renewal: the longest a dead or frozen holder delays a
    /// takeover. The holder renews it with every batch, and at half-time when idle.
    pub ttl: Duration,
    /// How often a standby tries to take the lease.
    pub standby_interval: Duration,
}

impl LeaseOptions {
    /// `owner` with a 5 s lease, tried for every second: a takeover within about 6 s.
    pub fn new(owner: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            ttl: Duration::from_secs(5),
            standby_interval: Duration::from_secs(1),
        }
    }
}

/// Moves what this process has seen applied forward (never back: a rebuild's switch or another
/// instance's checkpoint only ever moves on).
fn advance(applied: &watch::Sender<u64>, position: u64) {
    applied.send_if_modified(|p| {
        let moved = position > *p;
        *p = (*p).max(position);
        moved
    });
}

/// How often a stopped projection tries the event it stopped at again.
const STOPPED_RECHECK: Duration = Duration::from_secs(10);

/// How often the runner checks whether the feed is held back (a query, kept off the hot path).
const BACKLOG_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// A feed held back longer than this is logged as a warning.
const FEED_BLOCKED_WARNING: Duration = Duration::from_secs(5);

/// Pause after a failed batch before trying again.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// A running projection: what it has applied, and a way to wait for a position. Cheap to clone;
/// the runner stops at shutdown, not when handles are dropped.
#[derive(Debug, Clone)]
pub struct Running {
    name: String,
    applied: watch::Receiver<u64>,
    wake: Arc<Notify>,
}

impl Running {
    /// The projection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The checkpoint this process last saw.
    pub fn position(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Waits until the projection has applied `position`, at most `timeout`. Returns whether it
    /// did.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        let mut applied = self.applied.clone();
        if *applied.borrow_and_update() >= position {
            return true;
        }
        self.wake.notify_one();
        tokio::time::timeout(timeout, applied.wait_for(|p| *p >= position))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

impl<F, D, P> Engine<F, D, P>
where
    F: Feed + Clone + 'static,
    D: Dialect,
    P: Projection<D>,
{
    /// Registers the projection (creating its tables) and starts its runner on the current
    /// runtime; it stops when `shutdown` turns true.
    pub async fn start(
        self,
        options: RunnerOptions,
        shutdown: watch::Receiver<bool>,
    ) -> crate::Result<Running> {
        let checkpoint = self.register().await?;
        let (applied_tx, applied) = watch::channel(checkpoint.position);
        let wake = Arc::new(Notify::new());
        let running = Running {
            name: self.name().to_owned(),
            applied,
            wake: wake.clone(),
        };
        tokio::spawn(self.run(options, applied_tx, wake, shutdown));
        Ok(running)
    }

    async fn run(
        self,
        options: RunnerOptions,
        applied: watch::Sender<u64>,
        wake: Arc<Notify>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut wakeups = self.feed.wakeups();
        let mut last_backlog_check: Option<Instant> = None;
        let mut last_attempt: Option<Instant> = None;
        let mut fence: Option<Fence> = None;
        let labels = [("projection", self.name().to_owned())];
        loop {
            if *shutdown.borrow() {
                if let (Some(fence), Some(lease)) = (&fence, &options.lease) {
                    // Hand over at once instead of after the lease runs out.
                    let _ = self.db.release(self.name(), &lease.owner).await;
                    tracing::info!(
                        projection = self.name(),
                        epoch = fence.epoch,
                        "projection lease released"
                    );
                }
                return;
            }
            if let Some(lease) = &options.lease
                && fence.is_none()
            {
                if last_attempt.is_none_or(|at| at.elapsed() >= lease.standby_interval) {
                    last_attempt = Some(Instant::now());
                    fence = self.try_lease(lease, &labels).await;
                    if fence.is_none() {
                        // A standby's lag is the holder's: keep its gauges true as well.
                        let at = *applied.borrow();
                        self.record_lag(&labels, at).await;
                    }
                }
                if fence.is_none() {
                    self.follow(&applied).await;
                    tokio::select! {
                        () = wakeups.changed() => {}
                        () = wake.notified() => {}
                        () = tokio::time::sleep(options.poll_interval) => {}
                        _ = shutdown.changed() => {}
                    }
                    continue;
                }
            }
            let started = Instant::now();
            let batch = match &fence {
                Some(fence) => {
                    self.run_fenced_batch(options.batch_size, options.on_error, fence)
                        .await
                }
                None => self.run_batch(options.batch_size, options.on_error).await,
            };
            match batch {
                Ok(batch) => {
                    let stopped = batch.stopped.is_some();
                    metrics::gauge!("projection_stopped", &labels)
                        .set(f64::from(u8::from(stopped)));
                    if let Some(failed) = &batch.stopped {
                        tracing::error!(
                            projection = self.name(), position = failed.position, event_id = %failed.event_id, error = %failed.error,
                            "projection stopped at an event it cannot apply (ORDERS_PROJECTION_ON_ERROR=stop); fix and restart, or switch to park"
                        );
                    }
                    count(&labels, &batch, started);
                    // Waiters first: the lag queries below are for the gauges only.
                    advance(&applied, batch.last_position);
                    self.record_lag(&labels, batch.last_position).await;
                    if last_backlog_check.is_none_or(|at| at.elapsed() >= BACKLOG_CHECK_INTERVAL) {
                        last_backlog_check = Some(Instant::now());
                        self.warn_if_held_back().await;
                    }
                    if stopped {
                        tokio::time::sleep(STOPPED_RECHECK).await;
                        continue;
                    }
                    if batch.events == options.batch_size {
                        continue; // more to catch up
                    }
                }
                Err(Error::LeaseLost(_)) => {
                    tracing::warn!(
                        projection = self.name(),
                        "projection lease lost to another instance; standing by"
                    );
                    metrics::gauge!("projection_leader", &labels).set(0.0);
                    fence = None;
                    last_attempt = Some(Instant::now());
                    continue;
                }
                Err(error) => {
                    tracing::error!(projection = self.name(), %error, "projection batch failed; retrying");
                    metrics::counter!("projection_errors_total", &labels).increment(1);
                    tokio::time::sleep(ERROR_BACKOFF).await;
                    continue;
                }
            }
            tokio::select! {
                () = wakeups.changed() => {}
                () = wake.notified() => {}
                () = tokio::time::sleep(options.poll_interval) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    /// Tries to take the lease; the fence to write with if this instance now holds it.
    async fn try_lease(
        &self,
        lease: &LeaseOptions,
        labels: &[(&'static str, String); 1],
    ) -> Option<Fence> {
        match self.db.acquire(self.name(), &lease.owner, lease.ttl).await {
            Ok(Some(epoch)) => {
                tracing::info!(projection = self.name(), owner = %lease.owner, epoch, "projection lease taken: this instance applies its events");
                metrics::gauge!("projection_leader", labels).set(1.0);
                Some(Fence {
                    owner: lease.owner.clone(),
                    epoch,
                    ttl: lease.ttl,
                })
            }
            Ok(None) => {
                metrics::gauge!("projection_leader", labels).set(0.0);
                None
            }
            Err(error) => {
                tracing::warn!(projection = self.name(), %error, "cannot try the projection lease; standing by");
                None
            }
        }
    }

    /// A standby follows the holder's durable checkpoint, so that waits for a position answer
    /// on every instance.
    async fn follow(&self, applied: &watch::Sender<u64>) {
        if let Ok(Some(checkpoint)) = self.checkpoint().await {
            advance(applied, checkpoint.position);
        }
    }

    /// Sets the lag gauges for a projection at `position`.
    async fn record_lag(&self, labels: &[(&'static str, String); 1], position: u64) {
        let Ok(head) = self.feed.head().await else {
            return;
        };
        let lag = head.saturating_sub(position);
        metrics::gauge!("projection_lag_events", labels).set(lag as f64);
        let seconds = if lag == 0 {
            0.0
        } else {
            match self.feed.committed_at(position + 1).await {
                Ok(Some(oldest)) => (chrono::Utc::now() - oldest).num_milliseconds() as f64 / 1e3,
                _ => 0.0,
            }
        };
        metrics::gauge!("projection_lag_seconds", labels).set(seconds.max(0.0));
    }

    async fn warn_if_held_back(&self) {
        if let Ok(backlog) = self.feed.backlog().await
            && backlog.oldest_age > FEED_BLOCKED_WARNING
        {
            tracing::warn!(
                events = backlog.events,
                oldest_seconds = backlog.oldest_age.as_secs_f64(),
                "the feed is held back: committed events have waited {:.1} s to be numbered; is the sequencer running?",
                backlog.oldest_age.as_secs_f64()
            );
        }
    }
}

/// Counts a batch's events and parked events, and times it.
fn count(labels: &[(&'static str, String); 1], batch: &Applied, started: Instant) {
    metrics::counter!("projection_events_total", labels).increment(batch.events as u64);
    metrics::counter!("projection_parked_events_total", labels)
        .increment(batch.parked.len() as u64);
    if batch.events > 0 {
        metrics::histogram!("projection_batch_seconds", labels)
            .record(started.elapsed().as_secs_f64());
    }
}
