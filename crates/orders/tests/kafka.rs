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

use event_store::Feed;
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
    RelayDb::new(store::Db::Postgres(pool))
}

/// The feed of the service's database, read by a second store handle that numbers nothing.
async fn feed(app: &TestApp) -> event_store_postgres::PostgresEventStore {
    let options = event_store_postgres::PostgresOptions {
        sequencer: false,
        group_commit: None,
        ..Default::default()
    };
    event_store_postgres::PostgresEventStore::connect(app.database_url.as_deref().unwrap(), options)
        .await
        .unwrap()
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
    let feed = feed(&app).await;

    orders(&app, 10).await; // broker up
    proxy.refuse(); // broker "down": connections broken, new ones dropped
    orders(&app, 20).await;
    // Wait until the feed has numbered all 30 orders' events (the position comes a moment after
    // the commit), then give a relay that wrongly kept publishing 2 s to reach the head: a
    // negative check can only be given a window.
    let deadline = Instant::now() + Duration::from_secs(30);
    let head = loop {
        let head = feed.head().await.unwrap();
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
            feed.head().await.unwrap(),
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

/// The service on SQLite, killed with SIGKILL while its relay is half-way through the feed, then
/// started again on the same file: every event arrives, in version order per order, and the only
/// duplicates are of events after the checkpoint the killed process had stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_service_killed_mid_publish_and_restarted_loses_nothing() {
    use event_store::{EventStore, NewEvent};
    use event_store_sqlite::{SqliteEventStore, SqliteOptions};

    const ORDERS: usize = 100;
    const PER_ORDER: usize = 20;
    const BATCH: u64 = 50;
    let total = (ORDERS * PER_ORDER) as u64;
    let broker = Tansu::start();
    broker.create_topic(TOPIC);
    let dir = tempfile::tempdir().unwrap();

    // The feed is written before the service starts, interleaving the orders, so that the relay
    // has a long way to go when it is killed.
    let store = SqliteEventStore::open(dir.path().join("orders.db"), SqliteOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let ids: Vec<Uuid> = (0..ORDERS).map(|_| Uuid::now_v7()).collect();
    for version in 0..PER_ORDER {
        for id in &ids {
            let event = NewEvent::new("Order", "Step", 1, serde_json::json!({ "v": version }))
                .with_metadata(serde_json::json!({
                    "correlation_id": Uuid::now_v7(),
                    "causation_id": Uuid::now_v7(),
                    "timestamp": chrono::Utc::now(),
                }));
            store
                .append_events(*id, version as u64, vec![event])
                .await
                .unwrap();
        }
    }
    let db = RelayDb::new(store::Db::Sqlite {
        writer: store.writer().clone(),
        reader: store.reader().clone(),
    });
    assert_eq!(store.head().await.unwrap(), total);

    // Not test_support::service: the kill must land while batches are in flight, timed by the
    // checkpoint alone, without waiting for readiness first.
    let serve = |dir: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_orders"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args([
                "--kafka-brokers",
                &broker.bootstrap(),
                "--kafka-topic",
                TOPIC,
            ])
            // Small batches and a small window: the checkpoint advances in many steps, so the
            // kill finds batches in flight.
            .args(["--kafka-batch-size", &BATCH.to_string()])
            .args(["--kafka-max-in-flight", "200"])
            .env(
                "ORDERS_JWT_SECRET",
                "kafka-kill-test-secret-0123456789abcdef",
            )
            .env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .env_remove("KAFKA_PROPERTIES")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let wait_checkpoint = |target: u64, timeout: Duration| {
        let db = db.clone();
        async move {
            let deadline = Instant::now() + timeout;
            loop {
                let checkpoint = db.checkpoint(CHECKPOINT).await.unwrap();
                if checkpoint >= target {
                    return checkpoint;
                }
                assert!(
                    Instant::now() < deadline,
                    "the relay's checkpoint stayed at {checkpoint} (waiting for {target})"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    };

    let mut service = serve(dir.path());
    wait_checkpoint(300, Duration::from_secs(60)).await;
    service.kill().unwrap(); // SIGKILL: nothing flushed, nothing acknowledged after this
    service.wait().unwrap();
    let killed_at = db.checkpoint(CHECKPOINT).await.unwrap();
    assert!(
        killed_at < total,
        "killed before the end of the feed ({killed_at})"
    );
    assert_eq!(
        killed_at % BATCH,
        0,
        "the stored checkpoint {killed_at} ends an acknowledged batch"
    );

    let mut service = serve(dir.path());
    wait_checkpoint(total, Duration::from_secs(90)).await;
    service.kill().unwrap();
    service.wait().unwrap();

    let consumer = EventConsumer::connect(&ConsumerOptions {
        brokers: broker.bootstrap(),
        topic: TOPIC.to_owned(),
        group: format!("test-{}", Uuid::now_v7()),
        properties: Default::default(),
    })
    .unwrap();
    let mut checker = Checker::new();
    let mut copies: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
    // Everything, then 3 s more for anything extra.
    loop {
        let wait = if checker.new_events() < total {
            Duration::from_secs(30)
        } else {
            Duration::from_secs(3)
        };
        let Some(message) = consumer.next(wait).await.unwrap() else {
            break;
        };
        checker.observe(&message);
        *copies
            .entry(message.event.as_ref().unwrap().position)
            .or_default() += 1;
    }
    assert_eq!(checker.problems(), &[] as &[String], "contract violations");
    assert_eq!(checker.new_events(), total, "distinct events");
    assert_eq!(checker.versions().len(), ORDERS);
    assert!(checker.versions().values().all(|v| *v == PER_ORDER as u64));
    // Up to the stored checkpoint the killed process's events were acknowledged and never sent
    // again: exactly one copy. After it, what was in flight may have arrived twice.
    for (&position, &count) in &copies {
        let senders = if position <= killed_at { 1 } else { 2 };
        assert!(
            count <= senders,
            "position {position} arrived {count} times (killed at {killed_at})"
        );
    }
    assert_eq!(copies.len() as u64, total, "every position arrived");
    eprintln!(
        "killed at checkpoint {killed_at}; {} duplicates skipped by the consumer",
        checker.duplicates()
    );
}

/// Personal data on the topic: an order with an address, a contact and a cancellation reason,
/// then its customer forgotten. No published message holds any of those values readably (they
/// arrive sealed), and the forgetting itself is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_messages_carry_no_readable_personal_data_and_the_forgetting() {
    let broker = Tansu::start();
    broker.create_topic(TOPIC);
    let brokers = broker.bootstrap();
    let app = spawn_app_with(Backend::Postgres, |config| {
        config.kafka = KafkaConfig::new(brokers.clone()).with_topic(TOPIC);
    })
    .await;
    let tag = Uuid::new_v4().simple().to_string()[..12].to_uppercase();
    let markers = [
        format!("NAME{tag}"),
        format!("STREET{tag}"),
        format!("mail{}@example.com", tag.to_lowercase()),
        format!("REASON{tag}"),
    ];
    let customer = Uuid::now_v7();
    let mut body = harness::order_body();
    body["shipping_address"] = serde_json::json!({
        "recipient_name": markers[0], "line1": markers[1], "postal_code": "10117",
        "city": "Berlin", "country": "DE"
    });
    body["contact"] = serde_json::json!({ "email": markers[2] });
    let created = app
        .post("/orders", &app.customer(customer), Some(body))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let reason = serde_json::json!({ "reason": markers[3] });
    let cancelled = app
        .post(
            &format!("/orders/{id}/cancel"),
            &app.customer(customer),
            Some(reason),
        )
        .await;
    assert_eq!(cancelled.status(), StatusCode::OK);
    let forgotten = app
        .post(&format!("/customers/{customer}/forget"), &app.staff(), None)
        .await;
    assert_eq!(forgotten.status(), StatusCode::OK);

    let consumer = EventConsumer::connect(&ConsumerOptions {
        brokers: brokers.clone(),
        topic: TOPIC.to_owned(),
        group: format!("test-{}", Uuid::now_v7()),
        properties: Default::default(),
    })
    .unwrap();
    let mut types = Vec::new();
    while types.len() < 3 {
        let message = consumer
            .next(Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("only {types:?} arrived; broker log:\n{}", broker.log()));
        let event = message.event.unwrap();
        let text = serde_json::to_string(&event).unwrap();
        for marker in &markers {
            assert!(!text.contains(marker.as_str()), "{text} holds {marker}");
        }
        if event.event_type == "OrderCreated" {
            assert_eq!(event.event_schema_version, 2);
            let sealed = event.data["shipping_address"].as_str().unwrap();
            assert!(sealed.starts_with("enc:v1:"), "{sealed}");
        }
        if event.event_type == "CustomerForgotten" {
            assert_eq!(event.aggregate_type, "Customer");
            assert_eq!(event.data["customer_id"], customer.to_string());
            assert_eq!(event.data["forgotten_by"], "ops");
        }
        types.push(event.event_type);
    }
    assert!(types.iter().any(|t| t == "CustomerForgotten"), "{types:?}");
    // The order's own events in their order; the forgetting (another key) may interleave.
    types.retain(|t| t != "CustomerForgotten");
    assert_eq!(
        types,
        ["OrderCreated", "OrderCancelled"],
        "and one CustomerForgotten"
    );
    the_console_shows_the_relay(&app).await;
}

/// The console's operations page names the instance holding the relay's lease (read from the
/// advisory lock's session) and its checkpoint once it has published everything.
async fn the_console_shows_the_relay(app: &TestApp) {
    let head = feed(app).await.head().await.unwrap();
    let db = relay_db(app).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.checkpoint(CHECKPOINT).await.unwrap() < head {
        assert!(Instant::now() < deadline, "the relay never reached {head}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        db.holder(CHECKPOINT).await.unwrap().as_deref(),
        Some(app.config.instance_id.as_str())
    );
    let secret = app.config.jwt_secret.clone().unwrap();
    let link = operator_console::ConsoleKeys::derive(secret.as_bytes())
        .issue_link("ops", Duration::from_secs(60))
        .unwrap();
    // The login answers 303 with the cookie: look at it rather than follow it.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = client
        .post(app.url("/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={link}"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    let session = cookie.split(';').next().unwrap().to_owned();
    let page = client
        .get(app.url("/console/operations"))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains(TOPIC), "{html}");
    let held = format!(
        "data-testid=\"relay-holder\"><code>{}</code>",
        app.config.instance_id
    );
    assert!(html.contains(&held), "{html}");
    let checkpoint = format!("data-testid=\"relay-checkpoint\">{head}</dd>");
    assert!(html.contains(&checkpoint), "{html}");
}
