//! Webhooks: endpoints managed over the API, deliveries verified by the Standard Webhooks
//! reference library (`standardwebhooks`, PyPI) in a receiver that refuses and hangs for a
//! while, an endpoint that always fails beside one that works, the retry period running out,
//! and the outbound rules at registration and at delivery.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use test_support::eventually;
use test_support::webhooks::{Behaviour, Receiver};
use uuid::Uuid;

use crate::harness::{Backend, TestApp, assert_problem, spawn_app_with};

/// A development deployment: loopback receivers, quick retries, a short timeout.
fn quick(config: &mut orders::app::AppConfig) {
    config.webhooks.allow_loopback = true;
    config.webhooks.backoff_min = Duration::from_millis(100);
    config.webhooks.backoff_max = Duration::from_millis(400);
    config.webhooks.timeout = Duration::from_millis(800);
}

/// Registers `url` (staff); the endpoint's body and its secret.
async fn register(app: &TestApp, body: Value) -> (Value, String) {
    let response = app.post("/webhooks", &app.staff(), Some(body)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let endpoint: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/webhooks/{}", endpoint["id"].as_str().unwrap())
    );
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{endpoint}");
    (endpoint, secret)
}

async fn endpoint(app: &TestApp, id: &str) -> Value {
    app.query(&format!("/webhooks/{id}"), &app.staff()).await
}

