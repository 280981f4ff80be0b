//! Publishing order events to Kafka, with no event lost and none published that was not committed.
//!
//! - [`event`]: the integration event on the topic ([`OrderEventV1`]), its key and headers;
//! - [`relay`]: reads the global feed after a durable checkpoint, publishes with an idempotent
//!   producer, and advances the checkpoint only after the broker acknowledged;
//! - [`lease`]: one relay at a time across service instances (PostgreSQL advisory lock);
//! - [`consume`] and [`check`]: a consumer-group reader and the consumer contract (dedupe on
//!   order id + version) as code; [`cli`]: `orders kafka consume`.
//!
//! Design and consumer contract: `docs/adr/0008-outbox-from-the-global-feed.md`.

pub mod backoff;
pub mod check;
pub mod cli;
pub mod config;
pub mod consume;
pub mod database;
pub mod event;
pub mod lease;
pub mod metrics;
mod position;
mod publish;
mod read_ahead;
pub mod relay;

pub use config::KafkaConfig;
pub use database::RelayDb;
pub use event::{OrderEventV1, Published};
pub use relay::{Relay, RelayHandle, RelayStatus, checkpoint_name};
