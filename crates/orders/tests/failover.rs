//! Losing the database primary loses nothing: `orders serve` on a Patroni formation (three
//! PostgreSQL servers, synchronous replication, strict mode) publishing to Kafka (tansu), while
//! clients send commands with idempotency keys; the primary's Patroni and PostgreSQL are killed
//! with `kill -9` mid-load. Every acknowledged command is on the new primary, every command whose
//! answer was lost resolves by a retry with its key, the feed is dense, every Kafka message's
//! event is in the store at the position it carries, and the read model and relay catch up,
//! without restarting the service.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orders::auth::{JwtKeys, Role};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, PgPool};
use test_support::ha::Formation;
use test_support::service::ServiceBuilder;
use uuid::Uuid;

const SECRET: &str = "failover-test-secret-0123456789abcdef";
const TOPIC: &str = "orders.failover";
const CLIENTS: usize = 4;

/// What a client saw of one command.
#[derive(Debug, Clone)]
struct Acknowledged {
    order: Uuid,
    version: u64,
    /// Attempts it took (more than one: its first answer was lost or was a 503).
    attempts: u32,
    /// When its first attempt was sent.
    sent: Instant,
    /// When it was acknowledged.
    at: Instant,
}

/// Sends `POST path` with `key` until a 2xx, retrying the same key on anything else; panics
/// after 90 s (the failover should take a fraction of that).
async fn until_acknowledged(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
    key: &str,
    body: &Value,
) -> (Value, u32) {
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let response = client
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await;
        let seen = match response {
            Ok(response) if response.status().is_success() => {
                return (response.json().await.unwrap(), attempts);
            }
            Ok(response) => {
                let status = response.status();
                let problem: Value = response.json().await.unwrap_or(Value::Null);
                assert!(
                    status == StatusCode::SERVICE_UNAVAILABLE
                        || status == StatusCode::REQUEST_TIMEOUT,
                    "{path} with key {key}: {status} {problem}"
                );
                format!("{status} {}", problem["code"])
            }
            Err(error) => error.to_string(),
        };
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "{path} with key {key} not acknowledged within 90 s; last: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `database` on the formation's current leader (sqlx itself takes one host only).
fn on_primary(formation: &Formation, database: &str) -> String {
    format!(
        "postgres://postgres@127.0.0.1:{}/{database}",
        formation.primary()
    )
}

/// Waits (at most 120 s) until the primary streams to `n` standbys.
async fn wait_for_standbys(formation: &Formation, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let streaming = async {
            let url = on_primary(formation, "orders");
            let mut connection = PgConnection::connect(&url).await.ok()?;
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM pg_stat_replication WHERE state = 'streaming'",
            )
            .fetch_one(&mut connection)
            .await
            .ok()
        };
        if streaming.await == Some(n) {
            return;
        }
        assert!(Instant::now() < deadline, "the killed node did not rejoin");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_primary_loses_no_acknowledged_command() {
    let formation = Formation::start();
    println!("{}", formation.status());
    let mut admin = PgConnection::connect(&on_primary(&formation, "postgres"))
        .await
        .unwrap();
    sqlx::query("CREATE DATABASE orders")
        .execute(&mut admin)
        .await
        .unwrap();
    drop(admin);
    let url = formation.url("orders");
    let broker = test_support::tansu::Tansu::start();
    broker.create_topic(TOPIC);
    let brokers = broker.bootstrap();
    let data = tempfile::tempdir().unwrap();

    let log = data.path().join("service.log");
    let service = ServiceBuilder::new(env!("CARGO_BIN_EXE_orders"), "failover")
        .env("DATABASE_URL", &url)
        .env("ORDERS_JWT_SECRET", SECRET)
        .env("ORDERS_DATA_DIR", data.path())
        .env("KAFKA_BROKERS", &brokers)
        .env("KAFKA_TOPIC", TOPIC)
        .log_to(&log)
        .ready_within(Duration::from_secs(60))
        .start()
        .await;
    let base = service.base_url();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let ready: Value = client
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first_primary = formation.primary();
    assert_eq!(
        ready["primary"],
        json!(format!("127.0.0.1:{first_primary}"))
    );
    let staff = JwtKeys::new(SECRET.as_bytes())
        .issue("ops", Role::Staff, Duration::from_secs(900))
        .unwrap();

    // Clients: create an order, confirm it, repeat; each command with a key of its own, retried
    // with that key until acknowledged.
    let acknowledged: Arc<Mutex<Vec<Acknowledged>>> = Arc::default();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (client, base, staff, acknowledged, stopped) = (
            client.clone(),
            base.clone(),
            staff.clone(),
            acknowledged.clone(),
            stopped.clone(),
        );
        clients.push(tokio::spawn(async move {
            while !*stopped.borrow() {
                let body = json!({
                    "customer_id": Uuid::now_v7(),
                    "currency": "EUR",
                    "items": [{"product_id": Uuid::now_v7(), "sku": "SKU-1", "quantity": 2, "unit_price": 1250}],
                });
                let key = Uuid::now_v7().to_string();
                let sent = Instant::now();
                let (created, attempts) =
                    until_acknowledged(&client, &base, &staff, "/orders", &key, &body).await;
                let order: Uuid = created["id"].as_str().unwrap().parse().unwrap();
                acknowledged.lock().unwrap().push(Acknowledged {
                    order,
                    version: 1,
                    attempts,
                    sent,
                    at: Instant::now(),
                });
                let key = Uuid::now_v7().to_string();
                let path = format!("/orders/{order}/confirm");
                let sent = Instant::now();
                let (confirmed, attempts) =
                    until_acknowledged(&client, &base, &staff, &path, &key, &json!({})).await;
                assert_eq!(confirmed["version"], json!(2), "{confirmed}");
                acknowledged.lock().unwrap().push(Acknowledged {
                    order,
                    version: 2,
                    attempts,
                    sent,
                    at: Instant::now(),
                });
            }
        }));
    }

    // One kill by default; `scripts/failover-soak.sh` sets ORDERS_FAILOVER_KILLS=20.
    let kills: usize = std::env::var("ORDERS_FAILOVER_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let mut killed = 0;
    let mut recoveries = Vec::new();
    for round in 1..=kills {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let before = acknowledged.lock().unwrap().len();
        killed = formation.kill_primary();
        let killed_at = Instant::now();
        // Writes go on once Patroni has promoted the synchronous standby.
        let deadline = Instant::now() + Duration::from_secs(90);
        let first_after = loop {
            let after = acknowledged
                .lock()
                .unwrap()
                .iter()
                .filter(|a| a.sent > killed_at)
                .map(|a| a.at)
                .min();
            if let Some(at) = after {
                break at.duration_since(killed_at);
            }
            assert!(
                Instant::now() < deadline,
                "no command acknowledged within 90 s of the kill\n{}\nservice log:\n{}",
                formation.status(),
                service.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        recoveries.push(first_after);
        println!(
            "kill {round}/{kills}: primary on port {killed} killed; first acknowledged command \
             {:.1} s later; {before} commands acknowledged before it",
            first_after.as_secs_f64()
        );
        if round < kills {
            // The killed node rejoins as a replica, so that the next kill again leaves a
            // primary with a synchronous standby.
            formation.start_node(killed);
            wait_for_standbys(&formation, 2).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.send(true).unwrap();
    for client in clients {
        client.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let retried = acknowledged.iter().filter(|a| a.attempts > 1).count();
    let slowest = recoveries.iter().max().copied().unwrap_or_default();
    println!(
        "{} commands acknowledged over {kills} kill(s), {retried} of them after a lost or \
         refused answer; kill to next acknowledged command: slowest {:.1} s",
        acknowledged.len(),
        slowest.as_secs_f64()
    );
    assert!(acknowledged.len() > 20, "the load made too little");

    let new_primary = formation.primary();
    assert_ne!(new_primary, killed);
    let pool = PgPool::connect(&on_primary(&formation, "orders"))
        .await
        .unwrap();

    // Every acknowledged command's event is on the new primary, once.
    let stored: Vec<(Uuid, i64)> = sqlx::query_as("SELECT aggregate_id, version FROM events")
        .fetch_all(&pool)
        .await
        .unwrap();
    let stored: HashMap<(Uuid, u64), usize> =
        stored.iter().fold(HashMap::new(), |mut counts, (id, v)| {
            *counts.entry((*id, *v as u64)).or_default() += 1;
            counts
        });
    let lost: Vec<&Acknowledged> = acknowledged
        .iter()
        .filter(|a| stored.get(&(a.order, a.version)) != Some(&1))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged but not stored once: {lost:?}"
    );

    // The feed is dense and numbers everything (the sequencer runs on the new primary).
    let deadline = Instant::now() + Duration::from_secs(30);
    let head: i64 = loop {
        let (events, numbered, head): (i64, i64, Option<i64>) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM events), (SELECT COUNT(*) FROM event_positions),
                    (SELECT MAX(position) FROM event_positions)",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(Some(numbered), head.or(Some(0)), "the feed has a gap");
        if numbered == events {
            break numbered;
        }
        assert!(
            Instant::now() < deadline,
            "{events} events, {numbered} numbered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // `orders verify` replays every stream on the new primary.
    let verify = Command::new(env!("CARGO_BIN_EXE_orders"))
        .arg("verify")
        .env("DATABASE_URL", &url)
        .env("ORDERS_DATA_DIR", data.path())
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "orders verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );

    // The read model catches up on the new primary without a restart.
    let stats: Value = client
        .get(format!("{base}/stats?min_position={head}"))
        .bearer_auth(&staff)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let orders = acknowledged.iter().filter(|a| a.version == 1).count() as i64;
    let total = stats["orders_by_status"]
        .as_object()
        .map(|by| by.values().filter_map(Value::as_i64).sum::<i64>())
        .unwrap_or_default();
    assert!(
        total >= orders,
        "the read model has {total} orders of {orders}: {stats}"
    );
    let ready: Value = client
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["primary"], json!(format!("127.0.0.1:{new_primary}")));

    // Kafka: every message's event is in the store at the position it carries (no message for
    // an event the new primary lacks), and the relay publishes the whole feed.
    let positions: HashMap<Uuid, i64> = sqlx::query_as::<_, (Uuid, i64)>(
        "SELECT e.event_id, p.position FROM events e JOIN event_positions p ON p.seq = e.seq",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let consumer = outbox::consume::EventConsumer::connect(&outbox::consume::ConsumerOptions {
        brokers: brokers.clone(),
        topic: TOPIC.to_owned(),
        group: format!("test-{}", Uuid::now_v7()),
        properties: Default::default(),
    })
    .unwrap();
    let mut checker = outbox::check::Checker::new();
    let mut phantoms = Vec::new();
    while checker.new_events() < head as u64 {
        let message = consumer.next(Duration::from_secs(60)).await.unwrap();
        let message = message.unwrap_or_else(|| {
            panic!(
                "only {} of {head} events reached the topic; service log:\n{}",
                checker.new_events(),
                service.log()
            )
        });
        let event = message.event.as_ref().unwrap();
        if positions.get(&event.event_id) != Some(&(event.position as i64)) {
            phantoms.push((event.event_id, event.position));
        }
        checker.observe(&message);
    }
    assert_eq!(
        phantoms,
        [],
        "messages whose event is not at that position in the store"
    );
    assert_eq!(checker.problems(), &[] as &[String]);
    println!(
        "{head} events published after the failover ({} duplicates, at-least-once)",
        checker.duplicates()
    );
}
