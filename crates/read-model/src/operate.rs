//! [`Operate`]: what the service, its tools and its operators do with a read model, whatever its
//! rows and its database. Object-safe, so that one list holds every read model of a service and
//! an endpoint or a command finds one by name, with no code per read model.

use std::future::Future;
use std::pin::Pin;

use event_store::Feed;
use tokio::sync::watch;

use crate::{
    Applied, Checkpoint, Dialect, Engine, OnError, ParkedEvent, Projection, RebuildReport, Result,
    RetryOutcome, RunnerOptions, Running,
};

/// A boxed, sendable future: what an object-safe async method returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The operations of [`Engine`] that do not name its types: implemented by every engine.
pub trait Operate: Send + Sync + 'static {
    /// The projection's name (its checkpoint row).
    fn name(&self) -> &str;

    /// Creates the checkpoint row and the serving tables if missing (see [`Engine::register`]).
    fn register(&self) -> BoxFuture<'_, Result<Checkpoint>>;

    /// Registers the projection and starts its runner (see [`Engine::start`]).
    fn start(
        &self,
        options: RunnerOptions,
        shutdown: watch::Receiver<bool>,
    ) -> BoxFuture<'_, Result<Running>>;

    /// The checkpoint (`None` before the service first started).
    fn checkpoint(&self) -> BoxFuture<'_, Result<Option<Checkpoint>>>;

    /// Applies the next batch, unfenced (see [`Engine::run_batch`]).
    fn run_batch(&self, limit: usize, on_error: OnError) -> BoxFuture<'_, Result<Applied>>;

    /// Rebuilds into the next generation and switches (see [`Engine::rebuild`]); `progress` is
    /// called with (events applied, feed head).
    fn rebuild<'a>(
        &'a self,
        progress: &'a (dyn Fn(u64, u64) + Send + Sync),
    ) -> BoxFuture<'a, Result<RebuildReport>>;

    /// Creates the tables of `generation` if missing (tools and benchmarks).
    fn create_tables(&self, generation: i32) -> BoxFuture<'_, Result<()>>;

    /// Drops the tables of `generation` if they exist.
    fn drop_tables(&self, generation: i32) -> BoxFuture<'_, Result<()>>;

    /// The parked events, in position order.
    fn parked(&self) -> BoxFuture<'_, Result<Vec<ParkedEvent>>>;

    /// Applies a parked event again (see [`Engine::retry_parked`]).
    fn retry_parked(&self, position: u64) -> BoxFuture<'_, Result<RetryOutcome>>;

    /// Gives up on a parked event (see [`Engine::skip_parked`]).
    fn skip_parked(&self, position: u64) -> BoxFuture<'_, Result<()>>;
}

impl<F, D, P> Operate for Engine<F, D, P>
where
    F: Feed + Clone + Send + Sync + 'static,
    D: Dialect,
    P: Projection<D>,
{
    fn name(&self) -> &str {
        Engine::name(self)
    }

    fn register(&self) -> BoxFuture<'_, Result<Checkpoint>> {
        Box::pin(Engine::register(self))
    }

    fn start(
        &self,
        options: RunnerOptions,
        shutdown: watch::Receiver<bool>,
    ) -> BoxFuture<'_, Result<Running>> {
        Box::pin(self.clone().start(options, shutdown))
    }

    fn checkpoint(&self) -> BoxFuture<'_, Result<Option<Checkpoint>>> {
        Box::pin(Engine::checkpoint(self))
    }

    fn run_batch(&self, limit: usize, on_error: OnError) -> BoxFuture<'_, Result<Applied>> {
        Box::pin(Engine::run_batch(self, limit, on_error))
    }

    fn rebuild<'a>(
        &'a self,
        progress: &'a (dyn Fn(u64, u64) + Send + Sync),
    ) -> BoxFuture<'a, Result<RebuildReport>> {
        Box::pin(Engine::rebuild(self, progress))
    }

    fn create_tables(&self, generation: i32) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.projection().create_tables(self.dialect(), generation))
    }

    fn drop_tables(&self, generation: i32) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.projection().drop_tables(self.dialect(), generation))
    }

    fn parked(&self) -> BoxFuture<'_, Result<Vec<ParkedEvent>>> {
        Box::pin(Engine::parked(self))
    }

    fn retry_parked(&self, position: u64) -> BoxFuture<'_, Result<RetryOutcome>> {
        Box::pin(Engine::retry_parked(self, position))
    }

    fn skip_parked(&self, position: u64) -> BoxFuture<'_, Result<()>> {
        Box::pin(Engine::skip_parked(self, position))
    }
}

impl std::fmt::Debug for dyn Operate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadModel")
            .field("name", &self.name())
            .finish()
    }
}
