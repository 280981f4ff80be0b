//! Reading the feed ahead of the relay: several batches in flight at once.
//!
//! Positions are dense (ADR 0002), so once a read comes back full, the following batches start
//! at known positions and can be read in parallel while the relay hands the current one to the
//! producer. A read is only used if it starts exactly where the relay is; anything else (a short
//! batch, a resend from the checkpoint) drops the reads in flight and starts again from there.

use std::collections::VecDeque;

use event_store::{EventStoreError, Feed, FeedEvent};
use tokio::task::JoinHandle;

/// Reads in flight once the feed is being caught up with (each on its own pooled connection).
pub(crate) const READS_AHEAD: usize = 4;

type Read = JoinHandle<Result<Vec<FeedEvent>, EventStoreError>>;

/// The feed reads of one relay term.
pub(crate) struct ReadAhead<S> {
    store: S,
    batch_size: usize,
    /// Reads in flight, in position order, each with the position it reads after.
    reads: VecDeque<(u64, Read)>,
}

impl<S: Feed + Clone + Send + Sync + 'static> ReadAhead<S> {
    pub(crate) fn new(store: S, batch_size: usize) -> Self {
        Self {
            store,
            batch_size: batch_size.max(1),
            reads: VecDeque::with_capacity(READS_AHEAD),
        }
    }

    /// Up to `batch_size` events after `after`, in position order (what `read_feed` returns).
    pub(crate) async fn next(&mut self, after: u64) -> Result<Vec<FeedEvent>, EventStoreError> {
        let read = match self.reads.pop_front() {
            Some((from, read)) if from == after => read,
            Some((_, stale)) => {
                stale.abort();
                self.clear();
                self.spawn(after)
            }
            None => self.spawn(after),
        };
        let events = read.await.map_err(|e| {
            EventStoreError::unavailable(std::io::Error::other(format!("feed read task: {e}")))
        })??;
        if events.len() == self.batch_size {
            let step = self.batch_size as u64;
            let mut from = self.reads.back().map_or(after + step, |(a, _)| a + step);
            while self.reads.len() < READS_AHEAD - 1 {
                let read = self.spawn(from);
                self.reads.push_back((from, read));
                from += step;
            }
        } else {
            self.clear();
        }
        Ok(events)
    }

    fn spawn(&self, after: u64) -> Read {
        let (store, limit) = (self.store.clone(), self.batch_size);
        tokio::spawn(async move { store.read_feed(after, limit).await })
    }
}

impl<S> ReadAhead<S> {
    /// Drops every read in flight.
    pub(crate) fn clear(&mut self) {
        for (_, read) in self.reads.drain(..) {
            read.abort();
        }
    }
}

impl<S> Drop for ReadAhead<S> {
    fn drop(&mut self) {
        self.clear();
    }
}
