//! Blue/green rebuild: fill the next generation of tables from position 0 while the current one
//! keeps serving, then switch the checkpoint to it in one transaction and drop the old tables.

use std::time::Duration;

use event_store::Feed;

use crate::{Dialect, Engine, OnError, Projection, Result};

/// Events per rebuild transaction: larger than the live batch, since nothing waits on it.
const REBUILD_BATCH: usize = 5_000;

/// Events per transaction of the final catch-up, done with the live checkpoint locked.
const SWITCH_BATCH: usize = 10_000;

/// Queries that read the old generation just before the switch get this long to finish before
/// its tables are dropped.
const DROP_DELAY: Duration = Duration::from_secs(2);

/// What a rebuild did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildReport {
    /// The generation now serving.
    pub generation: i32,
    /// The checkpoint it starts from.
    pub position: u64,
    /// Events applied.
    pub events: u64,
}

impl<F, D, P> Engine<F, D, P>
where
    F: Feed + Clone + 'static,
    D: Dialect,
    P: Projection<D>,
{
    /// Rebuilds the read model into its next generation and switches to it. `progress(done,
    /// head)` is called after every batch. A rebuild interrupted before the switch leaves the
    /// serving generation untouched; the next one starts over.
    pub async fn rebuild(&self, progress: impl Fn(u64, u64)) -> Result<RebuildReport> {
        let current = self.register().await?.generation;
        let next = current + 1;
        self.projection.drop_tables(&self.db, next).await?; // an interrupted rebuild's leftovers
        self.projection.create_tables(&self.db, next).await?;
        let (mut after, mut events) = (0, 0);
        loop {
            let head = self.feed.head().await?;
            let applied = self.apply_into(next, after, REBUILD_BATCH).await?;
            events += applied.events as u64;
            after = applied.last_position;
            progress(after, head.max(after));
            if applied.events < REBUILD_BATCH {
                break;
            }
        }
        let position = self.switch_to(next, after).await?;
        tracing::info!(
            projection = self.name(),
            generation = next,
            position,
            "read model switched to the rebuilt tables"
        );
        tokio::time::sleep(DROP_DELAY).await;
        self.projection.drop_tables(&self.db, current).await?;
        Ok(RebuildReport {
            generation: next,
            position,
            events: events + position.saturating_sub(after),
        })
    }

    /// With the live checkpoint locked, applies what is left into `generation` and switches the
    /// checkpoint to it. Returns the final position.
    async fn switch_to(&self, generation: i32, mut after: u64) -> Result<u64> {
        let name = self.name();
        let mut tx = self.db.begin().await?;
        D::lock(&mut tx, name).await?;
        loop {
            let events = self.feed.read_all(after, SWITCH_BATCH).await?;
            if events.is_empty() {
                break;
            }
            let applied = self
                .projection
                .apply(&mut tx, generation, after, &events, OnError::Park)
                .await?;
            D::park(&mut tx, name, &applied.parked).await?;
            after = applied.last_position;
        }
        D::save(&mut tx, name, generation, after, None).await?;
        D::commit(tx).await?;
        Ok(after)
    }
}
