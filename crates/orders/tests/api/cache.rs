//! The Redis cache against the real server: coherent by version, and optional in practice.

use std::time::Duration;

use orders::cache::{CacheConfig, OrderCache};
use reqwest::StatusCode;
use serde_json::Value;
use test_support::proxy::Proxy;
use uuid::Uuid;

use crate::harness::{Backend, TestApp, spawn_app_with};

/// These tests check what the cache stores, not how it fails: a timeout a loaded machine never
/// reaches against a healthy Redis (a timed-out call is a silent miss, which would fail them).
fn config() -> CacheConfig {
    CacheConfig {
        prefix: test_support::redis::unique_prefix(),
        timeout: Duration::from_secs(10),
        ttl: Duration::from_secs(60),
    }
}

/// The cache timeout of the fallback test: long enough that a loaded machine does not time out
/// a healthy Redis, short enough to be well inside [`FALLBACK_DEADLINE`].
const FALLBACK_CACHE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a read may take while Redis is down or hangs. Without the cache timeout a read would
/// wait for Redis until the request timeout (30 s); with it, a few cache timeouts at most.
const FALLBACK_DEADLINE: Duration = Duration::from_secs(20);

/// The sum of the `/metrics` series `name` with `label` (`0` when absent).
async fn counter(app: &TestApp, name: &str, label: &str) -> f64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|line| line.starts_with(name) && line[name.len()..].starts_with(['{', ' ']))
        .filter(|line| line.contains(label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `GET path`, failing if it takes longer than [`FALLBACK_DEADLINE`].
async fn read_within_deadline(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    tokio::time::timeout(FALLBACK_DEADLINE, app.get(path, token))
        .await
        .unwrap_or_else(|_| panic!("the read took longer than {FALLBACK_DEADLINE:?}"))
}

#[tokio::test]
async fn an_older_version_never_replaces_a_newer_one() {
    let cache = OrderCache::connect(&test_support::redis::url(), config())
        .await
        .unwrap();
    let id = Uuid::now_v7();
    cache.put(id, 2, "v2").await;
    cache.put(id, 1, "v1").await; // a slow writer arriving late
    assert_eq!(cache.get(id, 2).await.as_deref(), Some("v2"));
    assert_eq!(
        cache.get(id, 1).await,
        None,
        "an entry is served only at its exact version"
    );
    cache.put(id, 3, "v3").await;
    assert_eq!(cache.get(id, 3).await.as_deref(), Some("v3"));
}

#[tokio::test]
async fn concurrent_writers_leave_the_newest_version() {
    let cache = OrderCache::connect(&test_support::redis::url(), config())
        .await
        .unwrap();
    let id = Uuid::now_v7();
    let writers = (1..=50_u64).rev().map(|version| {
        let cache = cache.clone();
        tokio::spawn(async move { cache.put(id, version, &format!("v{version}")).await })
    });
    futures::future::join_all(writers).await;
    assert_eq!(cache.get(id, 50).await.as_deref(), Some("v50"));
}

async fn redis_behind_a_proxy() -> Proxy {
    let url = test_support::redis::url();
    let target = url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    Proxy::start(target).await
}

/// Reads hit the cache, then Redis goes down and then hangs: reads keep answering from the database
/// (bounded by the cache timeout, not by Redis), and the service stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_fall_back_to_the_database_when_redis_is_down_or_slow() {
    let proxy = redis_behind_a_proxy().await;
    let redis_url = format!("redis://{}", proxy.addr);
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.redis_url = Some(redis_url);
        c.cache.timeout = FALLBACK_CACHE_TIMEOUT;
    })
    .await;
    let customer = Uuid::now_v7();
    let id = app.create_order(customer).await;
    let token = app.customer(customer);
    let path = format!("/orders/{id}");
    let first: Value = app.get(&path, &token).await.json().await.unwrap(); // miss, fills the cache
    let cached: Value = app.get(&path, &token).await.json().await.unwrap(); // hit
    assert_eq!(first, cached);

    // Redis goes down: reads still answer (from the database), and so do writes.
    proxy.refuse();
    let response = read_within_deadline(&app, &path, &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), first);
    let confirmed = app
        .post(&format!("{path}/confirm"), &app.staff(), None)
        .await;
    assert_eq!(confirmed.status(), StatusCode::OK);

    // Redis comes back: the new version is read, never the stale cached one.
    proxy.forward();
    let after: Value = app.get(&path, &token).await.json().await.unwrap();
    assert_eq!(after["status"], "confirmed");

    // The client reconnects in the background: wait until reads are cache hits again, so that
    // the hang below meets a working connection (not one already known to be broken).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let hits = counter(&app, "cache_requests_total", "result=\"hit\"").await;
        app.get(&path, &token).await;
        if counter(&app, "cache_requests_total", "result=\"hit\"").await > hits {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the cache did not recover after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Redis hangs: each read waits at most the cache timeout, then uses the database.
    proxy.hang();
    let failures = counter(&app, "cache_failures_total", "operation=\"get\"").await;
    let response = read_within_deadline(&app, &path, &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap()["status"],
        "confirmed"
    );
    assert!(
        counter(&app, "cache_failures_total", "operation=\"get\"").await > failures,
        "the read did not go to the hanging Redis"
    );
}
