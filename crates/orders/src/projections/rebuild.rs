//! Blue/green rebuild: fill the next generation of tables from position 0 while the current one
//! keeps serving, then switch the projection to it in one transaction and drop the old tables.

use std::time::Duration;

use super::{ORDERS_PROJECTION, ReadModel};

/// Events per rebuild transaction: larger than the live batch, since nothing waits on it.
const REBUILD_BATCH: usize = 5_000;

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

/// Rebuilds the order read model. `progress(done, head)` is called after every batch.
pub async fn rebuild(
    read_model: &ReadModel,
    progress: impl Fn(u64, u64),
) -> anyhow::Result<RebuildReport> {
    let (current, _) = read_model.register(ORDERS_PROJECTION).await?;
    let next = current + 1;
    read_model.drop_tables(next).await?; // leftovers of an interrupted rebuild
    read_model.create_tables(next).await?;
    let mut after = 0;
    let mut events = 0;
    loop {
        let head = read_model.feed_head().await?;
        let writes = read_model
            .apply_into(ORDERS_PROJECTION, next, after, REBUILD_BATCH)
            .await?;
        events += writes.events as u64;
        after = writes.last_position;
        progress(after, head.max(after));
        if writes.events < REBUILD_BATCH {
            break;
        }
    }
    let position = read_model.switch_to(ORDERS_PROJECTION, next, after).await?;
    tracing::info!(
        generation = next,
        position,
        "read model switched to the rebuilt tables"
    );
    tokio::time::sleep(DROP_DELAY).await;
    read_model.drop_tables(current).await?;
    Ok(RebuildReport {
        generation: next,
        position,
        events: events + position.saturating_sub(after),
    })
}
