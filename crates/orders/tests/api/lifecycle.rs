//! The whole lifecycle, as a client walks it.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{Backend, order_body, spawn_app};

crate::on_both_backends!(
    an_order_walks_its_whole_lifecycle,
    a_customer_cancels_its_order,
    the_docs_and_health_endpoints_answer
);

async fn an_order_walks_its_whole_lifecycle(backend: Backend) {
    let app = spawn_app(backend).await;
    let (customer, staff) = (Uuid::now_v7(), app.staff());

    let created = app
        .post("/orders", &app.customer(customer), Some(order_body()))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.headers()["etag"], "\"1\"");
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = created.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/orders/{id}"));
    assert_eq!(body["customer_id"], customer.to_string());
    assert_eq!(
        (
            body["status"].as_str(),
            body["version"].as_u64(),
            body["total"].as_i64()
        ),
        (Some("created"), Some(1), Some(2499))
    );
    let mut last_position = app.feed_position(&body).await;

    for (action, request, status, version) in [
        ("confirm", None, "confirmed", 2),
        (
            "ship",
            Some(json!({"carrier": "DHL", "tracking_number": "JD0146"})),
            "shipped",
            3,
        ),
        ("deliver", None, "delivered", 4),
    ] {
        let response = app
            .post(&format!("/orders/{id}/{action}"), &staff, request)
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{action}");
        assert_eq!(
            response.headers()["etag"],
            format!("\"{version}\"").as_str()
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            (body["status"].as_str(), body["version"].as_u64()),
            (Some(status), Some(version))
        );
        let position = app.feed_position(&body).await;
        assert!(position > last_position, "positions grow with every write");
        last_position = position;
    }

    let order: Value = app
        .get(&format!("/orders/{id}"), &app.customer(customer))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (order["status"].as_str(), order["version"].as_u64()),
        (Some("delivered"), Some(4))
    );
    assert_eq!(order["carrier"], "DHL");
    assert_eq!(order["position"].as_u64(), Some(last_position));

    let page: Value = app
        .get(&format!("/orders/{id}/events?limit=2"), &staff)
        .await
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["OrderCreated", "OrderConfirmed"]);
    assert_eq!(page["next_from_version"], 3);
    let rest: Value = app
        .get(&format!("/orders/{id}/events?from_version=3"), &staff)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["events"].as_array().unwrap().len(), 2);
    assert_eq!(rest["next_from_version"], Value::Null);
    assert_eq!(rest["events"][1]["metadata"]["user_id"], "ops");
}

async fn a_customer_cancels_its_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let customer = Uuid::now_v7();
    let id = app.create_order(customer).await;
    let response = app
        .post(
            &format!("/orders/{id}/cancel"),
            &app.customer(customer),
            Some(json!({"reason": "ordered twice"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (
            body["status"].as_str(),
            body["cancellation_reason"].as_str()
        ),
        (Some("cancelled"), Some("ordered twice"))
    );
    assert_eq!(
        app.event_types(id).await,
        ["OrderCreated", "OrderCancelled"]
    );
}

async fn the_docs_and_health_endpoints_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let spec: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(spec["paths"]["/orders/{id}/cancel"]["post"].is_object());
    let docs = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("swagger"));
    assert_eq!(app.status_of("/health/live").await, StatusCode::OK);
    assert_eq!(app.status_of("/health/ready").await, StatusCode::OK);
}
