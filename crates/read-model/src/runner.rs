//! Keeping a projection current: catch up in batches, then wait for the feed to grow.

use std::sync::Arc;
use std::time::{Duration, Instant};

use event_store::Feed;
use tokio::sync::{Notify, watch};

use crate::{Applied, Dialect, Engine, OnError, Projection};

/// How the runner works.
#[derive(Debug, Clone, Copy)]
pub struct RunnerOptions {
    /// Events per transaction: big enough to amortise the commit, small enough to keep locks
    /// short.
    pub batch_size: usize,
    /// What to do with an event the fold cannot apply.
    pub on_error: OnError,
    /// How often to read the feed when no wake-up arrives (events of another process on SQLite,
    /// a lost notification on PostgreSQL).
    pub poll_interval: Duration,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        Self {
            batch_size: 500,
            on_error: OnError::Park,
            poll_interval: Duration::from_millis(200),
        }
    }
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
        let labels = [("projection", self.name().to_owned())];
        loop {
            if *shutdown.borrow() {
                return;
            }
            let started = Instant::now();
            match self.run_batch(options.batch_size, options.on_error).await {
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
                    self.record(&labels, &batch, started).await;
                    if last_backlog_check.is_none_or(|at| at.elapsed() >= BACKLOG_CHECK_INTERVAL) {
                        last_backlog_check = Some(Instant::now());
                        self.warn_if_held_back().await;
                    }
                    applied.send_if_modified(|p| {
                        let moved = batch.last_position > *p;
                        *p = (*p).max(batch.last_position);
                        moved
                    });
                    if stopped {
                        tokio::time::sleep(STOPPED_RECHECK).await;
                        continue;
                    }
                    if batch.events == options.batch_size {
                        continue; // more to catch up
                    }
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

    async fn record(
        &self,
        labels: &[(&'static str, String); 1],
        batch: &Applied,
        started: Instant,
    ) {
        metrics::counter!("projection_events_total", labels).increment(batch.events as u64);
        metrics::counter!("projection_parked_events_total", labels)
            .increment(batch.parked.len() as u64);
        if batch.events > 0 {
            metrics::histogram!("projection_batch_seconds", labels)
                .record(started.elapsed().as_secs_f64());
        }
        let Ok(head) = self.feed.head().await else {
            return;
        };
        let lag = head.saturating_sub(batch.last_position);
        metrics::gauge!("projection_lag_events", labels).set(lag as f64);
        let seconds = if lag == 0 {
            0.0
        } else {
            match self.feed.committed_at(batch.last_position + 1).await {
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
