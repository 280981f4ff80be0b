//! Test plumbing shared by the workspace's integration tests.
//!
//! Tests talk to real services. When one is missing they fail loudly, saying how to start it;
//! they are never skipped.

pub mod cluster;
pub mod ha;
pub mod load;
pub mod pgwire;
pub mod postgres;
pub mod proxy;
pub mod redis;
pub mod service;
pub mod tansu;
pub mod webhooks;

/// Polls `check` every 50 ms until it holds; panics (naming `what`) after `limit`.
pub async fn eventually<F: AsyncFnMut() -> bool>(
    limit: std::time::Duration,
    what: &str,
    mut check: F,
) {
    let started = std::time::Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