async fn confirm(app: &TestApp, order: Uuid) {
    let response = app
        .post(&format!("/orders/{order}/confirm"), &app.staff(), None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// Every accepted delivery is a distinct event, each order's arrive in version order, and
/// together they are exactly `expected` (order, version) pairs.
fn assert_complete_and_in_order(accepted: &[Value], expected: &HashSet<(String, u64)>) {
    let mut ids = HashSet::new();
    let mut last_version: BTreeMap<String, u64> = BTreeMap::new();
    let mut got = HashSet::new();
    for delivery in accepted {
        let id = delivery["id"].as_str().unwrap();
        assert_eq!(delivery["event_id"], id, "webhook-id is the event id");
        assert!(ids.insert(id.to_owned()), "{id} delivered twice");
        let order = delivery["order_id"].as_str().unwrap().to_owned();
        let version = delivery["version"].as_u64().unwrap();
        let previous = last_version.insert(order.clone(), version).unwrap_or(0);
        assert!(
            version > previous,
            "{order}: version {version} after {previous}"
        );
        got.insert((order, version));
    }
    assert_eq!(&got, expected);
}

async fn deliveries_survive_a_refusing_and_hanging_receiver_in_order_verified(backend: Backend) {
    let app = spawn_app_with(backend, quick).await;
    // Three 500s, then two requests held past the service's timeout, then it works.
    let mut good = Receiver::start(Behaviour {
        fail: 3,
        hang: 2,
        hang_for: Duration::from_millis(1500),
        ..Default::default()
    })
    .await;
    let mut broken = Receiver::start(Behaviour {
        always: 500,
        ..Default::default()
    })
    .await;
    let (a, secret_a) =
        register(&app, json!({"url": good.url(), "description": "warehouse"})).await;
    let (b, secret_b) = register(&app, json!({"url": broken.url()})).await;
    good.trust(&secret_a).await;
    broken.trust(&secret_b).await;
    let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let start = a["checkpoint"].as_u64().unwrap();
    assert_eq!(a["state"], "active");
    assert_eq!(a["lag"], 0);

    let mut expected = HashSet::new();
    for _ in 0..10 {
        let order = app.create_order(Uuid::now_v7()).await;
        confirm(&app, order).await;
        expected.insert((order.to_string(), 1));
        expected.insert((order.to_string(), 2));
    }
    // While the first event is refused, the checkpoint stays before it.
    eventually(
        Duration::from_secs(20),
        "the receiver refuses",
        async || {
            let now = endpoint(&app, a_id).await;
            if now["attempts"].as_u64().unwrap() > 0 {
                assert_eq!(now["checkpoint"].as_u64().unwrap(), start, "{now}");
                assert!(now["failing_since"].is_string(), "{now}");
                return true;
            }
            false
        },
    )
    .await;
    eventually(
        Duration::from_secs(60),
        "every event reaches the receiver",
        async || good.accepted().len() >= expected.len(),
    )
    .await;
    let requests = good.requests();
    assert!(
        requests.iter().all(|r| r["outcome"] != "unverified"),
        "{requests:?}"
    );
    assert_eq!(
        requests
            .iter()
            .filter(|r| r["outcome"] == "refused")
            .count(),
        3
    );
    assert_eq!(
        requests.iter().filter(|r| r["outcome"] == "hung").count(),
        2
    );
    assert_complete_and_in_order(&good.accepted(), &expected);
    let positions: Vec<u64> = good
        .accepted()
        .iter()
        .map(|d| d["position"].as_u64().unwrap())
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "feed order: {positions:?}"
    );
    eventually(
        Duration::from_secs(10),
        "the checkpoint reaches the head",
        async || {
            let now = endpoint(&app, a_id).await;
            now["lag"] == 0 && now["delivered"] == 20
        },
    )
    .await;
    let a_now = endpoint(&app, a_id).await;
    assert!(a_now["failing_since"].is_null(), "{a_now}");
    assert_eq!(a_now["attempts"], 0);

    // The endpoint that always fails held nothing up, and shows why it is stuck.
    let b_now = endpoint(&app, b_id).await;
    assert_eq!(
        b_now["checkpoint"].as_u64().unwrap(),
        b["checkpoint"].as_u64().unwrap()
    );
    assert_eq!(b_now["state"], "active");
    assert!(b_now["attempts"].as_u64().unwrap() >= 1, "{b_now}");
    assert_eq!(b_now["last_attempt"]["status"], 500, "{b_now}");
    let error = b_now["last_attempt"]["error"].as_str().unwrap();
    assert!(error.contains("maintenance"), "{error}");
    assert!(broken.accepted().is_empty());

    // A rotated secret: deliveries carry both signatures for a while, so the receiver that
    // still has the old one verifies them.
    let rotated = app
        .post(
            &format!("/webhooks/{a_id}/rotate-secret"),
            &app.staff(),
            None,
        )
        .await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated: Value = rotated.json().await.unwrap();
    assert_ne!(rotated["secret"].as_str().unwrap(), secret_a);
    assert!(rotated["previous_secret_until"].is_string(), "{rotated}");
    app.create_order(Uuid::now_v7()).await;
    eventually(
        Duration::from_secs(20),
        "the event after the rotation",
        async || good.accepted().len() == 21,
    )
    .await;
    assert_eq!(good.accepted()[20]["signatures"], 2);
    // The secret is never shown again.
    let listed: Value = app.query("/webhooks", &app.staff()).await;
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains("whsec_"), "{listed}");
}

