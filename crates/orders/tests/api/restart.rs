//! Durability across restarts, and a store outage.

use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::harness::{Backend, assert_problem, order_body, spawn_app};

crate::on_both_backends!(a_restart_keeps_every_acknowledged_order);

async fn a_restart_keeps_every_acknowledged_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let customer = Uuid::now_v7();
    let mut orders = Vec::new();
    for i in 0..10 {
        let id = app.create_order(customer).await;
        if i % 2 == 0 {
            assert_eq!(
                app.post(&format!("/orders/{id}/confirm"), &app.staff(), None)
                    .await
                    .status(),
                StatusCode::OK
            );
        }
        orders.push((id, if i % 2 == 0 { "confirmed" } else { "created" }));
    }
    let app = app.restart().await;
    for (id, status) in orders {
        let order: Value = app
            .get(&format!("/orders/{id}"), &app.customer(customer))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(order["status"], status, "{id}");
    }
}

/// The database disappears under a running service: reads and writes answer 503 without internal
/// details, readiness turns 503, and the process stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_is_503_without_internal_details() {
    let app = spawn_app(Backend::Postgres).await;
    let id = app.create_order(Uuid::now_v7()).await;
    let url = app.database_url.clone().unwrap();
    let name = url.rsplit('/').next().unwrap().to_owned();
    let server = test_support::postgres::server_url();
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&server)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .unwrap();

    let customer = Uuid::now_v7();
    let requests = [
        (
            "read",
            app.get(&format!("/orders/{id}"), &app.staff()).await,
        ),
        (
            "write to an existing order",
            app.post(&format!("/orders/{id}/confirm"), &app.staff(), None)
                .await,
        ),
        (
            "new order",
            app.post("/orders", &app.customer(customer), Some(order_body()))
                .await,
        ),
    ];
    for (what, response) in requests {
        let body = assert_problem(
            response,
            StatusCode::SERVICE_UNAVAILABLE,
            "store-unavailable",
        )
        .await;
        let text = body.to_string().to_lowercase();
        for leak in ["sqlx", "postgres", "database \"", "connection"] {
            assert!(
                !text.contains(leak),
                "{what}: internal detail {leak:?} leaked: {text}"
            );
        }
    }
    assert_eq!(
        app.status_of("/health/ready").await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(app.status_of("/health/live").await, StatusCode::OK);
}

/// PostgreSQL stopped and started again under load (a private cluster: the shared server is never
/// stopped): commands answer 503 while it is down, nothing acknowledged is lost, and the read
/// model and the Kafka relay resume by themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_loses_nothing_and_everything_resumes() {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    const TOPIC: &str = "orders.restart";
    let cluster = test_support::cluster::Cluster::start();
    let broker = test_support::tansu::Tansu::start();
    broker.create_topic(TOPIC);
    let brokers = broker.bootstrap();
    let url = cluster.url();
    let app = crate::harness::spawn_app_with(Backend::Postgres, |c| {
        c.database.database_url = Some(url.clone());
        c.kafka = outbox::KafkaConfig::new(brokers.clone()).with_topic(TOPIC);
    })
    .await;
    let app = Arc::new(app);
    let acknowledged: Arc<Mutex<Vec<Uuid>>> = Arc::default();
    let unavailable = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let load = {
        let (app, acknowledged, unavailable) =
            (app.clone(), acknowledged.clone(), unavailable.clone());
        tokio::spawn(async move {
            let token = app.customer(Uuid::now_v7());
            while !*stopped.borrow() {
                let response = app.post("/orders", &token, Some(order_body())).await;
                match response.status() {
                    StatusCode::CREATED => {
                        let body: Value = response.json().await.unwrap();
                        let id = body["id"].as_str().unwrap().parse().unwrap();
                        acknowledged.lock().unwrap().push(id);
                    }
                    StatusCode::SERVICE_UNAVAILABLE => {
                        unavailable.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let body: Value = response.json().await.unwrap();
                        assert_eq!(body["code"], "store-unavailable", "{body}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    other => panic!("a create answered {other} during the outage"),
                }
            }
        })
    };
    let started = Instant::now();
    while acknowledged.lock().unwrap().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no create was acknowledged before the outage: the load does not run"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = acknowledged.lock().unwrap().len();

    let down = Instant::now();
    tokio::task::block_in_place(|| cluster.stop_server());
    while unavailable.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(
            down.elapsed() < Duration::from_secs(15),
            "no 503 while the database is down"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let during = acknowledged.lock().unwrap().len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let still_down = acknowledged.lock().unwrap().len();
    assert_eq!(
        still_down, during,
        "a create was acknowledged while the database was down"
    );
    let up = Instant::now();
    tokio::task::block_in_place(|| cluster.start_server());
    loop {
        if acknowledged.lock().unwrap().len() > during + 20 {
            break;
        }
        assert!(
            up.elapsed() < Duration::from_secs(30),
            "commands did not come back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "20 commands acknowledged {:?} after the restart began",
        up.elapsed()
    );
    stop.send(true).unwrap();
    load.await.unwrap();
    let acknowledged = acknowledged.lock().unwrap().clone();

    // Nothing acknowledged is lost: every order reads back, and the read model has each.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let head = loop {
        // Every committed event numbered (the sequencer resumes by itself too).
        let (events, head): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM events), (SELECT COALESCE(MAX(position), 0) FROM event_positions)",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if events == head {
            break head;
        }
        assert!(
            Instant::now() < deadline,
            "the feed stayed at {head} of {events}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stats = app
        .query(&format!("/stats?min_position={head}"), &app.staff())
        .await;
    let created = stats["orders_by_status"]["created"].as_u64().unwrap();
    assert_eq!(created, u64::try_from(head).unwrap(), "{stats}");
    assert!(created >= acknowledged.len() as u64);
    for id in acknowledged.iter().step_by(7) {
        let status = app
            .get(&format!("/orders/{id}"), &app.staff())
            .await
            .status();
        assert_eq!(status, StatusCode::OK, "{id}");
    }
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT order_id FROM rm_order_details_g1")
        .fetch_all(&pool)
        .await
        .unwrap();
    let ids: std::collections::HashSet<Uuid> = ids.into_iter().collect();
    assert!(
        acknowledged.iter().all(|id| ids.contains(id)),
        "an acknowledged order is missing"
    );

    // The relay resumed: every event of the feed is on the topic, each order's in order.
    let consumer = outbox::consume::EventConsumer::connect(&outbox::consume::ConsumerOptions {
        brokers: brokers.clone(),
        topic: TOPIC.to_owned(),
        group: format!("test-{}", Uuid::now_v7()),
        properties: Default::default(),
    })
    .unwrap();
    let mut checker = outbox::check::Checker::new();
    while checker.new_events() < created {
        let message = consumer.next(Duration::from_secs(30)).await.unwrap();
        let message = message.unwrap_or_else(|| {
            panic!(
                "only {} of {created} events reached the topic",
                checker.new_events()
            )
        });
        checker.observe(&message);
    }
    assert_eq!(checker.problems(), &[] as &[String]);
    let published = checker.versions();
    assert!(acknowledged.iter().all(|id| published.get(id) == Some(&1)));
    println!(
        "{} acknowledged ({before} before the outage), {} answered 503, {created} projected and published",
        acknowledged.len(),
        unavailable.load(std::sync::atomic::Ordering::SeqCst)
    );
}
