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
