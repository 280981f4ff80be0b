//! `/metrics` after some traffic: the series exist and move.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use uuid::Uuid;

use crate::harness::{Backend, TestApp, spawn_app_with};

/// The sum of the series named `name` whose labels include every `label="value"` given.
pub(crate) fn value(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(name) && line[name.len()..].starts_with(['{', ' ']))
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

pub(crate) async fn scrape(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_traffic() {
    // A Redis timeout generous enough that the second read is a hit on a loaded machine too.
    let app = spawn_app_with(Backend::Postgres, |c| {
        c.cache.timeout = Duration::from_secs(10);
    })
    .await;
    let before = scrape(&app).await;
    let customer = Uuid::now_v7();
    let id = app.create_order(customer).await;
    let confirmed = app
        .post(&format!("/orders/{id}/confirm"), &app.staff(), None)
        .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let confirmed: serde_json::Value = confirmed.json().await.unwrap();
    let created_token = format!("{id}:1");
    assert_eq!(
        app.post(&format!("/orders/{id}/confirm"), &app.staff(), None)
            .await
            .status(),
        StatusCode::CONFLICT
    );
    app.get(&format!("/orders/{id}"), &app.customer(customer))
        .await;
    app.get(&format!("/orders/{id}"), &app.customer(customer))
        .await;
    app.get(&format!("/orders/{}", Uuid::now_v7()), &app.staff())
        .await;
    let list = app
        .get(
            &format!("/orders?consistent_with={created_token}"),
            &app.staff(),
        )
        .await;
    assert_eq!(list.status(), StatusCode::OK);
    assert!(confirmed["consistency_token"].is_string());
    // The list query waited for the read model to include the creation only; the projection
    // counts the confirmation a moment later. Scrape until it has, within a generous deadline.
    let projected = |text: &str| {
        value(text, "projection_events_total", &["projection=\"orders\""])
            - value(
                &before,
                "projection_events_total",
                &["projection=\"orders\""],
            )
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let after = scrape(&app).await;
        if projected(&after) >= 2.0 || Instant::now() > deadline {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let moved =
        |name: &str, labels: &[&str]| value(&after, name, labels) - value(&before, name, labels);
    assert!(
        moved(
            "commands_total",
            &["command=\"create\"", "outcome=\"accepted\""]
        ) >= 1.0,
        "{after}"
    );
    assert!(
        moved(
            "commands_total",
            &["command=\"confirm\"", "outcome=\"conflict\""]
        ) >= 1.0
    );
    assert!(
        moved(
            "http_requests_total",
            &["route=\"/orders/{id}\"", "status=\"404\""]
        ) >= 1.0
    );
    assert!(
        moved(
            "http_request_duration_seconds_count",
            &["route=\"/orders\""]
        ) >= 2.0
    );
    assert!(moved("event_store_appends_total", &["outcome=\"appended\""]) >= 2.0);
    assert!(moved("cache_requests_total", &["result=\"hit\""]) >= 1.0);
    assert!(moved("projection_events_total", &["projection=\"orders\""]) >= 2.0);
    for series in [
        "db_pool_connections",
        "feed_unsequenced_events",
        "projection_lag_events",
        "command_duration_seconds_bucket",
        "event_store_append_duration_seconds_bucket",
    ] {
        assert!(after.contains(series), "{series} missing");
    }
    assert!(
        !after.contains(&id.to_string()),
        "an order id must never be a label"
    );
}
