//! Queries on a hot standby (`DATABASE_READ_URL`): a private primary with an asynchronous
//! streaming standby, started by the test. A caller who wrote never reads stale, the standby
//! answers most reads, and a standby that is stopped or stops replaying costs no error.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use test_support::cluster::Cluster;
use test_support::eventually;
use uuid::Uuid;

use crate::harness::{Backend, TestApp, order_body, spawn_app_with};

/// A primary, its streaming standby, and the service on them (queries may go to the standby).
async fn on_primary_and_standby(max_lag: Duration) -> (Cluster, Cluster, TestApp) {
    let primary = Cluster::start();
    let standby = Cluster::standby_of(&primary, "s1", &[]);
    let (primary_url, standby_url) = (primary.url(), standby.url());
    let app = spawn_app_with(Backend::Postgres, |config| {
        config.database.database_url = Some(primary_url);
        config.read_replicas.url = Some(standby_url);
        config.read_replicas.max_lag = max_lag;
        config.read_replicas.standby_wait = Duration::from_millis(500);
    })
    .await;
    (primary, standby, app)
}

/// `GET path` as staff: (status, body, the server that answered).
async fn read(app: &TestApp, path: &str, staff: &str) -> (StatusCode, Value, String) {
    let response = app.get(path, staff).await;
    let status = response.status();
    let server = response
        .headers()
        .get("x-served-by")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, response.json().await.unwrap_or(Value::Null), server)
}

/// Creates an order as `token`'s customer; returns its id and the write's consistency token.
async fn create(app: &TestApp, token: &str) -> (Uuid, String) {
    let created = app.post("/orders", token, Some(order_body())).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let id = serde_json::from_value(created["id"].clone()).unwrap();
    let written = created["consistency_token"].as_str().unwrap().to_owned();
    (id, written)
}

/// The listed order `id` in a page, as (status, version).
fn listed(page: &Value, id: Uuid) -> Option<(String, u64)> {
    page["orders"].as_array()?.iter().find_map(|order| {
        (order["id"] == json!(id)).then(|| {
            (
                order["status"].as_str().unwrap_or("").to_owned(),
                order["version"].as_u64().unwrap_or(0),
            )
        })
    })
}

/// Each client writes and at once reads its write back with the write's token: from the list
/// and the customer summary. Every answer must show the write (0 stale); most come from the
/// standby.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_reads_its_writes_from_the_standby_and_never_stale() {
    let operations: usize = std::env::var("ORDERS_REPLICA_OPERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    const CLIENTS: usize = 4;
    // create, list, confirm, list, summary
    let rounds = operations.div_ceil(CLIENTS * 5);
    let (_primary, _standby, app) = on_primary_and_standby(Duration::from_secs(1)).await;
    let app = std::sync::Arc::new(app);
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let app = app.clone();
        clients.push(tokio::spawn(async move {
            let staff = app.staff();
            let customer = Uuid::now_v7();
            let token = app.customer(customer);
            let (mut stale, mut served) = (Vec::new(), HashMap::<String, usize>::new());
            for round in 0..rounds {
                let (id, written) = create(&app, &token).await;
                let path = format!("/orders?customer={customer}&consistent_with={written}");
                let (status, page, server) = read(&app, &path, &staff).await;
                assert_eq!(status, StatusCode::OK, "{page}");
                *served.entry(server).or_default() += 1;
                if listed(&page, id) != Some(("created".to_owned(), 1)) {
                    stale.push(format!("list after create: {page}"));
                }

                let confirmed = app
                    .post(&format!("/orders/{id}/confirm"), &staff, None)
                    .await;
                assert_eq!(confirmed.status(), StatusCode::OK);
                let confirmed: Value = confirmed.json().await.unwrap();
                let written = confirmed["consistency_token"].as_str().unwrap().to_owned();
                let path = format!("/orders?customer={customer}&consistent_with={written}");
                let (status, page, server) = read(&app, &path, &staff).await;
                assert_eq!(status, StatusCode::OK, "{page}");
                *served.entry(server).or_default() += 1;
                if listed(&page, id) != Some(("confirmed".to_owned(), 2)) {
                    stale.push(format!("list after confirm: {page}"));
                }

                let path = format!("/customers/{customer}/summary?consistent_with={written}");
                let (status, summary, server) = read(&app, &path, &staff).await;
                assert_eq!(status, StatusCode::OK, "{summary}");
                *served.entry(server).or_default() += 1;
                if summary["orders"].as_u64() != Some(round as u64 + 1) {
                    stale.push(format!("summary after {} orders: {summary}", round + 1));
                }
            }
            (stale, served)
        }));
    }
    let (mut stale, mut served) = (Vec::new(), HashMap::<String, usize>::new());
    for client in clients {
        let (client_stale, client_served) = client.await.unwrap();
        stale.extend(client_stale);
        for (server, count) in client_served {
            *served.entry(server).or_default() += count;
        }
    }
    let reads: usize = served.values().sum();
    let on_standby = served.get("standby").copied().unwrap_or(0);
    println!(
        "{} operations: {reads} reads with a token, {on_standby} answered by the standby, {} stale",
        rounds * CLIENTS * 5,
        stale.len()
    );
    assert!(stale.is_empty(), "stale answers: {stale:#?}");
    assert_eq!(reads, rounds * CLIENTS * 3);
    assert!(
        on_standby * 2 > reads,
        "the standby answered {on_standby} of {reads} reads: {served:?}"
    );
}

