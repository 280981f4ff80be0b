//! `Idempotency-Key`: a retried request gets the original response and writes nothing twice.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{Backend, TestApp, assert_problem, order_body, spawn_app};

crate::on_both_backends!(
    a_retried_create_returns_the_original_response,
    a_key_reused_for_another_request_is_422,
    a_retried_command_is_not_applied_twice,
    simultaneous_retries_all_get_the_original_answer
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

/// Retries the create under `key`: it must be answered from the original command's record
/// (`Idempotent-Replayed: true`), and the customer must have exactly one order.
async fn assert_retry_replays_the_one_order(
    app: &TestApp,
    token: &str,
    key: &str,
    body: &Value,
    why: &str,
) {
    let retry = post_with_key(app, "/orders", token, key, body).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(
        retry
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true"),
        "{why}"
    );
    let retry: Value = retry.json().await.unwrap();
    let written = retry["consistency_token"].as_str().unwrap();
    let page = app
        .query(&format!("/orders?consistent_with={written}"), token)
        .await;
    assert_eq!(
        page["orders"].as_array().unwrap().len(),
        1,
        "one order: {page}"
    );
}

/// A response without its `position`: on PostgreSQL a write answers before the feed numbers its
/// event, and a later replay of it may already know the position. It is filled in when known and
/// is not part of the answer's identity.
fn without_position(mut body: Value) -> Value {
    if let Some(body) = body.as_object_mut() {
        body.remove("position");
    }
    body
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
        without_position(retry),
        without_position(first.clone()),
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
    assert_eq!(without_position(retry), without_position(first));
    assert_eq!(
        app.event_types(id).await,
        ["OrderCreated", "OrderCancelled"]
    );
}

/// Retries that overlap their original (a client that timed out and tried again while the first
/// request was still running) must all get the answer of the one that was applied, never a 409
/// from the rule check ("already cancelled") or from losing the race.
async fn simultaneous_retries_all_get_the_original_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    for (action, clients, body) in [
        ("cancel", 8, json!({"reason": "changed my mind"})),
        ("confirm", 64, json!({})),
    ] {
        for round in 0..3 {
            let customer = Uuid::now_v7();
            let id = app.create_order(customer).await;
            let token = match action {
                "cancel" => app.customer(customer),
                _ => app.staff(),
            };
            let path = format!("/orders/{id}/{action}");
            let key = format!("{action}-{round}");
            let responses =
                join_all((0..clients).map(|_| post_with_key(&app, &path, &token, &key, &body)))
                    .await;
            let mut answers = Vec::new();
            for response in responses {
                let status = response.status();
                let text = response.text().await.unwrap();
                assert_eq!(status, StatusCode::OK, "{action} round {round}: {text}");
                let mut body: Value = serde_json::from_str(&text).unwrap();
                // The position is filled in when known; it is not part of the answer's identity.
                body.as_object_mut().unwrap().remove("position");
                answers.push(body);
            }
            assert!(
                answers.windows(2).all(|pair| pair[0] == pair[1]),
                "{action} round {round}: every retry answers as the applied request did"
            );
            assert_eq!(app.event_types(id).await.len(), 2, "applied exactly once");
        }
    }
}

/// A command whose request times out (408) is not cut short: it runs to its end once the store
/// lets it, and a retry with its key learns the outcome, the original order. Before, the timeout
/// dropped the command half-way and the retry created a second order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_that_timed_out_still_completes_and_its_retry_says_so() {
    use sqlx::Connection;
    let app = crate::harness::spawn_app_with(Backend::Sqlite, |config| {
        config.server.request_timeout = std::time::Duration::from_millis(800);
    })
    .await;
    let token = app.customer(Uuid::now_v7());
    // Another writer holds the database's write lock, so the append waits (busy timeout 5 s).
    let file = app.config.database.data_dir.join("orders.db");
    let mut blocker = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let body = order_body();
    let first = post_with_key(&app, "/orders", &token, "slow-1", &body).await;
    assert_problem(first, StatusCode::REQUEST_TIMEOUT, "request-timeout").await;
    let metrics = crate::metrics::scrape(&app).await;
    assert_eq!(
        crate::metrics::value(
            &metrics,
            "http_requests_total",
            &[r#"route="/orders""#, r#"status="408""#]
        ),
        1.0,
        "a 408 is counted like any other answer:\n{metrics}"
    );
    // The lock goes away; the command, still running, commits.
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut blocker)
        .await
        .unwrap();
    drop(blocker);
    assert_retry_replays_the_one_order(
        &app,
        &token,
        "slow-1",
        &body,
        "the retry is answered from the timed-out command's record",
    )
    .await;
}

/// A client that gives up and drops its connection mid-command (PostgreSQL): the command runs to
/// its end, and a retry with the key gets its answer instead of creating a second order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_whose_client_went_away_completes_and_its_retry_says_so() {
    use sqlx::Connection;
    let app = crate::harness::spawn_app(Backend::Postgres).await;
    let token = app.customer(Uuid::now_v7());
    // A transaction holding `events` in EXCLUSIVE mode: reads go on, the append's insert waits.
    let mut blocker = sqlx::PgConnection::connect(app.database_url.as_deref().unwrap())
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE events IN EXCLUSIVE MODE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let body = order_body();
    let impatient = app
        .client
        .post(app.url("/orders"))
        .bearer_auth(&token)
        .header("idempotency-key", "gone-1")
        .json(&body)
        .timeout(std::time::Duration::from_millis(500))
        .send()
        .await;
    assert!(
        impatient.as_ref().is_err_and(reqwest::Error::is_timeout),
        "the client gave up: {impatient:?}"
    );
    sqlx::raw_sql("COMMIT").execute(&mut blocker).await.unwrap();
    drop(blocker);
    // The abandoned command commits once the lock is gone; its retry is answered from its record
    // (or, if it is still finishing, waits for it behind the key's lock).
    assert_retry_replays_the_one_order(
        &app,
        &token,
        "gone-1",
        &body,
        "the retry is answered from the abandoned command's record",
    )
    .await;
}

/// Records expire (`ORDERS_IDEMPOTENCY_RETENTION`): once purged, the key is a new request, so
/// stored keys do not grow without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_forgotten_after_the_retention() {
    let app = crate::harness::spawn_app_with(Backend::Sqlite, |config| {
        config.idempotency_retention = std::time::Duration::from_secs(1);
    })
    .await;
    let token = app.customer(Uuid::now_v7());
    let body = order_body();
    let first = post_with_key(&app, "/orders", &token, "old-1", &body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let metrics = crate::metrics::scrape(&app).await;
        if crate::metrics::value(&metrics, "idempotency_records_purged_total", &[]) >= 1.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no record was purged:\n{metrics}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let later = post_with_key(&app, "/orders", &token, "old-1", &body).await;
    assert_eq!(later.status(), StatusCode::CREATED);
    assert!(
        later.headers().get("idempotent-replayed").is_none(),
        "a purged key is a new request"
    );
    let later: Value = later.json().await.unwrap();
    assert_ne!(later["id"], first["id"], "a second order");
}
