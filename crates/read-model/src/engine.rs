//! [`Engine`]: one projection over one database, its batches and its parked events.

use std::sync::Arc;

use event_store::Feed;

use crate::{Applied, Checkpoint, Dialect, Error, OnError, ParkedEvent, Projection, Result};

/// A lease this instance holds on a projection: what its batches prove they still hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// This instance.
    pub owner: String,
    /// The epoch it took the lease at.
    pub epoch: u64,
    /// How long each renewal lasts.
    pub ttl: std::time::Duration,
}

/// What retrying a parked event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryOutcome {
    /// It applied; it is no longer parked.
    Applied,
    /// It failed again with this error, and stays parked.
    StillFails(String),
}

/// A projection `P` fed by `F`, stored through `D`. Cheap to clone.
pub struct Engine<F, D, P> {
    pub(crate) feed: F,
    pub(crate) db: D,
    pub(crate) projection: Arc<P>,
}

impl<F: Clone, D: Clone, P> Clone for Engine<F, D, P> {
    fn clone(&self) -> Self {
        Self {
            feed: self.feed.clone(),
            db: self.db.clone(),
            projection: self.projection.clone(),
        }
    }
}

impl<F, D, P> Engine<F, D, P>
where
    F: Feed + Clone + 'static,
    D: Dialect,
    P: Projection<D>,
{
    /// `projection`, reading `feed`, stored in `db`.
    pub fn new(feed: F, db: D, projection: P) -> Self {
        Self {
            feed,
            db,
            projection: Arc::new(projection),
        }
    }

    /// The projection's name.
    pub fn name(&self) -> &str {
        self.projection.name()
    }

    /// The projection.
    pub fn projection(&self) -> &P {
        &self.projection
    }

    /// The database.
    pub fn dialect(&self) -> &D {
        &self.db
    }

    /// The feed.
    pub fn feed(&self) -> &F {
        &self.feed
    }

    /// Creates the checkpoint row and the serving generation's tables if they are missing.
    pub async fn register(&self) -> Result<Checkpoint> {
        let checkpoint = self.db.register(self.name()).await?;
        self.projection
            .create_tables(&self.db, checkpoint.generation)
            .await?;
        Ok(checkpoint)
    }

    /// The checkpoint, read without a lock (`None` before the first registration).
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>> {
        self.db.checkpoint(self.name()).await
    }

    /// Applies up to `limit` events after the checkpoint, parks what cannot be applied, and moves
    /// the checkpoint, all in one transaction with the checkpoint locked. Not fenced: for tools
    /// and tests; a running service uses [`Self::run_fenced_batch`].
    pub async fn run_batch(&self, limit: usize, on_error: OnError) -> Result<Applied> {
        self.batch(limit, on_error, None).await
    }

    /// [`Self::run_batch`] for the holder of the projection's lease: the batch commits only if
    /// `fence` still holds it (checked with the row locked, in the transaction that moves the
    /// checkpoint), and renews it. Otherwise nothing is written and the answer is
    /// [`Error::LeaseLost`].
    pub async fn run_fenced_batch(
        &self,
        limit: usize,
        on_error: OnError,
        fence: &Fence,
    ) -> Result<Applied> {
        self.batch(limit, on_error, Some(fence)).await
    }

    async fn batch(
        &self,
        limit: usize,
        on_error: OnError,
        fence: Option<&Fence>,
    ) -> Result<Applied> {
        let name = self.name();
        let mut tx = self.db.begin().await?;
        let checkpoint = D::lock(&mut tx, name).await?;
        if let Some(fence) = fence
            && !checkpoint.is_held_by(&fence.owner, fence.epoch)
        {
            return Err(Error::LeaseLost(name.to_owned()));
        }
        let events = self.feed.read_all(checkpoint.position, limit).await?;
        let idle = Applied {
            last_position: checkpoint.position,
            ..Applied::default()
        };
        if events.is_empty() {
            // Idle: renew the lease once half of it has run out, without a commit otherwise.
            if let Some(fence) = fence
                && checkpoint
                    .holder
                    .as_ref()
                    .and_then(|h| h.expires_in)
                    .is_none_or(|left| left < fence.ttl / 2)
            {
                D::renew(&mut tx, name, fence.ttl).await?;
                D::commit(tx).await?;
            }
            return Ok(idle);
        }
        let applied = self
            .projection
            .apply(
                &mut tx,
                checkpoint.generation,
                checkpoint.position,
                &events,
                on_error,
            )
            .await?;
        self.park(&mut tx, &applied).await?;
        let renew = fence.map(|f| f.ttl);
        if applied.events > 0 {
            D::save(
                &mut tx,
                name,
                checkpoint.generation,
                applied.last_position,
                renew,
            )
            .await?;
        } else if let Some(ttl) = renew {
            D::renew(&mut tx, name, ttl).await?;
        }
        D::commit(tx).await?;
        Ok(applied)
    }

    /// Applies events after `after` into the tables of `generation` without touching the
    /// checkpoint (a rebuild keeps its own cursor). Events it cannot apply are parked.
    pub async fn apply_into(&self, generation: i32, after: u64, limit: usize) -> Result<Applied> {
        let events = self.feed.read_all(after, limit).await?;
        let mut tx = self.db.begin().await?;
        let applied = self
            .projection
            .apply(&mut tx, generation, after, &events, OnError::Park)
            .await?;
        self.park(&mut tx, &applied).await?;
        D::commit(tx).await?;
        Ok(applied)
    }

    async fn park(&self, tx: &mut D::Tx, applied: &Applied) -> Result<()> {
        for parked in &applied.parked {
            tracing::warn!(projection = self.name(), position = parked.position, event_id = %parked.event_id, error = %parked.error, "event parked");
        }
        D::park(tx, self.name(), &applied.parked).await
    }

    /// The parked events, in position order.
    pub async fn parked(&self) -> Result<Vec<ParkedEvent>> {
        self.db.parked(self.name()).await
    }

    /// Applies the parked event at `position` again (after a fix to the fold, say). On success it
    /// is no longer parked; on failure it stays parked with the new error. The checkpoint is
    /// locked meanwhile, so no batch runs beside it.
    pub async fn retry_parked(&self, position: u64) -> Result<RetryOutcome> {
        let name = self.name();
        let mut tx = self.db.begin().await?;
        let checkpoint = D::lock(&mut tx, name).await?;
        if !self.is_parked(position).await? {
            return Err(self.not_parked(position));
        }
        let events = self
            .feed
            .read_all(position.saturating_sub(1), 1)
            .await?
            .into_iter()
            .filter(|e| e.position == Some(position))
            .collect::<Vec<_>>();
        let applied = self
            .projection
            .apply(
                &mut tx,
                checkpoint.generation,
                position - 1,
                &events,
                OnError::Stop,
            )
            .await?;
        if let Some(failed) = applied.stopped {
            drop(tx); // nothing of the attempt stays
            let mut tx = self.db.begin().await?;
            D::park(&mut tx, name, std::slice::from_ref(&failed)).await?;
            D::commit(tx).await?;
            return Ok(RetryOutcome::StillFails(failed.error));
        }
        D::unpark(&mut tx, name, position).await?;
        D::commit(tx).await?;
        Ok(RetryOutcome::Applied)
    }

    /// Gives up on the parked event at `position`: it is no longer parked and never applied.
    pub async fn skip_parked(&self, position: u64) -> Result<()> {
        let mut tx = self.db.begin().await?;
        if !D::unpark(&mut tx, self.name(), position).await? {
            return Err(self.not_parked(position));
        }
        D::commit(tx).await
    }

    async fn is_parked(&self, position: u64) -> Result<bool> {
        Ok(self.parked().await?.iter().any(|p| p.position == position))
    }

    fn not_parked(&self, position: u64) -> Error {
        Error::NotParked {
            projection: self.name().to_owned(),
            position,
        }
    }
}
