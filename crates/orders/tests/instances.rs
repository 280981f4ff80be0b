//! Three service processes on one PostgreSQL database, publishing to one Kafka topic, under
//! load: the projection's work and the relay's are each done by one instance at a time, and they
//! fail over, fenced, when the working one is killed with `kill -9` or frozen with SIGSTOP.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::{Duration, Instant};

use orders::auth::{JwtKeys, Role};
use serde_json::{Value, json};
use sqlx::PgPool;
use test_support::load::CreateLoad;
use test_support::service::{Service, ServiceBuilder};
use uuid::Uuid;

const SECRET: &str = "instances-test-secret-0123456789abcdef";
const TOPIC: &str = "orders.instances";

/// One `orders serve` process of the three, on `database_url`, publishing to `brokers`.
async fn start(
    name: &str,
    database_url: &str,
    brokers: &str,
    data_dir: &std::path::Path,
) -> Service {
    ServiceBuilder::new(env!("CARGO_BIN_EXE_orders"), name)
        .env("DATABASE_URL", database_url)
        .env("ORDERS_JWT_SECRET", SECRET)
        .env("ORDERS_DATA_DIR", data_dir.join(name))
        .env("KAFKA_BROKERS", brokers)
        .env("KAFKA_TOPIC", TOPIC)
        .start()
        .await
}

/// The holder of the order projection's lease while its lease runs.
async fn holder(pool: &PgPool) -> Option<(String, i64)> {
    sqlx::query_as(
        "SELECT owner, epoch FROM projections WHERE name = 'orders' AND lease_until > now()",
    )
    .fetch_optional(pool)
    .await
    .unwrap()
}

/// The instance whose relay holds the publishing lease (its lease connection's name).
async fn relay_holder(pool: &PgPool) -> Option<String> {
    let name: Option<String> = sqlx::query_scalar(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND a.datname = current_database()
           AND a.application_name LIKE 'orders-outbox-relay %'",
    )
    .fetch_optional(pool)
    .await
    .unwrap();
    name.map(|n| n.trim_start_matches("orders-outbox-relay ").to_owned())
}

