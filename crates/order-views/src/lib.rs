//! The read side: the order read model, kept current by the projection engine of the
//! `read-model` crate (checkpoint in the same transaction as the rows, parking, blue/green
//! rebuilds, waits for a position).
//!
//! - [`view`]: the pure fold from events to rows (no I/O);
//! - [`batch`]: one batch's decode and fold under the engine's error policy;
//! - [`postgres`], [`sqlite`]: the read model's SQL per backend (tables, batch writes, queries),
//!   and nothing else;
//! - [`schema`]: what the backends share: table names, the projection name, query shapes;
//! - [`model`]: the read model on the service's backend, and its queries;
//! - [`customers`]: the per-customer summary, a second read model on the same engine;
//! - [`engines`]: a read model's engine on the configured backend, for any read model.

pub mod batch;
pub mod customers;
pub mod engines;
pub mod model;
pub mod postgres;
pub mod schema;
pub mod sqlite;
pub mod view;

use std::time::Duration;

pub use customers::model::CustomerSummaries;
pub use model::ReadModel;
pub use read_model::OnError;
use read_model::{LeaseOptions, RunnerOptions, Running};
pub use schema::{ListQuery, ORDERS_PROJECTION, OrderProjection, Stats, Tables};
use tokio::sync::watch;
pub use view::OrderView;

use store::Store;

/// The running projections of this process and what they have applied.
#[derive(Clone)]
pub struct Projections {
    /// The order read model.
    pub read_model: ReadModel,
    /// The per-customer summary.
    pub customers: CustomerSummaries,
    orders: Running,
    customer_summaries: Running,
    on_error: OnError,
}

impl Projections {
    /// Registers the service's read models (orders and customer summaries, creating their
    /// tables) and starts a runner for each as `instance_id`, which applies events while it
    /// holds that projection's lease and stands by otherwise; they stop (releasing the leases)
    /// when `shutdown` turns true.
    pub async fn start(
        store: &Store,
        on_error: OnError,
        instance_id: &str,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        let read_model = ReadModel::for_store(store);
        let options = RunnerOptions {
            on_error,
            // Instances on one database take turns by lease; alone, an instance takes it at once.
            lease: Some(LeaseOptions::new(instance_id)),
            ..RunnerOptions::default()
        };
        let orders = read_model.start(options.clone(), shutdown.clone()).await?;
        let customers = CustomerSummaries::for_store(store);
        let customer_summaries = customers.start(options, shutdown).await?;
        Ok(Self {
            read_model,
            customers,
            orders,
            customer_summaries,
            on_error,
        })
    }

    /// What the read models do with an event they cannot apply (`ORDERS_PROJECTION_ON_ERROR`).
    pub fn on_error(&self) -> OnError {
        self.on_error
    }

    /// The checkpoint this process last saw.
    pub fn position(&self) -> u64 {
        self.orders.position()
    }

    /// Waits until the order read model has applied `position`, at most `timeout`. Returns
    /// whether it did.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> bool {
        self.orders.wait_for(position, timeout).await
    }

    /// The running projection `which`.
    pub fn running(&self, which: Which) -> &Running {
        match which {
            Which::Orders => &self.orders,
            Which::Customers => &self.customer_summaries,
        }
    }
}

/// One of the service's read models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The order read model (`GET /orders`, `GET /stats`).
    Orders,
    /// The customer summary (`GET /customers/{id}/summary`).
    Customers,
}