async fn an_endpoint_refused_for_its_whole_retry_period_turns_failing_until_resumed(
    backend: Backend,
) {
    let app = spawn_app_with(backend, |config| {
        quick(config);
        config.webhooks.retry_period = Duration::from_millis(700);
    })
    .await;
    let mut receiver = Receiver::start(Behaviour {
        always: 503,
        ..Default::default()
    })
    .await;
    let (created, secret) = register(
        &app,
        json!({"url": receiver.url(), "event_types": ["OrderConfirmed"]}),
    )
    .await;
    receiver.trust(&secret).await;
    let id = created["id"].as_str().unwrap();
    let order = app.create_order(Uuid::now_v7()).await;
    confirm(&app, order).await;
    eventually(
        Duration::from_secs(20),
        "the endpoint turns failing",
        async || endpoint(&app, id).await["state"] == "failing",
    )
    .await;
    let failing = endpoint(&app, id).await;
    assert_eq!(failing["last_attempt"]["status"], 503, "{failing}");
    assert!(
        failing["last_attempt"]["error"]
            .as_str()
            .unwrap()
            .contains("maintenance")
    );
    // The creation was filtered out and passed; the confirmation was never acknowledged.
    let passed = failing["checkpoint"].as_u64().unwrap();
    assert_eq!(failing["lag"], 1, "{failing}");
    // The operator at the database sees the same.
    let mut cli = std::process::Command::new(env!("CARGO_BIN_EXE_orders"));
    cli.args(["webhooks", "list", "--data-dir"])
        .arg(&app.config.database.data_dir)
        .env_remove("DATABASE_URL");
    if let Some(url) = &app.database_url {
        cli.args(["--database-url", url]);
    }
    let listed = cli.output().unwrap();
    let said = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(
        said.contains(&format!("{id} failing {}", receiver.url())),
        "{said}"
    );
    assert!(
        said.contains("HTTP 503 (HTTP 503 Service Unavailable: receiver in maintenance)"),
        "{said}"
    );
    let refused = receiver.requests().len();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        receiver.requests().len(),
        refused,
        "a failing endpoint is paused"
    );
    // Resumed: the event it was stuck on is tried again at once.
    let resumed = app
        .client
        .patch(app.url(&format!("/webhooks/{id}")))
        .bearer_auth(app.staff())
        .json(&json!({"state": "active"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), StatusCode::OK);
    let resumed: Value = resumed.json().await.unwrap();
    assert_eq!(resumed["state"], "active");
    assert!(resumed["failing_since"].is_null(), "{resumed}");
    eventually(Duration::from_secs(10), "a new attempt", async || {
        receiver.requests().len() > refused
    })
    .await;
    assert_eq!(
        endpoint(&app, id).await["checkpoint"].as_u64().unwrap(),
        passed
    );
}

async fn endpoints_are_managed_by_staff_and_bad_requests_change_nothing(backend: Backend) {
    let app = spawn_app_with(backend, quick).await;
    let staff = app.staff();
    let customer = app.customer(Uuid::now_v7());
    let refused = app
        .post(
            "/webhooks",
            &customer,
            Some(json!({"url": "https://example.com/"})),
        )
        .await;
    assert_problem(refused, StatusCode::FORBIDDEN, "forbidden").await;
    for (body, code) in [
        (json!({}), "invalid-body"),
        (
            json!({"url": "https://example.com/", "colour": "red"}),
            "invalid-body",
        ),
        (
            json!({"url": "https://93.184.216.34/", "event_types": ["OrderLost"]}),
            "invalid-body",
        ),
        (
            json!({"url": "https://93.184.216.34/", "event_types": []}),
            "invalid-body",
        ),
        (
            json!({"url": "https://93.184.216.34/", "description": "d".repeat(201)}),
            "invalid-body",
        ),
        (json!({"url": "ftp://example.com/"}), "url-refused"),
        (json!({"url": "not a url"}), "url-refused"),
        (
            json!({"url": "https://user:secret@93.184.216.34/"}),
            "url-refused",
        ),
    ] {
        let response = app.post("/webhooks", &staff, Some(body.clone())).await;
        assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, code).await;
    }
    let malformed = app
        .client
        .post(app.url("/webhooks"))
        .bearer_auth(&staff)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_problem(malformed, StatusCode::BAD_REQUEST, "malformed-json").await;
    assert_eq!(app.query("/webhooks", &staff).await, json!([]));

    let (created, _) = register(
        &app,
        json!({"url": "https://93.184.216.34/hooks", "event_types": ["OrderShipped", "OrderCreated"], "customer_id": Uuid::nil()}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        created["event_types"],
        json!(["OrderCreated", "OrderShipped"])
    );
    assert_eq!(created["customer_id"], Uuid::nil().to_string());
    assert_eq!(created["created_by"], "ops");
    let missing = Uuid::now_v7();
    assert_problem(
        app.get(&format!("/webhooks/{missing}"), &staff).await,
        StatusCode::NOT_FOUND,
        "webhook-not-found",
    )
    .await;
    assert_problem(
        app.get("/webhooks/nope", &staff).await,
        StatusCode::BAD_REQUEST,
        "invalid-path",
    )
    .await;
    let ahead = app
        .post(
            &format!("/webhooks/{id}/replay"),
            &staff,
            Some(json!({"after": 1_000_000})),
        )
        .await;
    assert_problem(ahead, StatusCode::BAD_REQUEST, "position-not-issued").await;
    let patch = |state: &'static str| {
        app.client
            .patch(app.url(&format!("/webhooks/{id}")))
            .bearer_auth(&staff)
            .json(&json!({ "state": state }))
            .send()
    };
    assert_problem(
        patch("failing").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid-body",
    )
    .await;
    let paused: Value = patch("paused").await.unwrap().json().await.unwrap();
    assert_eq!(paused["state"], "paused");
    let replayed = app
        .post(
            &format!("/webhooks/{id}/replay"),
            &staff,
            Some(json!({"after": 0})),
        )
        .await;
    assert_eq!(replayed.status(), StatusCode::OK);
    assert_eq!(replayed.json::<Value>().await.unwrap()["checkpoint"], 0);
    let deleted = app
        .client
        .delete(app.url(&format!("/webhooks/{id}")))
        .bearer_auth(&staff)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let again = app
        .client
        .delete(app.url(&format!("/webhooks/{id}")))
        .bearer_auth(&staff)
        .send()
        .await
        .unwrap();
    assert_problem(again, StatusCode::NOT_FOUND, "webhook-not-found").await;
    assert_eq!(app.query("/webhooks", &staff).await, json!([]));
}