/// Waits until someone other than `previous` holds the relay lease.
async fn relay_takeover(pool: &PgPool, previous: &str, since: Instant) -> (String, Duration) {
    loop {
        if let Some(held) = relay_holder(pool).await
            && held != previous
        {
            return (held, since.elapsed());
        }
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "no relay took over from {previous}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until someone other than `previous` holds the lease; returns it and how long it took.
async fn takeover(pool: &PgPool, previous: &str, since: Instant) -> ((String, i64), Duration) {
    loop {
        if let Some(held) = holder(pool).await
            && held.0 != previous
        {
            return (held, since.elapsed());
        }
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "nobody took over from {previous}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projection_fails_over_fenced_when_its_instance_is_killed_or_frozen() {
    let url = test_support::postgres::fresh_database_url().await;
    let dir = tempfile::tempdir().unwrap();
    let broker = test_support::tansu::Tansu::start();
    broker.create_topic(TOPIC);
    let brokers = broker.bootstrap();
    let mut instances = Vec::new();
    for name in ["a", "b", "c"] {
        instances.push(start(name, &url, &brokers, dir.path()).await);
    }
    let pool = PgPool::connect(&url).await.unwrap();
    let staff = JwtKeys::new(SECRET.as_bytes())
        .issue("ops", Role::Staff, Duration::from_secs(600))
        .unwrap();

    // Load: creates spread over the instances that are up, every acknowledged id recorded.
    let load = CreateLoad::start(
        instances.iter().map(|i| i.port).collect(),
        staff.clone(),
        Duration::from_millis(5),
    );
    let up = load.up.clone();

    let deadline = Instant::now() + Duration::from_secs(30);
    let (first, publisher) = loop {
        if let (Some(held), Some(publisher)) = (holder(&pool).await, relay_holder(&pool).await) {
            break (held, publisher);
        }
        assert!(Instant::now() < deadline, "no instance took the leases");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    println!("projection held by {}, relay by {publisher}", first.0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut relay_takeovers = Vec::new();

    // kill -9 the working instance.
    let killed = instances.iter().position(|i| i.name == first.0).unwrap();
    up.lock().unwrap().retain(|p| *p != instances[killed].port);
    let since = Instant::now();
    instances[killed].signal("KILL");
    let watch_relay = publisher == first.0;
    let ((second, after_kill), relay) = tokio::join!(takeover(&pool, &first.0, since), async {
        if watch_relay {
            Some(relay_takeover(&pool, &publisher, since).await)
        } else {
            None
        }
    });
    println!(
        "projection takeover after kill -9 of {}: {after_kill:?} (by {})",
        first.0, second.0
    );
    assert!(after_kill < Duration::from_secs(10), "{after_kill:?}");
    assert!(second.1 > first.1, "a takeover bumps the epoch");
    let publisher = match relay {
        Some((next, took)) => {
            println!("relay takeover after kill -9 of {publisher}: {took:?} (by {next})");
            relay_takeovers.push(took);
            next
        }
        None => publisher,
    };
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Freeze the new working instance, let the third take over, then wake it up.
    let frozen = instances.iter().position(|i| i.name == second.0).unwrap();
    up.lock().unwrap().retain(|p| *p != instances[frozen].port);
    let since = Instant::now();
    instances[frozen].signal("STOP");
    let watch_relay = publisher == second.0;
    let ((third, after_freeze), relay) = tokio::join!(takeover(&pool, &second.0, since), async {
        if watch_relay {
            Some(relay_takeover(&pool, &publisher, since).await)
        } else {
            None
        }
    });
    println!(
        "projection takeover after SIGSTOP of {}: {after_freeze:?} (by {})",
        second.0, third.0
    );
    assert!(after_freeze < Duration::from_secs(10), "{after_freeze:?}");
    assert!(third.1 > second.1);
    if let Some((next, took)) = relay {
        println!("relay takeover after SIGSTOP of {publisher}: {took:?} (by {next})");
        relay_takeovers.push(took);
    }
    assert!(
        relay_takeovers.iter().all(|t| *t < Duration::from_secs(10)),
        "{relay_takeovers:?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    instances[frozen].signal("CONT");
    up.lock().unwrap().push(instances[frozen].port);
    tokio::time::sleep(Duration::from_secs(2)).await; // the woken one tries its stale batch

    let acknowledged = load.stop().await;
    assert!(
        acknowledged.len() > 50,
        "the load made {} orders",
        acknowledged.len()
    );

    // Requests the frozen instance took before it froze are answered to nobody (the client gave
    // up) but still commit once it runs again: let them, then look.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Every acknowledged order is in the read model exactly once, at version 1, on every
    // instance still up; nothing was parked (an event applied twice would be). Each order has
    // one event, so the feed's head is the number of orders.
    let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM event_positions")
        .fetch_one(&pool)
        .await
        .unwrap();
    let client = reqwest::Client::new();
    for instance in instances.iter().filter(|i| i.name != first.0) {
        let stats: Value = client
            .get(format!(
                "http://127.0.0.1:{}/stats?min_position={head}",
                instance.port
            ))
            .bearer_auth(&staff)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            stats["orders_by_status"]["created"],
            json!(head),
            "on {}: {stats}",
            instance.name
        );
    }
    let generation: i32 =
        sqlx::query_scalar("SELECT generation FROM projections WHERE name = 'orders'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let table = format!("rm_order_details_g{generation}");
    let rows: Vec<(Uuid, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT order_id, version FROM {table}"
    )))
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len() as i64, head, "one row per order");
    let mut ids: Vec<Uuid> = rows.iter().map(|r| r.0).collect();
    ids.sort();
    let mut expected = acknowledged.clone();
    expected.sort();
    // A create whose answer was lost (to the killed or frozen instance) may be there too.
    let missing: Vec<&Uuid> = expected
        .iter()
        .filter(|id| ids.binary_search(id).is_err())
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged orders missing from the read model: {missing:?}"
    );
    assert!(rows.iter().all(|r| r.1 == 1));
    let parked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM parked_events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        parked, 0,
        "an event was applied twice or could not be applied"
    );

    // Kafka: every event of the feed arrives, each order's in order (duplicates of the same
    // (order, version) allowed: delivery is at-least-once), including every acknowledged order.
    let consumer = outbox::consume::EventConsumer::connect(&outbox::consume::ConsumerOptions {
        brokers: brokers.clone(),
        topic: TOPIC.to_owned(),
        group: format!("test-{}", Uuid::now_v7()),
        properties: Default::default(),
    })
    .unwrap();
    let mut checker = outbox::check::Checker::new();
    let total = u64::try_from(head).unwrap();
    while checker.new_events() < total {
        let message = consumer.next(Duration::from_secs(30)).await.unwrap();
        let message = message.unwrap_or_else(|| {
            panic!(
                "only {} of {total} events reached the topic; broker log:\n{}",
                checker.new_events(),
                broker.log()
            )
        });
        checker.observe(&message);
    }
    assert_eq!(checker.problems(), &[] as &[String]);
    let published = checker.versions();
    for id in &acknowledged {
        assert_eq!(published.get(id), Some(&1), "order {id} was not published");
    }
    println!(
        "{} orders acknowledged, {} events published, {} duplicates",
        acknowledged.len(),
        checker.new_events(),
        checker.duplicates()
    );
}
