//! The `orders` service: order commands over HTTP, decided by the event-sourced
//! [`domain::OrderAggregate`] and stored in an [`event_store::EventStore`] (PostgreSQL or the
//! embedded SQLite file).
//!
//! - [`commands`]: load, decide, append with optimistic concurrency (no HTTP here);
//! - [`http`]: the axum API, problem+json errors, auth extractors, OpenAPI;
//! - [`auth`]: bearer JWTs and roles;
//! - [`cache`]: Redis cache-aside for single orders;
//! - [`app`]: wiring and the server's lifecycle (start, graceful shutdown);
//! - [`cli`]: the `orders` binary's subcommands.
//!
//! Beside it, each in its own crate: `store` (the backend the configuration selects and its
//! database handle), `personal-data` (personal data sealed per customer, revealed at the edge,
//! forgotten), `order-views` (the read models kept current from the global feed) and `console`
//! (the operator console, server-rendered pages at `/console` for staff).
//!
//! # Using the crates as a library
//!
//! The design's original walk-through, against the real types: create an order, convert its event
//! for the store, append it to a new stream with the old-style expected version `0`, load the
//! stream back and rebuild the aggregate.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! use domain::{Aggregate, CreateOrder, Currency, DomainEvent, OrderAggregate, OrderEvent, OrderItem, OrderStatus};
//! use event_store::{EventStore, NewEvent};
//! use event_store_sqlite::{SqliteEventStore, SqliteOptions};
//! use uuid::Uuid;
//!
//! let dir = tempfile::tempdir()?;
//! let store = SqliteEventStore::open(dir.path().join("orders.db"), SqliteOptions::default()).await?;
//! store.migrate().await?;
//!
//! // Create an order: the aggregate decides, nothing is stored yet.
//! let eur = Currency::new("EUR")?;
//! let create = CreateOrder {
//!     order_id: Uuid::now_v7(),
//!     customer_id: Uuid::now_v7(),
//!     currency: eur.clone(),
//!     items: vec![OrderItem::new(Uuid::now_v7(), "SKU-001", 2, 1050, eur)?],
//!     shipping_address: None,
//!     contact: None,
//! };
//! let events = OrderAggregate::default().create(&create)?;
//!
//! // Convert the domain events into store events and append them to a new stream.
//! let new_events: Vec<NewEvent> = events
//!     .iter()
//!     .map(|e| NewEvent::new(OrderAggregate::TYPE, e.event_type(), e.schema_version(), e.to_payload()))
//!     .collect();
//! store.append_events(create.order_id, 0, new_events).await?;
//!
//! // Load the stream and rebuild the aggregate from it.
//! let stored = store.load_events(create.order_id).await?;
//! let history = stored
//!     .iter()
//!     .map(|e| OrderEvent::from_stored(&e.event_type, e.schema_version, e.payload.clone()))
//!     .collect::<Result<Vec<_>, _>>()?;
//! let order = OrderAggregate::replay(&history);
//! assert_eq!(order.status(), OrderStatus::Created);
//! assert_eq!(order.total().map(|total| total.amount_minor()), Some(2100));
//! # Ok(())
//! # }
//! ```

pub mod app;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod commands;
pub mod http;
pub mod publishing;
pub mod server;
pub mod telemetry;