/// Server-side request forgery: without the development flag, loopback, the metadata service,
/// private ranges and a name that resolves to loopback are refused at registration, and an
/// endpoint registered under the flag is refused at delivery once the flag is gone.
async fn private_addresses_are_refused_at_registration_and_at_delivery(backend: Backend) {
    let app = spawn_app_with(backend, quick).await;
    let mut receiver = Receiver::start(Behaviour::default()).await;
    let (created, secret) = register(&app, json!({"url": receiver.url()})).await;
    receiver.trust(&secret).await;
    let id = created["id"].as_str().unwrap().to_owned();
    app.create_order(Uuid::now_v7()).await;
    eventually(
        Duration::from_secs(20),
        "delivered under the flag",
        async || receiver.accepted().len() == 1,
    )
    .await;

    let app = app
        .restart_with(|config| config.webhooks.allow_loopback = false)
        .await;
    let staff = app.staff();
    for url in [
        "http://127.0.0.1:9/hook",
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://[::1]/hook",
        "https://localhost/hook",
    ] {
        let response = app
            .post("/webhooks", &staff, Some(json!({ "url": url })))
            .await;
        let problem =
            assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "url-refused").await;
        assert!(!problem["detail"].as_str().unwrap().is_empty(), "{url}");
    }
    assert_eq!(
        app.query("/webhooks", &staff)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    app.create_order(Uuid::now_v7()).await;
    eventually(
        Duration::from_secs(20),
        "the delivery is refused",
        async || {
            let now = endpoint(&app, &id).await;
            now["last_attempt"]["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("refused"))
        },
    )
    .await;
    let now = endpoint(&app, &id).await;
    assert_eq!(now["delivered"], 1, "{now}");
    assert_eq!(now["lag"], 1, "{now}");
    assert_eq!(
        receiver.requests().len(),
        1,
        "nothing reached the loopback receiver"
    );
}

crate::on_both_backends!(
    deliveries_survive_a_refusing_and_hanging_receiver_in_order_verified,
    an_endpoint_refused_for_its_whole_retry_period_turns_failing_until_resumed,
    endpoints_are_managed_by_staff_and_bad_requests_change_nothing,
    private_addresses_are_refused_at_registration_and_at_delivery,
);
