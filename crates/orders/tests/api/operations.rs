//! The operational CLI against a database the service wrote: `streams show`, `feed tail`,
//! `verify` (clean, then with a corrupted snapshot and read-model row) and `doctor`.

use std::process::{Command, Output};

use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::harness::{Backend, TestApp, spawn_app};

fn orders_cli(app: &TestApp, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orders"));
    command
        .args(args)
        .arg("--data-dir")
        .arg(&app.config.database.data_dir);
    if let Some(url) = &app.database_url {
        command.args(["--database-url", url]);
    }
    for var in ["DATABASE_URL", "ORDERS_DATA_DIR", "REDIS_URL", "RUST_LOG"] {
        command.env_remove(var);
    }
    command.output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Orders in every state; returns (an order with a snapshot, another order, last position).
async fn traffic(app: &TestApp) -> (Uuid, Uuid, u64) {
    let customer = Uuid::now_v7();
    let snapshotted = app.create_order(customer).await;
    let mut last = 0;
    let mut snapshotted_token = String::new();
    for action in ["confirm", "ship", "deliver"] {
        let response = app
            .post(
                &format!("/orders/{snapshotted}/{action}"),
                &app.staff(),
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.json::<Value>().await.unwrap();
        last = app.feed_position(&body).await;
        snapshotted_token = body["consistency_token"].as_str().unwrap().to_owned();
    }
    let other = app.create_order(customer).await;
    let response = app
        .post(&format!("/orders/{other}/confirm"), &app.staff(), None)
        .await;
    let body = response.json::<Value>().await.unwrap();
    last = last.max(app.feed_position(&body).await);
    let other_token = body["consistency_token"].as_str().unwrap();
    // Let the projection catch up before the CLI compares (read-your-writes by token).
    app.query(
        &format!("/orders?consistent_with={snapshotted_token},{other_token}"),
        &app.staff(),
    )
    .await;
    (snapshotted, other, last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_show_and_feed_tail_print_events() {
    let app = spawn_app(Backend::Postgres).await;
    let (order, _, _) = traffic(&app).await;
    let table = orders_cli(&app, &["streams", "show", &order.to_string()]);
    assert!(
        table.status.success(),
        "{}",
        String::from_utf8_lossy(&table.stderr)
    );
    let table = stdout(&table);
    for event in [
        "OrderCreated",
        "OrderConfirmed",
        "OrderShipped",
        "OrderDelivered",
    ] {
        assert!(table.contains(event), "{table}");
    }
    let json = stdout(&orders_cli(
        &app,
        &["streams", "show", &order.to_string(), "--format", "json"],
    ));
    let versions: Vec<u64> = json
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["version"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(versions, [1, 2, 3, 4]);

    let missing = orders_cli(&app, &["streams", "show", "not-a-uuid"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not a stream id"));

    let feed = stdout(&orders_cli(
        &app,
        &["feed", "tail", "--after", "0", "--format", "json"],
    ));
    let positions: Vec<u64> = feed
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["position"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(positions, (1..=positions.len() as u64).collect::<Vec<_>>());
    assert_eq!(positions.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_on_a_clean_store_and_reports_corruption() {
    let app = spawn_app(Backend::Postgres).await;
    let (snapshotted, other, _) = traffic(&app).await;
    let clean = orders_cli(&app, &["verify"]);
    assert!(
        clean.status.success(),
        "{}{}",
        stdout(&clean),
        String::from_utf8_lossy(&clean.stderr)
    );
    assert!(
        stdout(&clean).contains(": 0 difference(s)"),
        "{}",
        stdout(&clean)
    );
    assert!(
        stdout(&clean).contains("1 snapshots"),
        "the harness snapshots every 3 events: {}",
        stdout(&clean)
    );

    let url = app.database_url.clone().unwrap();
    let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query("UPDATE snapshots SET state = jsonb_set(state, '{status}', '\"cancelled\"') WHERE aggregate_id = $1")
        .bind(snapshotted)
        .execute(&mut db)
        .await
        .unwrap();
    sqlx::query("UPDATE rm_order_details_g1 SET total_minor = 1 WHERE order_id = $1")
        .bind(other)
        .execute(&mut db)
        .await
        .unwrap();

    let corrupt = orders_cli(&app, &["verify"]);
    assert!(!corrupt.status.success(), "verify must fail on corruption");
    let report = stdout(&corrupt);
    assert!(
        report.contains(&format!("snapshot of {snapshotted}")),
        "{report}"
    );
    assert!(
        report.contains(&format!("read model row of order {other}")),
        "{report}"
    );
    assert!(report.contains("2 difference(s)"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_says_what_is_wrong() {
    let app = spawn_app(Backend::Postgres).await;
    let healthy = orders_cli(&app, &["doctor", "--listen", "127.0.0.1:0"]);
    assert!(healthy.status.success(), "{}", stdout(&healthy));
    assert!(
        stdout(&healthy).contains("ok    database"),
        "{}",
        stdout(&healthy)
    );

    let broken = orders_cli(
        &app,
        &[
            "doctor",
            "--listen",
            "127.0.0.1:0",
            "--redis-url",
            "redis://127.0.0.1:1",
        ],
    );
    assert!(!broken.status.success());
    assert!(
        stdout(&broken).contains("FAIL  redis"),
        "{}",
        stdout(&broken)
    );

    let taken = orders_cli(&app, &["doctor", "--listen", &app.addr.to_string()]);
    assert!(!taken.status.success());
    assert!(
        stdout(&taken).contains("FAIL  listen address"),
        "{}",
        stdout(&taken)
    );
}
