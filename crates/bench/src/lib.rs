//! Benchmarks of the `orders` service.
//!
//! - `store-bench` compares [`event_store_postgres::PostgresEventStore`] appends with raw inserts
//!   of the same rows into a copy of the `events` table;
//! - `http-bench` drives create + confirm commands over HTTP against the real service (a child
//!   process) and compares them with raw inserts of the same event rows;
//! - `projection-bench` compares a read-model rebuild with a plain read-and-upsert of the same
//!   rows, and measures how long a command takes to become visible in the read model.
//!
//! This library holds their parts:
//!
//! - [`cli`]: the flags;
//! - [`cpu`]: CPU time of the benchmark's processes (itself, the broker, PostgreSQL);
//! - [`db`]: the throw-away benchmark database and the baseline table;
//! - [`events`]: order-like events and the per-writer stream bookkeeping;
//! - [`workload`]: one case (a workload at one concurrency), run by concurrent writers;
//! - [`stats`]: latency percentiles and medians;
//! - [`report`]: the markdown table and the JSON file;
//! - [`service`]: the `orders` service as a child process (start, tokens, memory, SIGTERM).

pub mod cli;
pub mod cpu;
pub mod db;
pub mod events;
pub mod report;
pub mod service;
pub mod stats;
pub mod workload;
