//! Two service processes on one PostgreSQL database deliver to one webhook endpoint while orders
//! are written: one instance at a time delivers (the endpoint's fenced lease); when it is killed
//! with `kill -9` mid-delivery, the other takes over within 10 s, and the only events the
//! receiver gets twice are those after the checkpoint stored at the kill.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use orders::auth::{JwtKeys, Role};
use serde_json::{Value, json};
use sqlx::PgPool;
use test_support::eventually;
use test_support::load::CreateLoad;
use test_support::service::{Service, ServiceBuilder};
use test_support::webhooks::{Behaviour, Receiver};
use uuid::Uuid;

const SECRET: &str = "webhook-failover-secret-0123456789abcdef";

async fn start(name: &str, database_url: &str, data_dir: &std::path::Path) -> Service {
    ServiceBuilder::new(env!("CARGO_BIN_EXE_orders"), name)
        .env("DATABASE_URL", database_url)
        .env("ORDERS_JWT_SECRET", SECRET)
        // One master key for both: either must open the endpoint's secret.
        .env(
            "ORDERS_MASTER_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )
        .env("ORDERS_DATA_DIR", data_dir.join(name))
        .env("ORDERS_WEBHOOKS_ALLOW_LOOPBACK", "true")
        .env("ORDERS_WEBHOOKS_BACKOFF_MIN", "100ms")
        .env("ORDERS_WEBHOOKS_BACKOFF_MAX", "500ms")
        .start()
        .await
}

/// The instance delivering to `endpoint` while its lease runs, and the stored checkpoint.
async fn holder(pool: &PgPool, endpoint: &str) -> (Option<String>, i64) {
    sqlx::query_as(
        "SELECT CASE WHEN lease_until > now() THEN owner END, position FROM projections WHERE name = $1",
    )
    .bind(format!("webhook:{endpoint}"))
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_delivering_instance_is_replaced_within_ten_seconds_without_losing_an_event() {
    let url = test_support::postgres::fresh_database_url().await;
    let dir = tempfile::tempdir().unwrap();
    let mut instances = [
        start("a", &url, dir.path()).await,
        start("b", &url, dir.path()).await,
    ];
    let pool = PgPool::connect(&url).await.unwrap();
    let staff = JwtKeys::new(SECRET.as_bytes())
        .issue("ops", Role::Staff, Duration::from_secs(600))
        .unwrap();
    let client = reqwest::Client::new();
    let mut receiver = Receiver::start(Behaviour::default()).await;
    let registered: Value = client
        .post(format!("{}/webhooks", instances[0].base_url()))
        .bearer_auth(&staff)
        .json(&json!({ "url": receiver.url() }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    receiver.trust(registered["secret"].as_str().unwrap()).await;
    let endpoint = registered["id"].as_str().unwrap().to_owned();

    // Load on both instances; the killed one is dropped from it.
    let load = CreateLoad::start(
        instances.iter().map(|i| i.port).collect(),
        staff.clone(),
        Duration::from_millis(10),
    );

    // Deliveries under way; find who delivers, and kill it.
    eventually(
        Duration::from_secs(30),
        "deliveries under way",
        async || receiver.accepted().len() >= 20,
    )
    .await;
    let (Some(owner), _) = holder(&pool, &endpoint).await else {
        panic!("nobody holds the endpoint's lease while it delivers");
    };
    let victim = instances.iter().position(|i| i.name == owner).unwrap();
    load.up
        .lock()
        .unwrap()
        .retain(|p| *p != instances[victim].port);
    instances[victim].kill();
    let killed_at = Instant::now();
    let (_, checkpoint_at_kill) = holder(&pool, &endpoint).await;
    let checkpoint_at_kill = u64::try_from(checkpoint_at_kill).unwrap();
    let survivor = instances[1 - victim].name.clone();
    loop {
        if holder(&pool, &endpoint).await.0.as_deref() == Some(survivor.as_str()) {
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(30),
            "nobody took over from {owner}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let takeover = killed_at.elapsed();
    assert!(
        takeover < Duration::from_secs(10),
        "takeover took {takeover:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let acknowledged = load.stop().await;

    // Every acknowledged order's creation arrives, verified; duplicates only after the
    // checkpoint stored at the kill.
    let acknowledged: HashSet<String> = acknowledged.iter().map(Uuid::to_string).collect();
    eventually(
        Duration::from_secs(60),
        "every acknowledged order delivered",
        async || {
            let got: HashSet<String> = receiver
                .accepted()
                .iter()
                .map(|d| d["order_id"].as_str().unwrap().to_owned())
                .collect();
            acknowledged.is_subset(&got)
        },
    )
    .await;
    let requests = receiver.requests();
    assert!(
        requests.iter().all(|r| r["outcome"] != "unverified"),
        "{requests:?}"
    );
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut duplicates = 0;
    for delivery in receiver.accepted() {
        let position = delivery["position"].as_u64().unwrap();
        if seen
            .insert(delivery["id"].as_str().unwrap().to_owned(), position)
            .is_some()
        {
            duplicates += 1;
            assert!(
                position > checkpoint_at_kill,
                "event at {position} delivered twice although the checkpoint at the kill was {checkpoint_at_kill}"
            );
        }
    }
    println!(
        "webhook takeover after kill -9 in {takeover:?}; {} orders, {duplicates} redelivered after checkpoint {checkpoint_at_kill}",
        acknowledged.len()
    );
}
