//! The global feed as its consumers see it: the port every read side (projections, the outbox
//! relay, `feed tail`, lag metrics) goes through, so that only the backend crates know how the
//! feed is stored (ADR 0002, ADR 0014).

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::{FeedEvent, RecordedEvent, Result};

/// What holds the feed back: events that have committed but have no position yet.
///
/// Always empty on backends that number events when they commit (SQLite, memory); on PostgreSQL
/// a backlog that stays means the sequencer is not running (or is blocked).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FeedBacklog {
    /// Committed events waiting for a position.
    pub events: u64,
    /// How long the oldest of them has waited (zero when there is none).
    pub oldest_age: Duration,
}

/// Ticks whenever new events may be in the feed.
///
/// A tick is only a hint to read again: ticks coalesce (a consumer that was busy sees one tick
/// for many events) and may be lost (a dropped listener connection), so consumers also poll.
/// Every receiver of one store shares one source (on PostgreSQL one `LISTEN` connection per
/// process, however many consumers).
#[derive(Debug, Clone)]
pub struct FeedWakeups {
    ticks: watch::Receiver<()>,
}

impl FeedWakeups {
    /// Wake-ups from `ticks`; backends send on it when the feed grows.
    pub fn new(ticks: watch::Receiver<()>) -> Self {
        Self { ticks }
    }

    /// Wake-ups that never tick: consumers of such a store rely on polling alone.
    pub fn never() -> Self {
        // A closed source makes `changed` wait forever (see there).
        let (_, ticks) = watch::channel(());
        Self { ticks }
    }

    /// Waits for the next tick after the last one this receiver saw. Never returns if the
    /// source is gone; callers select it against a poll interval.
    pub async fn changed(&mut self) {
        if self.ticks.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The store-wide feed: dense positions `1, 2, 3, …` in an order that never lets a reader skip an
/// event that commits late.
///
/// Guarantees every backend proves with the [conformance suite](crate::conformance):
/// [`read_all`](Self::read_all) returns events in position order and never skips one that commits
/// later; [`head`](Self::head) is the highest position a reader can read; [`wakeups`](Self::wakeups)
/// ticks after an append becomes readable.
pub trait Feed: Send + Sync {
    /// Up to `limit` events with a global position greater than `after`, in position order.
    fn read_all(
        &self,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>>> + Send;

    /// [`Self::read_all`] for consumers that forward events without interpreting them: the same
    /// events, with payload and metadata as the stored JSON text. Backends read the text straight
    /// from their rows; this default re-serializes what `read_all` parsed.
    fn read_feed(
        &self,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<FeedEvent>>> + Send {
        async move {
            self.read_all(after, limit)
                .await?
                .into_iter()
                .map(FeedEvent::try_from)
                .collect()
        }
    }

    /// The highest position in the feed (0 when it is empty).
    fn head(&self) -> impl Future<Output = Result<u64>> + Send;

    /// When the event at `position` was committed, if the feed has that position.
    fn committed_at(
        &self,
        position: u64,
    ) -> impl Future<Output = Result<Option<DateTime<Utc>>>> + Send;

    /// What holds the feed back (see [`FeedBacklog`]).
    fn backlog(&self) -> impl Future<Output = Result<FeedBacklog>> + Send;

    /// A receiver of the store's one wake-up source. Cheap; call it once per consumer.
    fn wakeups(&self) -> FeedWakeups;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tick_wakes_every_receiver_once() {
        let (sender, ticks) = watch::channel(());
        let (mut first, mut second) = (FeedWakeups::new(ticks.clone()), FeedWakeups::new(ticks));
        sender.send_replace(());
        sender.send_replace(());
        first.changed().await;
        second.changed().await;
        let again = tokio::time::timeout(Duration::from_millis(50), first.changed()).await;
        assert!(again.is_err(), "two ticks before a read coalesce into one");
    }

    #[tokio::test]
    async fn never_waits_instead_of_spinning() {
        let mut wakeups = FeedWakeups::never();
        let woke = tokio::time::timeout(Duration::from_millis(50), wakeups.changed()).await;
        assert!(woke.is_err());
    }

    #[tokio::test]
    async fn a_closed_source_waits_instead_of_spinning() {
        let (sender, ticks) = watch::channel(());
        drop(sender);
        let mut wakeups = FeedWakeups::new(ticks);
        let woke = tokio::time::timeout(Duration::from_millis(50), wakeups.changed()).await;
        assert!(woke.is_err());
    }
}
