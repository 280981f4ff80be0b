//! The post-commit sequencer: numbers committed events with dense global positions.
//!
//! Writers insert events and queue them in `feed_queue`. The sequencer calls
//! `orders_sequence_events`, which takes a transaction-scoped advisory lock (so sequencers of every
//! instance take turns) and numbers every committed, queued event in insertion order into the
//! narrow `event_positions` table (the event rows themselves are never rewritten). Because it only ever sees committed
//! rows and commits its numbering atomically, a reader of `position > n` can never skip an event
//! that commits late, rolled-back writes leave no hole, and positions are plain data that survive
//! `pg_dump`/restore. The price: an event's position is known a moment after its commit.
//! See `docs/adr/0002-event-schema-and-global-feed.md`.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// Events numbered per round trip; large enough to drain a burst quickly, small enough that one
/// sequencer transaction stays short.
const BATCH_SIZE: i32 = 5_000;

/// How often the sequencer looks for work nobody told it about (appends from other instances or
/// processes). Appends from this process wake it at once.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// After a wake-up, wait this long before numbering, so one sequencer commit covers the appends of
/// a burst instead of adding a commit per append (measured: 1.87 commits per append without it).
const COALESCE_WINDOW: Duration = Duration::from_millis(2);

/// Pause after a database error before trying again.
const ERROR_BACKOFF: Duration = Duration::from_millis(500);

/// A handle on the background sequencer task; dropping the last handle stops the task.
#[derive(Debug)]
pub struct Sequencer {
    wake: Arc<Notify>,
    /// (last round started, last round finished).
    rounds: watch::Receiver<(u64, u64)>,
    task: JoinHandle<()>,
}

impl Sequencer {
    /// Starts the sequencer loop on the current tokio runtime.
    pub fn spawn(pool: PgPool) -> Self {
        let wake = Arc::new(Notify::new());
        let (rounds_tx, rounds) = watch::channel((0, 0));
        let task = tokio::spawn(run(pool, wake.clone(), rounds_tx));
        Self { wake, rounds, task }
    }

    /// Asks for a round now (called after every append of this process).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Wakes the sequencer and waits until a round that started after this call has finished.
    pub async fn next_round(&self) {
        let mut rounds = self.rounds.clone();
        // A round numbered above the last one started so far starts after this call.
        let (started, _) = *rounds.borrow_and_update();
        self.wake();
        let _ = rounds.wait_for(|(_, finished)| *finished > started).await;
    }
}

impl Drop for Sequencer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(pool: PgPool, wake: Arc<Notify>, rounds: watch::Sender<(u64, u64)>) {
    loop {
        rounds.send_modify(|(started, _)| *started += 1);
        match sequence_all(&pool).await {
            Ok(0) => {}
            Ok(numbered) => tracing::trace!(numbered, "sequenced events"),
            Err(error) if not_migrated_yet(&error) => {
                // The first start on a new database: the service migrates right after
                // connecting, so this is expected for a moment and is no cause for a warning.
                tracing::debug!(%error, "the feed's schema is not there yet; retrying");
                tokio::time::sleep(ERROR_BACKOFF).await;
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "sequencer round failed; retrying");
                tokio::time::sleep(ERROR_BACKOFF).await;
                continue;
            }
        }
        rounds.send_modify(|(started, finished)| *finished = *started);
        if tokio::time::timeout(POLL_INTERVAL, wake.notified())
            .await
            .is_ok()
        {
            tokio::time::sleep(COALESCE_WINDOW).await;
        }
    }
}

/// Whether `error` says the sequencing function (or a table of it) does not exist yet:
/// SQLSTATE 42883 (undefined function) or 42P01 (undefined table).
fn not_migrated_yet(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|error| error.code())
        .is_some_and(|code| code == "42883" || code == "42P01")
}

/// Numbers every committed, unnumbered event; returns how many.
pub async fn sequence_all(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let numbered: i64 = sqlx::query_scalar("SELECT orders_sequence_events($1)")
            .bind(BATCH_SIZE)
            .fetch_one(pool)
            .await?;
        total += numbered.unsigned_abs();
        if numbered < i64::from(BATCH_SIZE) {
            return Ok(total);
        }
    }
}
