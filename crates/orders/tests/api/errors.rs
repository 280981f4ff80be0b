//! Every client mistake gets its status as problem+json and changes nothing.

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::harness::{Backend, assert_problem, order_body, spawn_app};

crate::on_both_backends!(
    bad_bodies_are_refused_with_the_right_status,
    rule_violations_and_state_conflicts_are_refused,
    if_match_pins_the_version,
    unknown_orders_and_routes_are_404,
);

async fn bad_bodies_are_refused_with_the_right_status(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.customer(Uuid::now_v7());
    let post = |body: &'static str, content_type: &'static str| {
        app.client
            .post(app.url("/orders"))
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_problem(
        post("{\"currency\": ", "application/json").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "malformed-json",
    )
    .await;
    assert_problem(
        post("{}", "text/plain").await.unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    )
    .await;
    assert_problem(
        post("{\"currency\": 3}", "application/json").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-body",
    )
    .await;
    let huge = format!(
        "{{\"currency\": \"EUR\", \"items\": [], \"pad\": \"{}\"}}",
        "x".repeat(100 * 1024)
    );
    let response = app
        .client
        .post(app.url("/orders"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "body-too-large").await;
}

async fn rule_violations_and_state_conflicts_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let customer = Uuid::now_v7();
    let token = app.customer(customer);
    let mut zero = order_body();
    zero["items"][0]["quantity"] = json!(0);
    assert_problem(
        app.post("/orders", &token, Some(zero)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-quantity",
    )
    .await;
    let mut negative = order_body();
    negative["items"][0]["unit_price"] = json!(-1);
    assert_problem(
        app.post("/orders", &token, Some(negative)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "negative-price",
    )
    .await;
    let empty = json!({"currency": "EUR", "items": []});
    assert_problem(
        app.post("/orders", &token, Some(empty)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no-items",
    )
    .await;

    let id = app.create_order(customer).await;
    let staff = app.staff();
    assert_problem(
        app.post(&format!("/orders/{id}/ship"), &staff, None).await,
        StatusCode::CONFLICT,
        "invalid-transition",
    )
    .await;
    let blank = json!({"reason": "  "});
    assert_problem(
        app.post(&format!("/orders/{id}/cancel"), &token, Some(blank))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-cancellation-reason",
    )
    .await;
    assert_eq!(
        app.event_types(id).await,
        ["OrderCreated"],
        "refusals write nothing"
    );
}

async fn if_match_pins_the_version(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.create_order(Uuid::now_v7()).await;
    let confirm = |etag: &'static str| {
        app.client
            .post(app.url(&format!("/orders/{id}/confirm")))
            .bearer_auth(app.staff())
            .header("if-match", etag)
            .send()
    };
    let body = assert_problem(
        confirm("\"7\"").await.unwrap(),
        StatusCode::PRECONDITION_FAILED,
        "version-mismatch",
    )
    .await;
    assert_eq!(body["current_version"], 1);
    assert_problem(
        confirm("not-an-etag").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid-if-match",
    )
    .await;
    let ok = confirm("\"1\"").await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["etag"], "\"2\"");
    assert_problem(
        confirm("\"1\"").await.unwrap(),
        StatusCode::PRECONDITION_FAILED,
        "version-mismatch",
    )
    .await;
    assert_eq!(
        app.event_types(id).await,
        ["OrderCreated", "OrderConfirmed"]
    );
}

async fn unknown_orders_and_routes_are_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let missing = Uuid::now_v7();
    assert_problem(
        app.get(&format!("/orders/{missing}"), &app.staff()).await,
        StatusCode::NOT_FOUND,
        "order-not-found",
    )
    .await;
    assert_problem(
        app.post(&format!("/orders/{missing}/confirm"), &app.staff(), None)
            .await,
        StatusCode::NOT_FOUND,
        "order-not-found",
    )
    .await;
    assert_problem(
        app.get("/nowhere", &app.staff()).await,
        StatusCode::NOT_FOUND,
        "no-such-route",
    )
    .await;
    assert_problem(
        app.get("/orders/not-a-uuid", &app.staff()).await,
        StatusCode::BAD_REQUEST,
        "invalid-path",
    )
    .await;
}
