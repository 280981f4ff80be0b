//! The [`Feed`](event_store::Feed) port's queries and its one shared wake-up source.

use std::convert::Infallible;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use event_store::{EventStoreError, FeedBacklog, FeedWakeups, Result};
use sqlx::postgres::PgListener;
use sqlx::{PgPool, Row};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::errors::unavailable;
use crate::rows::unsigned;

/// The channel `orders_sequence_events` notifies after numbering events (migration 0001).
pub(crate) const FEED_CHANNEL: &str = "orders_feed";

/// Pause before listening again after the listener connection failed.
const RELISTEN_BACKOFF: Duration = Duration::from_secs(1);

/// The commit time of position `$1`: two primary-key probes.
const COMMITTED_AT_SQL: &str = "SELECT (SELECT e.recorded_at FROM events e WHERE e.seq = p.seq)
     FROM event_positions p WHERE p.position = $1";

/// Queued events and the age of the oldest. Two index lookups, not a join: the queue is tiny but
/// its statistics can be stale (it churns), and a join planned on them can scan `events`.
const BACKLOG_SQL: &str = "SELECT (SELECT COUNT(*) FROM feed_queue) AS events,
        COALESCE(EXTRACT(EPOCH FROM now() - (SELECT e.recorded_at FROM events e
            WHERE e.seq = (SELECT MIN(seq) FROM feed_queue)))::float8, 0) AS oldest";

pub(crate) async fn committed_at(pool: &PgPool, position: u64) -> Result<Option<DateTime<Utc>>> {
    let Ok(position) = i64::try_from(position) else {
        return Ok(None); // beyond any position a BIGINT can hold
    };
    let at: Option<Option<DateTime<Utc>>> = sqlx::query_scalar(COMMITTED_AT_SQL)
        .bind(position)
        .fetch_optional(pool)
        .await
        .map_err(unavailable)?;
    Ok(at.flatten())
}

pub(crate) async fn backlog(pool: &PgPool) -> Result<FeedBacklog> {
    let row = sqlx::query(BACKLOG_SQL)
        .fetch_one(pool)
        .await
        .map_err(unavailable)?;
    let events: i64 = row.try_get("events").map_err(unavailable)?;
    let oldest: f64 = row.try_get("oldest").map_err(unavailable)?;
    Ok(FeedBacklog {
        events: unsigned(events, "queued events")?,
        // A clock step can make the age negative; it is still "not held back".
        oldest_age: Duration::try_from_secs_f64(oldest.max(0.0)).map_err(|e| {
            EventStoreError::Corrupt(format!("backlog age {oldest} is not a duration: {e}"))
        })?,
    })
}

/// One `LISTEN` connection per store (and its clones), started by the first consumer and
/// stopped when the last one is gone.
#[derive(Debug, Default)]
pub(crate) struct SharedWakeups {
    running: Mutex<Option<(watch::Sender<()>, JoinHandle<()>)>>,
}

impl SharedWakeups {
    /// A receiver of the shared source, starting the listener if none is running. Needs a tokio
    /// runtime (every consumer runs on one).
    pub(crate) fn subscribe(&self, pool: &PgPool) -> FeedWakeups {
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((ticks, task)) = running.as_ref()
            && !task.is_finished()
        {
            return FeedWakeups::new(ticks.subscribe());
        }
        let (ticks, receiver) = watch::channel(());
        let task = tokio::spawn(listen(pool.clone(), ticks.clone()));
        *running = Some((ticks, task));
        FeedWakeups::new(receiver)
    }
}

impl Drop for SharedWakeups {
    fn drop(&mut self) {
        if let Ok(Some((_, task))) = self.running.get_mut().map(Option::take) {
            task.abort();
        }
    }
}

/// Ticks `ticks` on every notification until no receiver is left. Every (re)connection ticks
/// too: notifications sent while it was down are lost, and the consumers should look.
async fn listen(pool: PgPool, ticks: watch::Sender<()>) {
    loop {
        let error = tokio::select! {
            () = ticks.closed() => return,
            Err(error) = forward_notifications(&pool, &ticks) => error,
        };
        tracing::debug!(%error, "LISTEN {FEED_CHANNEL} failed; consumers poll until it is back");
        tokio::select! {
            () = ticks.closed() => return,
            () = tokio::time::sleep(RELISTEN_BACKOFF) => {}
        }
    }
}

/// Listens on one connection and ticks for each notification, until the connection fails.
async fn forward_notifications(
    pool: &PgPool,
    ticks: &watch::Sender<()>,
) -> sqlx::Result<Infallible> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(FEED_CHANNEL).await?;
    ticks.send_replace(());
    loop {
        listener.recv().await?;
        ticks.send_replace(());
    }
}
