//! Black-box tests of the HTTP API: the real service on port 0, a real database (a fresh SQLite
//! file or a fresh PostgreSQL database per test), a real HTTP client.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod harness;

mod auth;
mod cache;
mod concurrency;
mod connections;
mod console;
mod customers;
mod errors;
mod hostile;
mod idempotency;
mod lifecycle;
mod metrics;
mod operations;
mod parity;
mod parked;
mod personal_data;
mod queries;
mod read_replicas;
mod restart;
mod round_trips;
mod snapshots;
mod streams;
mod time_travel;
mod webhooks;

/// Runs each listed scenario once against SQLite and once against PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario($crate::harness::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario($crate::harness::Backend::Postgres).await
                }
            )*
        }
    };
}
