//! Benchmarks of the `orders` service.
//!
//! The `store-bench` binary compares [`event_store_postgres::PostgresEventStore`] appends with raw
//! inserts of the same rows into a copy of the `events` table; this library holds its parts:
//!
//! - [`cli`]: the flags;
//! - [`db`]: the throw-away benchmark database and the baseline table;
//! - [`events`]: order-like events and the per-writer stream bookkeeping;
//! - [`workload`]: one case (a workload at one concurrency), run by concurrent writers;
//! - [`stats`]: latency percentiles and medians;
//! - [`report`]: the markdown table and the JSON file.

pub mod cli;
pub mod db;
pub mod events;
pub mod report;
pub mod stats;
pub mod workload;