/// A standby that stops replaying, and then one that is stopped: every query still answers,
/// correctly, from the primary; once the standby is well again it answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_or_stopped_standby_costs_no_error() {
    let (_primary, standby, app) = on_primary_and_standby(Duration::from_millis(300)).await;
    let staff = app.staff();
    let customer = Uuid::now_v7();
    let token = app.customer(customer);
    let list = format!("/orders?customer={customer}");
    eventually(Duration::from_secs(10), "the standby answers", async || {
        read(&app, &list, &staff).await.2 == "standby"
    })
    .await;

    // Replay paused: a write's token cannot be met on the standby; the primary answers it.
    let mut standby_admin = PgConnection::connect(&standby.url()).await.unwrap();
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&mut standby_admin)
        .await
        .unwrap();
    let (id, written) = create(&app, &token).await;
    let (status, page, server) =
        read(&app, &format!("{list}&consistent_with={written}"), &staff).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(server, "primary");
    assert!(listed(&page, id).is_some(), "{page}");
    // Without a token: once the standby's lag passes ORDERS_READ_MAX_LAG, the primary answers.
    app.create_order(customer).await;
    eventually(
        Duration::from_secs(10),
        "a lagging standby leaves rotation",
        async || {
            let (status, page, server) = read(&app, &list, &staff).await;
            status == StatusCode::OK
                && server == "primary"
                && page["orders"].as_array().map(Vec::len) == Some(2)
        },
    )
    .await;
    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&mut standby_admin)
        .await
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "the standby answers again",
        async || {
            let (_, page, server) = read(&app, &list, &staff).await;
            server == "standby" && page["orders"].as_array().map(Vec::len) == Some(2)
        },
    )
    .await;
    drop(standby_admin);

    // Stopped: every query answers from the primary, none fails.
    standby.stop_server();
    for _ in 0..20 {
        let (id, written) = create(&app, &token).await;
        let (status, page, server) = read(&app, &list, &staff).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(server, "primary");
        let summary = format!("/customers/{customer}/summary");
        let (status, body, _) = read(&app, &summary, &staff).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, _, _) = read(&app, "/stats", &staff).await;
        assert_eq!(status, StatusCode::OK);
        let path = format!("{list}&consistent_with={written}");
        let (status, page, server) = read(&app, &path, &staff).await;
        assert_eq!(
            (status, server.as_str()),
            (StatusCode::OK, "primary"),
            "{page}"
        );
        assert!(listed(&page, id).is_some(), "{page}");
    }
    standby.start_server();
    eventually(
        Duration::from_secs(20),
        "the restarted standby answers again",
        async || read(&app, &list, &staff).await.2 == "standby",
    )
    .await;
}

/// A standby that hangs (accepts connections, answers nothing): each query costs at most the
/// standby timeout, then the primary answers; the standby is out of rotation until it answers
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_standby_costs_at_most_its_timeout() {
    let primary = Cluster::start();
    let standby = Cluster::standby_of(&primary, "s1", &[]);
    let proxy = test_support::proxy::Proxy::start(([127, 0, 0, 1], standby.port()).into()).await;
    let (primary_url, standby_url) = (
        primary.url(),
        format!("postgres://postgres@{}/postgres", proxy.addr),
    );
    let app = spawn_app_with(Backend::Postgres, |config| {
        config.database.database_url = Some(primary_url);
        config.read_replicas.url = Some(standby_url);
    })
    .await;
    let staff = app.staff();
    let customer = Uuid::now_v7();
    let list = format!("/orders?customer={customer}");
    eventually(Duration::from_secs(10), "the standby answers", async || {
        read(&app, &list, &staff).await.2 == "standby"
    })
    .await;

    proxy.hang();
    let token = app.customer(customer);
    for _ in 0..5 {
        let (id, written) = create(&app, &token).await;
        let sent = Instant::now();
        let path = format!("{list}&consistent_with={written}");
        let (status, page, server) = read(&app, &path, &staff).await;
        assert_eq!(
            (status, server.as_str()),
            (StatusCode::OK, "primary"),
            "{page}"
        );
        assert!(listed(&page, id).is_some(), "{page}");
        assert!(
            sent.elapsed() < Duration::from_secs(3),
            "took {:?}",
            sent.elapsed()
        );
        let (status, _, server) = read(&app, &list, &staff).await;
        assert_eq!((status, server.as_str()), (StatusCode::OK, "primary"));
    }
    proxy.forward();
    eventually(
        Duration::from_secs(10),
        "the standby answers again",
        async || read(&app, &list, &staff).await.2 == "standby",
    )
    .await;
}

/// `orders doctor` checks every host of `DATABASE_READ_URL`: a standby passes, a server that is
/// not one (here the primary) fails the check and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_that_each_read_server_is_a_standby() {
    let (primary, standby, _app) = on_primary_and_standby(Duration::from_secs(1)).await;
    let data = tempfile::tempdir().unwrap();
    let doctor = |read_url: String| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_orders"))
            .arg("doctor")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", primary.url())
            .env("DATABASE_READ_URL", read_url)
            .env("ORDERS_DATA_DIR", data.path())
            .env("ORDERS_LISTEN", "127.0.0.1:0")
            .env(
                "ORDERS_JWT_SECRET",
                "test-secret-that-is-long-enough-for-hs256",
            )
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr)
    };
    let good = doctor(standby.url());
    let line = good
        .lines()
        .find(|l| l.contains("read standbys"))
        .unwrap_or_default()
        .to_owned();
    assert!(
        line.contains(&standby.port().to_string()) && line.contains("standby"),
        "{good}"
    );
    assert!(!line.contains("not a standby"), "{good}");
    let bad = doctor(primary.url());
    assert!(bad.contains("is not a standby"), "{bad}");
}
