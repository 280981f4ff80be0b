//! The `orders` service: order commands over HTTP, decided by the event-sourced
//! [`domain::OrderAggregate`] and stored in an [`event_store::EventStore`] (PostgreSQL or the
//! embedded SQLite file).
//!
//! - [`commands`]: load, decide, append with optimistic concurrency (no HTTP here);
//! - [`http`]: the axum API, problem+json errors, auth extractors, OpenAPI;
//! - [`auth`]: bearer JWTs and roles;
//! - [`store`]: the backend the configuration selects;
//! - [`app`]: wiring and the server's lifecycle (start, graceful shutdown);
//! - [`cli`]: the `orders` binary's subcommands.

pub mod app;
pub mod auth;
pub mod cli;
pub mod commands;
pub mod http;
pub mod store;
