//! Keeping a projection current: catch up in batches, then wait for new events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use super::{OnError, ReadModel};
use crate::store::Store;

/// Name of the order read model's projection (its checkpoint row).
pub const ORDERS_PROJECTION: &str = "orders";

/// Events per transaction: big enough to amortize the commit, small enough to keep locks short.
const BATCH_SIZE: usize = 500;

/// Polling interval when no wake-up arrives (events from other processes on SQLite, a lost
/// NOTIFY on PostgreSQL).
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// How often a stopped projection tries the event it stopped at again.
const STOPPED_RECHECK: Duration = Duration::from_secs(10);

/// How often the runner checks whether the feed is held back (a query, kept off the hot path).
const BACKLOG_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// A feed held back longer than this is logged as a warning.
const FEED_BLOCKED_WARNING: f64 = 5.0;

/// Pause after a failed batch before trying again.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// The running projections of this process and what they have applied.
#[derive(Clone)]
pub struct Projections {
    /// The read model they write.
    pub read_model: ReadModel,
    applied: watch::Receiver<u64>,
    wake: Arc<Notify>,
}

impl Projections {
    /// Registers the order projection (creating its tables) and starts its runner; it stops when
    /// `shutdown` turns true.
    pub async fn start(
        store: &Store,
        on_error: OnError,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        let read_model = ReadModel::for_store(store);
        let (generation, position) = read_model.register(ORDERS_PROJECTION).await?;
        read_model.create_tables(generation).await?;
        let (applied_tx, applied) = watch::channel(position);
        let wake = Arc::new(Notify::new());
        spawn_wakers(store, wake.clone());
        tokio::spawn(run(
            read_model.clone(),
            on_error,
            applied_tx,
            wake.clone(),
            shutdown,
        ));
        Ok(Self {
            read_model,
            applied,
            wake,
        })
    }

    /// The checkpoint this process last saw.
    pub fn position(&self) -> u64 {
        *self.applied.borrow()
    }

    /// Waits until the projection has applied `position`, at most `timeout`. Returns whether it did.
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

/// Wakes the runner when events are numbered: PostgreSQL `LISTEN orders_feed`; SQLite appends in
/// this process. Polling covers anything missed.
fn spawn_wakers(store: &Store, wake: Arc<Notify>) {
    match store {
        Store::Postgres(pg) => {
            let pool = pg.pool().clone();
            tokio::spawn(async move {
                loop {
                    match sqlx::postgres::PgListener::connect_with(&pool).await {
                        Ok(mut listener) => {
                            if listener.listen("orders_feed").await.is_ok() {
                                while listener.recv().await.is_ok() {
                                    wake.notify_one();
                                }
                            }
                        }
                        Err(error) => tracing::debug!(%error, "LISTEN orders_feed failed; polling"),
                    }
                    tokio::time::sleep(ERROR_BACKOFF).await;
                }
            });
        }
        Store::Sqlite(sqlite) => {
            let mut appended = sqlite.appended();
            tokio::spawn(async move {
                while appended.changed().await.is_ok() {
                    wake.notify_one();
                }
            });
        }
    }
}

async fn run(
    read_model: ReadModel,
    on_error: OnError,
    applied: watch::Sender<u64>,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut last_backlog_check = Instant::now();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let started = Instant::now();
        match read_model
            .run_batch(ORDERS_PROJECTION, BATCH_SIZE, on_error)
            .await
        {
            Ok(writes) => {
                let stopped = writes.stopped.is_some();
                metrics::gauge!("projection_stopped", "projection" => ORDERS_PROJECTION)
                    .set(if stopped { 1.0 } else { 0.0 });
                if let Some(failed) = &writes.stopped {
                    tracing::error!(
                        projection = ORDERS_PROJECTION, position = failed.position, event_id = %failed.event_id, error = %failed.error,
                        "projection stopped at an event it cannot apply (ORDERS_PROJECTION_ON_ERROR=stop); fix and restart, or switch to park"
                    );
                }
                let check_backlog = last_backlog_check.elapsed() >= BACKLOG_CHECK_INTERVAL;
                if check_backlog {
                    last_backlog_check = Instant::now();
                }
                record_metrics(&read_model, &writes, started, check_backlog).await;
                applied.send_if_modified(|p| {
                    let changed = writes.last_position > *p;
                    *p = (*p).max(writes.last_position);
                    changed
                });
                if stopped {
                    tokio::time::sleep(STOPPED_RECHECK).await;
                    continue;
                }
                if writes.events == BATCH_SIZE {
                    continue; // more to catch up
                }
            }
            Err(error) => {
                tracing::error!(projection = ORDERS_PROJECTION, %error, "projection batch failed; retrying");
                metrics::counter!("projection_errors_total", "projection" => ORDERS_PROJECTION)
                    .increment(1);
                tokio::time::sleep(ERROR_BACKOFF).await;
                continue;
            }
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(POLL_INTERVAL) => {}
            _ = shutdown.changed() => {}
        }
    }
}

async fn record_metrics(
    read_model: &ReadModel,
    writes: &super::batch::BatchWrites,
    started: Instant,
    check_backlog: bool,
) {
    let labels = [("projection", ORDERS_PROJECTION)];
    metrics::counter!("projection_events_total", &labels).increment(writes.events as u64);
    metrics::counter!("projection_parked_events_total", &labels)
        .increment(writes.parked.len() as u64);
    if writes.events > 0 {
        metrics::histogram!("projection_batch_seconds", &labels)
            .record(started.elapsed().as_secs_f64());
    }
    if let Ok(head) = read_model.feed_head().await {
        let lag = head.saturating_sub(writes.last_position);
        metrics::gauge!("projection_lag_events", &labels).set(lag as f64);
        let seconds = match read_model.recorded_at(writes.last_position + 1).await {
            Ok(Some(oldest_unapplied)) if lag > 0 => {
                (chrono::Utc::now() - oldest_unapplied).num_milliseconds() as f64 / 1000.0
            }
            _ => 0.0,
        };
        metrics::gauge!("projection_lag_seconds", &labels).set(seconds.max(0.0));
    }
    if check_backlog
        && let Ok((events, oldest)) = read_model.feed_backlog().await
        && oldest > FEED_BLOCKED_WARNING
    {
        tracing::warn!(
            events,
            oldest_seconds = oldest,
            "the feed is held back: committed events have waited {oldest:.1} s to be numbered; is the sequencer running?"
        );
    }
}
