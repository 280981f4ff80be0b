//! `Idempotency-Key`: a retried request gets the original response and writes nothing twice.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{Backend, TestApp, assert_problem, order_body, spawn_app};

crate::on_both_backends!(
    a_retried_create_returns_the_original_response,
    a_key_reused_for_another_request_is_422,
    a_retried_command_is_not_applied_twice
);

async fn post_with_key(
    app: &TestApp,
    path: &str,
    token: &str,
    key: &str,
    body: &Value,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn a_retried_create_returns_the_original_response(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.customer(Uuid::now_v7());
    let body = order_body();
    let first = post_with_key(&app, "/orders", &token, "key-1", &body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let location = first.headers()["location"].clone();
    let first: Value = first.json().await.unwrap();

    let retry = post_with_key(&app, "/orders", &token, "key-1", &body).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["location"], location);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(
        retry, first,
        "the retry answers exactly as the original did"
    );

    // The key is per caller: another customer with the same key gets its own order.
    let other = post_with_key(
        &app,
        "/orders",
        &app.customer(Uuid::now_v7()),
        "key-1",
        &body,
    )
    .await;
    assert_eq!(other.status(), StatusCode::CREATED);
    let other: Value = other.json().await.unwrap();
    assert_ne!(other["id"], first["id"]);
}

async fn a_key_reused_for_another_request_is_422(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.customer(Uuid::now_v7());
    assert_eq!(
        post_with_key(&app, "/orders", &token, "key-2", &order_body())
            .await
            .status(),
        StatusCode::CREATED
    );
    let mut changed = order_body();
    changed["items"][0]["quantity"] = json!(5);
    let response = post_with_key(&app, "/orders", &token, "key-2", &changed).await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
    )
    .await;
}

async fn a_retried_command_is_not_applied_twice(backend: Backend) {
    let app = spawn_app(backend).await;
    let customer = Uuid::now_v7();
    let id = app.create_order(customer).await;
    let token = app.customer(customer);
    let path = format!("/orders/{id}/cancel");
    let body = json!({"reason": "late"});
    let first: Value = post_with_key(&app, &path, &token, "cancel-1", &body)
        .await
        .json()
        .await
        .unwrap();
    let retry = post_with_key(&app, &path, &token, "cancel-1", &body).await;
    // Without the key this would be a 409 (already cancelled); with it, the original 200.
    assert_eq!(retry.status(), StatusCode::OK);
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry, first);
    assert_eq!(
        app.event_types(id).await,
        ["OrderCreated", "OrderCancelled"]
    );
}
