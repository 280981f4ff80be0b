//! Time travel: an order as it was at a version or a time, from its events.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{Backend, assert_problem, spawn_app};

crate::on_both_backends!(
    an_order_can_be_read_as_it_was,
    time_travel_refuses_what_it_cannot_answer,
    the_events_can_stop_at_a_version
);

async fn an_order_can_be_read_as_it_was(backend: Backend) {
    let app = spawn_app(backend).await;
    let customer = Uuid::now_v7();
    let before_creation = chrono::Utc::now() - chrono::Duration::seconds(1);
    let id = app.create_order(customer).await;
    let staff = app.staff();
    app.post(&format!("/orders/{id}/confirm"), &staff, None)
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let confirmed_by = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let ship = json!({"carrier": "DHL", "tracking_number": "JD0146"});
    app.post(&format!("/orders/{id}/ship"), &staff, Some(ship))
        .await;

    for (version, status) in [(1, "created"), (2, "confirmed"), (3, "shipped")] {
        let response = app
            .get(&format!("/orders/{id}?version={version}"), &staff)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers().get("etag").is_none(),
            "a past state is no ETag a command could be pinned to"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            (body["status"].as_str(), body["version"].as_u64()),
            (Some(status), Some(version))
        );
        assert_eq!(body["id"], id.to_string());
    }
    let at = |time: chrono::DateTime<chrono::Utc>| {
        format!(
            "/orders/{id}?at={}",
            time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        )
        .replace('+', "%2B")
    };
    let then: Value = app
        .get(&at(confirmed_by), &staff)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (then["status"].as_str(), then["version"].as_u64()),
        (Some("confirmed"), Some(2))
    );
    let now: Value = app
        .get(&at(chrono::Utc::now()), &staff)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(now["version"], 3);
    assert_problem(
        app.get(&at(before_creation), &staff).await,
        StatusCode::NOT_FOUND,
        "not-yet-created",
    )
    .await;

    // The same authorisation as today: the customer sees its own past, another sees nothing.
    let own = app
        .get(&format!("/orders/{id}?version=1"), &app.customer(customer))
        .await;
    assert_eq!(own.status(), StatusCode::OK);
    let other = app
        .get(
            &format!("/orders/{id}?version=1"),
            &app.customer(Uuid::now_v7()),
        )
        .await;
    assert_problem(other, StatusCode::NOT_FOUND, "order-not-found").await;
}

async fn time_travel_refuses_what_it_cannot_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.create_order(Uuid::now_v7()).await;
    let staff = app.staff();
    for (query, status, code) in [
        ("version=2", StatusCode::NOT_FOUND, "version-not-found"),
        ("version=0", StatusCode::BAD_REQUEST, "invalid-version"),
        (
            "version=1&at=2026-01-01T00:00:00Z",
            StatusCode::BAD_REQUEST,
            "conflicting-parameters",
        ),
        ("at=yesterday", StatusCode::BAD_REQUEST, "invalid-query"),
        ("version=-1", StatusCode::BAD_REQUEST, "invalid-query"),
    ] {
        let response = app.get(&format!("/orders/{id}?{query}"), &staff).await;
        assert_problem(response, status, code).await;
    }
    let missing = app
        .get(&format!("/orders/{}?version=1", Uuid::now_v7()), &staff)
        .await;
    assert_problem(missing, StatusCode::NOT_FOUND, "order-not-found").await;
}

async fn the_events_can_stop_at_a_version(backend: Backend) {
    let app = spawn_app(backend).await;
    let id = app.create_order(Uuid::now_v7()).await;
    let staff = app.staff();
    app.post(&format!("/orders/{id}/confirm"), &staff, None)
        .await;
    app.post(
        &format!("/orders/{id}/cancel"),
        &staff,
        Some(json!({"reason": "test"})),
    )
    .await;
    let versions = |page: &Value| -> Vec<u64> {
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["version"].as_u64().unwrap())
            .collect()
    };
    let page: Value = app
        .get(&format!("/orders/{id}/events?until_version=2"), &staff)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(versions(&page), [1, 2]);
    assert!(page.get("next_from_version").is_none());
    let page: Value = app
        .get(
            &format!("/orders/{id}/events?from_version=2&until_version=2"),
            &staff,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(versions(&page), [2]);
    let page: Value = app
        .get(
            &format!("/orders/{id}/events?from_version=3&until_version=2"),
            &staff,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(versions(&page).is_empty());
    let page: Value = app
        .get(
            &format!("/orders/{id}/events?until_version=2&limit=1"),
            &staff,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(versions(&page), [1]);
    assert_eq!(page["next_from_version"], 2);
}
