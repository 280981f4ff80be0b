//! The per-customer summary: `GET /customers/{id}/summary`, a second read model on the engine.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{Backend, TestApp, assert_problem, spawn_app};

crate::on_both_backends!(
    a_customer_summary_counts_statuses_and_spend,
    a_customer_sees_only_its_own_summary,
    a_rebuilt_summary_equals_the_live_one
);

/// POSTs `action` on `id` as staff; returns the write's consistency token.
async fn act(app: &TestApp, id: Uuid, action: &str, body: Option<Value>) -> String {
    let response = app
        .post(&format!("/orders/{id}/{action}"), &app.staff(), body)
        .await;
    assert_eq!(response.status(), StatusCode::OK, "{action}");
    let body: Value = response.json().await.unwrap();
    body["consistency_token"].as_str().unwrap().to_owned()
}

/// Three orders: one shipped, one cancelled after confirmation, one just created.
async fn history(app: &TestApp, customer: Uuid) -> String {
    let ids = [
        app.create_order(customer).await,
        app.create_order(customer).await,
        app.create_order(customer).await,
    ];
    act(app, ids[0], "confirm", None).await;
    act(app, ids[1], "confirm", None).await;
    act(
        app,
        ids[1],
        "cancel",
        Some(json!({"reason": "changed my mind"})),
    )
    .await;
    act(app, ids[0], "ship", None).await
}

async fn summary(app: &TestApp, customer: Uuid, token: &str, as_: &str) -> reqwest::Response {
    app.get(
        &format!("/customers/{customer}/summary?consistent_with={token}"),
        as_,
    )
    .await
}

async fn a_customer_summary_counts_statuses_and_spend(backend: Backend) {
    let app = spawn_app(backend).await;
    let customer = Uuid::now_v7();
    let token = history(&app, customer).await;
    let response = summary(&app, customer, &token, &app.staff()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["customer_id"], customer.to_string());
    assert_eq!(body["orders"], 3);
    assert_eq!(
        body["orders_by_status"],
        json!({"cancelled": 1, "created": 1, "shipped": 1})
    );
    assert_eq!(
        body["spend"],
        json!([{"currency": "EUR", "orders": 1, "total": 2499}]),
        "the cancelled order's confirmation no longer counts"
    );
    let (first, last) = (
        body["first_order_at"].as_str().unwrap(),
        body["last_order_at"].as_str().unwrap(),
    );
    assert!(
        chrono::DateTime::parse_from_rfc3339(first).unwrap()
            <= chrono::DateTime::parse_from_rfc3339(last).unwrap()
    );
    assert!(body["position"].as_u64().unwrap() > 0);
}

async fn a_customer_sees_only_its_own_summary(backend: Backend) {
    let app = spawn_app(backend).await;
    let customer = Uuid::now_v7();
    let token = history(&app, customer).await;
    let own = summary(&app, customer, &token, &app.customer(customer)).await;
    assert_eq!(own.status(), StatusCode::OK);
    let other = summary(&app, customer, &token, &app.customer(Uuid::now_v7())).await;
    assert_problem(other, StatusCode::NOT_FOUND, "customer-not-found").await;

    let newcomer = Uuid::now_v7();
    let empty: Value = app
        .get(
            &format!("/customers/{newcomer}/summary"),
            &app.customer(newcomer),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            &empty["orders"],
            &empty["orders_by_status"],
            &empty["spend"]
        ),
        (&json!(0), &json!({}), &json!([]))
    );
    assert!(empty.get("first_order_at").is_none());

    let bad = app.get("/customers/not-a-uuid/summary", &app.staff()).await;
    assert_problem(bad, StatusCode::BAD_REQUEST, "invalid-path").await;
    let unauthenticated = app
        .status_of(&format!("/customers/{customer}/summary"))
        .await;
    assert_eq!(unauthenticated, StatusCode::UNAUTHORIZED);
}

async fn a_rebuilt_summary_equals_the_live_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let customers = [Uuid::now_v7(), Uuid::now_v7()];
    let mut token = String::new();
    for customer in customers {
        token = history(&app, customer).await;
    }
    let mut live = Vec::new();
    for customer in customers {
        let body: Value = summary(&app, customer, &token, &app.staff())
            .await
            .json()
            .await
            .unwrap();
        live.push(body);
    }
    let store = store::Store::open(&app.config.database).await.unwrap();
    let report = order_views::CustomerSummaries::for_store(&store)
        .rebuild(&|_, _| {})
        .await
        .unwrap();
    assert_eq!(report.generation, 2);
    for (customer, before) in customers.iter().zip(live) {
        let mut after: Value = summary(&app, *customer, &token, &app.staff())
            .await
            .json()
            .await
            .unwrap();
        after["position"] = before["position"].clone(); // the checkpoint may have moved on
        assert_eq!(
            after, before,
            "a rebuild from scratch equals the live summary"
        );
    }
}
