//! The service publishing to a real Kafka-protocol broker (tansu) while the broker becomes
//! unreachable in the middle of a load of commands: every command is answered meanwhile, events
//! accumulate, and once the broker is back every event arrives.
//!
//! Memory storage does not survive a broker restart, so the "outage" is a TCP proxy in front of
//! the broker that breaks every connection and refuses new ones; the broker advertises the
//! proxy's address, so every client connection goes through it.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

#[path = "api/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::time::{Duration, Instant};

use outbox::check::Checker;
use outbox::consume::{ConsumerOptions, EventConsumer};
use outbox::{KafkaConfig, RelayDb};
use reqwest::StatusCode;
use test_support::proxy::Proxy;
use test_support::tansu::{Tansu, free_addr};
use uuid::Uuid;

use harness::{Backend, TestApp, spawn_app_with};

const TOPIC: &str = "orders.events";
const CHECKPOINT: &str = "kafka-relay:orders.events";

/// Creates and confirms `n` orders, 4 at a time; every command must succeed.
async fn orders(app: &TestApp, n: usize) {
    let staff = app.staff();
    let mut pending = futures::stream::FuturesUnordered::new();
    let mut started = 0;
    let mut finished = 0;
    use futures::StreamExt;
    while finished < n {
        while started < n && pending.len() < 4 {
            started += 1;
            pending.push(async {
                let id = app.create_order(Uuid::now_v7()).await;
                let confirmed = app
                    .post(&format!("/orders/{id}/confirm"), &staff, None)
                    .await;
                assert_eq!(
                    confirmed.status(),
                    StatusCode::OK,
                    "confirm during the outage"
                );
            });
        }
        pending.next().await;
        finished += 1;
    }
}

async fn relay_db(app: &TestApp) -> RelayDb {
    let pool = sqlx::PgPool::connect(app.database_url.as_deref().unwrap())
        .await
        .unwrap();
    RelayDb::Postgres(pool)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_mid_load_loses_nothing_and_commands_keep_working() {
    let listen = free_addr();
    let proxy = Proxy::start(listen).await;
    let broker = Tansu::start_advertising(listen, proxy.addr);
    broker.create_topic(TOPIC);
    let brokers = proxy.addr.to_string();
    let app = spawn_app_with(Backend::Postgres, |config| {
        config.kafka = KafkaConfig::new(brokers.clone()).with_topic(TOPIC);
    })
    .await;
    let db = relay_db(&app).await;

    orders(&app, 10).await; // broker up
    proxy.refuse(); // broker "down": connections broken, new ones dropped
    orders(&app, 20).await;
    // Wait until the feed has numbered all 30 orders' events (the position comes a moment after
    // the commit), then give a relay that wrongly kept publishing 2 s to reach the head: a
    // negative check can only be given a window.
    let deadline = Instant::now() + Duration::from_secs(30);
    let head = loop {
        let head = db.head().await.unwrap();
        if head >= 2 * 30 {
            break head;
        }
        assert!(Instant::now() < deadline, "the feed head stayed at {head}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stuck = db.checkpoint(CHECKPOINT).await.unwrap();
    assert!(
        stuck < head,
        "events accumulate while the broker is away ({stuck} of {head})"
    );
    orders(&app, 10).await;
    proxy.forward(); // broker back: publishing resumes by itself

    let expected = 2 * 40;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (head, checkpoint) = (
            db.head().await.unwrap(),
            db.checkpoint(CHECKPOINT).await.unwrap(),
        );
        if head == expected && checkpoint == head {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "relay stuck at {checkpoint} of {head}; broker log:\n{}",
            broker.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let consumer = EventConsumer::connect(&ConsumerOptions {
        brokers: brokers.clone(),
        topic: TOPIC.to_owned(),
        group: format!("test-{}", Uuid::now_v7()),
        properties: Default::default(),
    })
    .unwrap();
    let mut checker = Checker::new();
    while checker.new_events() < expected {
        let message = consumer.next(Duration::from_secs(30)).await.unwrap();
        let message = message.unwrap_or_else(|| {
            panic!("only {} of {expected} events arrived", checker.new_events())
        });
        checker.observe(&message);
    }
    assert_eq!(checker.problems(), &[] as &[String]);
    assert_eq!(checker.versions().len(), 40);
    assert!(checker.versions().values().all(|v| *v == 2));

    // The shipped consumer agrees: `orders kafka consume --check` exits 0 after 80 events.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_orders"))
        .args(["kafka", "consume", "--brokers", &brokers, "--topic", TOPIC])
        .args(["--group", &format!("cli-{}", Uuid::now_v7())])
        .args(["--count", "80", "--timeout", "30s", "--check", "--json"])
        .env_remove("KAFKA_PROPERTIES")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "orders kafka consume --check failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(lines.len() >= 80);
    assert!(lines.iter().all(|line| line["status"] != "problem"));
}
