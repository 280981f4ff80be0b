//! The read side: the service's read models, kept current by the projection engine of the
//! `read-model` crate (checkpoint in the same transaction as the rows, parking, blue/green
//! rebuilds, waits for a position), each written once for both backends (ADR 0022).
//!
//! - [`projection`]: the batch of every read model kept per order, load → fold → write, written
//!   once ([`projection::PerOrderModel`], [`projection::Batched`]);
//! - [`postgres`], [`sqlite`]: what each backend does its own way, the one load of every read
//!   model and each read model's batch write (arrays or none);
//! - [`view`]: the order read model's pure fold from events to rows (no I/O);
//! - [`batch`]: the fold driver, one batch's decode and fold under the engine's error policy;
//! - [`schema`]: its tables (names per generation, DDL in each backend's column types), the
//!   projection name, query shapes;
//! - [`model`]: the read model on the service's backend, and its queries (written once);
//! - [`customers`]: the per-customer summary, a second read model on the same engine;
//! - [`engines`]: a read model's engine on the configured backend, for any read model.

pub mod batch;
pub mod customers;
pub mod engines;
pub mod model;
pub mod postgres;
pub mod projection;
pub mod schema;
pub mod sqlite;
pub mod view;

use std::time::Duration;

pub use customers::CUSTOMERS_PROJECTION;
pub use customers::model::CustomerSummaries;
pub use model::ReadModel;
pub use read_model::OnError;
use read_model::{LeaseOptions, Operate, RunnerOptions, Running};
pub use schema::{ListQuery, ORDERS_PROJECTION, OrderProjection, Stats, Tables};
use sqlx::PgPool;
use tokio::sync::watch;
pub use view::OrderView;

use store::Store;

/// The service's read models: the one list of them. The API's query endpoints use them by type;
/// the operations endpoints, the CLI and the console find one by name ([`Self::named`]) or go
/// through [`Self::all`], so a third read model is one more field here and nothing elsewhere.
#[derive(Debug, Clone)]
pub struct ReadModels {
    /// The order read model (`GET /orders`, `GET /stats`).
    pub orders: ReadModel,
    /// The per-customer summary (`GET /customers/{id}/summary`).
    pub customers: CustomerSummaries,
}

impl ReadModels {
    /// The names of every read model, in the order [`Self::all`] lists them.
    pub const NAMES: [&str; 2] = [ORDERS_PROJECTION, CUSTOMERS_PROJECTION];

    /// The read models in the database of `store`, fed by its feed.
    pub fn for_store(store: &Store) -> Self {
        Self {
            orders: ReadModel::for_store(store),
            customers: CustomerSummaries::for_store(store),
        }
    }

    /// The same read models, their queries answered by a hot standby of their PostgreSQL
    /// database (`pool`), whose replicated tables and checkpoints are a past state of the
    /// primary's.
    pub fn on_standby(&self, pool: PgPool) -> Self {
        Self {
            orders: self.orders.on_standby(pool.clone()),
            customers: self.customers.on_standby(pool),
        }
    }

    /// Every read model's engine.
    pub fn all(&self) -> [&dyn Operate; 2] {
        [&*self.orders, &*self.customers]
    }

    /// The read model called `name` (see [`Self::NAMES`]).
    pub fn named(&self, name: &str) -> Option<&dyn Operate> {
        self.all().into_iter().find(|m| m.name() == name)
    }
}

/// The running projections of this process and what they have applied.
#[derive(Clone)]
pub struct Projections {
    /// The read models.
    pub models: ReadModels,
    running: Vec<Running>,
    on_error: OnError,
}

impl Projections {
    /// Registers the service's read models (creating their tables) and starts a runner for each
    /// as `instance_id`, which applies events while it holds that projection's lease and stands
    /// by otherwise; they stop (releasing the leases) when `shutdown` turns true.
    pub async fn start(
        store: &Store,
        on_error: OnError,
        instance_id: &str,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        let models = ReadModels::for_store(store);
        let options = RunnerOptions {
            on_error,
            // Instances on one database take turns by lease; alone, an instance takes it at once.
            lease: Some(LeaseOptions::new(instance_id)),
            ..RunnerOptions::default()
        };
        let mut running = Vec::new();
        for model in models.all() {
            running.push(model.start(options.clone(), shutdown.clone()).await?);
        }
        Ok(Self {
            models,
            running,
            on_error,
        })
    }

    /// What the read models do with an event they cannot apply (`ORDERS_PROJECTION_ON_ERROR`).
    pub fn on_error(&self) -> OnError {
        self.on_error
    }

    /// The checkpoint this process last saw of the order read model.
    pub fn position(&self) -> u64 {
        self.running[0].position()
    }

    /// Waits until the order read model has applied `position`, at most `timeout`. Returns
    /// whether it did.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        self.running[0].wait_for(position, timeout).await
    }

    /// The runner of the read model called `name`.
    pub fn running(&self, name: &str) -> Option<&Running> {
        self.running.iter().find(|r| r.name() == name)
    }
}
