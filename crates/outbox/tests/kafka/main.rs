//! The relay against a real PostgreSQL or SQLite store and a real Kafka-protocol broker (tansu),
//! never a mock. Every test gets its own database, broker process and topic.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod harness;

mod crash;
mod delivery;
mod lease;
mod python;
