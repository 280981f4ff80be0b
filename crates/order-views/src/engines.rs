//! A projection's engine on the backend the service runs on: one enum, generic over the read
//! model, so that each read model gets every engine operation without a line of its own.

use read_model::{
    Applied, Checkpoint, Engine, OnError, ParkedEvent, PgDialect, Projection, RebuildReport,
    RetryOutcome, RunnerOptions, Running, SqliteDialect,
};
use tokio::sync::watch;

use store::{Db, Store};

/// `P` on the service's backend, fed by the store's feed.
pub enum ProjectionEngine<P> {
    /// PostgreSQL.
    Postgres(Engine<Store, PgDialect, P>),
    /// SQLite.
    Sqlite(Engine<Store, SqliteDialect, P>),
}

impl<P> Clone for ProjectionEngine<P> {
    fn clone(&self) -> Self {
        match self {
            Self::Postgres(e) => Self::Postgres(e.clone()),
            Self::Sqlite(e) => Self::Sqlite(e.clone()),
        }
    }
}

impl<P> std::fmt::Debug for ProjectionEngine<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Postgres(_) => "ProjectionEngine::Postgres",
            Self::Sqlite(_) => "ProjectionEngine::Sqlite",
        })
    }
}

macro_rules! each {
    ($self:ident, $e:ident => $call:expr) => {
        match $self {
            ProjectionEngine::Postgres($e) => $call,
            ProjectionEngine::Sqlite($e) => $call,
        }
    };
}

impl<P> ProjectionEngine<P>
where
    P: Projection<PgDialect> + Projection<SqliteDialect>,
{
    /// `projection` in the database of `store`.
    pub fn for_store(store: &Store, projection: P) -> Self {
        match store.db() {
            Db::Postgres(pool) => {
                Self::Postgres(Engine::new(store.clone(), PgDialect::new(pool), projection))
            }
            Db::Sqlite { writer, reader } => Self::Sqlite(Engine::new(
                store.clone(),
                SqliteDialect::new(writer, reader),
                projection,
            )),
        }
    }

    /// The projection's name.
    pub fn name(&self) -> &str {
        each!(self, e => e.name())
    }

    /// Registers the projection and starts its runner (see [`Engine::start`]).
    pub async fn start(
        &self,
        options: RunnerOptions,
        shutdown: watch::Receiver<bool>,
    ) -> read_model::Result<Running> {
        each!(self, e => e.clone().start(options, shutdown).await)
    }

    /// Creates the checkpoint row and the serving tables if missing.
    pub async fn register(&self) -> read_model::Result<Checkpoint> {
        each!(self, e => e.register().await)
    }

    /// Creates the tables of `generation` if missing (tools and benchmarks).
    pub async fn create_tables(&self, generation: i32) -> read_model::Result<()> {
        each!(self, e => e.projection().create_tables(e.dialect(), generation).await)
    }

    /// Drops the tables of `generation` if they exist.
    pub async fn drop_tables(&self, generation: i32) -> read_model::Result<()> {
        each!(self, e => e.projection().drop_tables(e.dialect(), generation).await)
    }

    /// The checkpoint (`None` before the service first started).
    pub async fn checkpoint(&self) -> read_model::Result<Option<Checkpoint>> {
        each!(self, e => e.checkpoint().await)
    }

    /// Applies the next batch, unfenced (see [`Engine::run_batch`]).
    pub async fn run_batch(&self, limit: usize, on_error: OnError) -> read_model::Result<Applied> {
        each!(self, e => e.run_batch(limit, on_error).await)
    }

    /// Rebuilds into the next generation and switches (see [`Engine::rebuild`]).
    pub async fn rebuild(&self, progress: impl Fn(u64, u64)) -> read_model::Result<RebuildReport> {
        each!(self, e => e.rebuild(progress).await)
    }

    /// The parked events, in position order.
    pub async fn parked(&self) -> read_model::Result<Vec<ParkedEvent>> {
        each!(self, e => e.parked().await)
    }

    /// Applies a parked event again (see [`Engine::retry_parked`]).
    pub async fn retry_parked(&self, position: u64) -> read_model::Result<RetryOutcome> {
        each!(self, e => e.retry_parked(position).await)
    }

    /// Gives up on a parked event (see [`Engine::skip_parked`]).
    pub async fn skip_parked(&self, position: u64) -> read_model::Result<()> {
        each!(self, e => e.skip_parked(position).await)
    }
}
