//! The event store contract of the `orders` service.
//!
//! An event store keeps one append-only stream of events per aggregate and one store-wide feed over
//! all of them. This crate holds what every backend shares:
//!
//! - the [`Feed`] trait, the store-wide feed as every read side consumes it (reading after a
//!   position, the head, commit times, what holds the feed back, one shared wake-up source);
//! - the [`EventStore`] trait with the four operations the design named (`append_events`,
//!   `load_events`, `load_events_from_version`, `get_current_version`), snapshots, the global feed and
//!   idempotency records;
//! - the value types ([`NewEvent`], [`RecordedEvent`], [`ExpectedVersion`], [`Snapshot`], …) and the
//!   typed [`EventStoreError`];
//! - [`InMemoryEventStore`], for unit tests of logic (never a substitute for a real database);
//! - with the `conformance` feature, the [`conformance`] suite that every backend runs.
//!
//! The crate knows nothing of any particular aggregate: payloads are JSON, typed by `event_type` and
//! `schema_version`. Converting domain events to and from [`NewEvent`]/[`RecordedEvent`] is the
//! command side's job.
//!
//! # Example
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), event_store::EventStoreError> {
//! use event_store::{EventStore, ExpectedVersion, InMemoryEventStore, NewEvent};
//! use uuid::Uuid;
//!
//! let store = InMemoryEventStore::new();
//! let order_id = Uuid::now_v7();
//! let created = NewEvent::new("Order", "OrderCreated", 1, serde_json::json!({"total": 2100}));
//!
//! // `0` is the old callers' way to say "this stream must not exist yet".
//! let appended = store.append_events(order_id, 0, vec![created]).await?;
//! assert_eq!(appended.last_version, 1);
//!
//! let events = store.load_events(order_id).await?;
//! assert_eq!(events[0].event_type, "OrderCreated");
//! assert_eq!(store.get_current_version(order_id).await?, 1);
//!
//! // A second writer that still believes the stream is new loses, with a typed conflict.
//! let late = NewEvent::new("Order", "OrderCreated", 1, serde_json::json!({}));
//! let err = store.append_events(order_id, ExpectedVersion::NoStream, vec![late]).await.unwrap_err();
//! assert!(err.is_conflict());
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
mod expected_version;
mod feed;
mod memory;
pub mod retry;
mod store;
mod types;

pub use error::{EventStoreError, Result};
pub use expected_version::ExpectedVersion;
pub use feed::{Feed, FeedBacklog, FeedWakeups};
pub use memory::InMemoryEventStore;
pub use store::EventStore;
pub use types::{
    AppendRequest, AppendResult, FeedEvent, IdempotencyLookup, IdempotencyRecord, LoadRequest,
    MAX_EVENTS_PER_APPEND, NewEvent, RecordedEvent, Snapshot, SnapshotFilter, StreamLoad,
};
