//! The same generated requests, sent to the service on SQLite and on PostgreSQL, get the same
//! status and problem code and leave the same events: the backends hold one rule for every input.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::harness::{Backend, TestApp, spawn_app};

/// Text as clients send it: ordinary, blank, too long, or with control characters and NUL.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 äß遅-]{0,12}",
        Just(String::new()),
        Just("   ".to_owned()),
        Just("late\u{0}".to_owned()),
        Just("two\r\nlines".to_owned()),
        Just("esc\u{1b}[31m".to_owned()),
        Just("x".repeat(501)),
        "\\PC{0,6}",
        ".{0,6}",
    ]
}

fn item() -> impl Strategy<Value = Value> {
    (
        prop_oneof!["[A-Z0-9-]{1,8}", text()],
        prop_oneof![Just(0u32), Just(1), 1u32..20, Just(10_000), Just(10_001)],
        prop_oneof![
            Just(0i64),
            1i64..100_000,
            Just(-1),
            Just(10_000_000_000_000),
            Just(i64::MAX)
        ],
    )
        .prop_map(|(sku, quantity, unit_price)| {
            json!({"product_id": Uuid::now_v7(), "sku": sku, "quantity": quantity, "unit_price": unit_price})
        })
}

fn create_body() -> impl Strategy<Value = Value> {
    let valid_item = ("[A-Z0-9]{1,6}", 1u32..5, 0i64..10_000).prop_map(|(sku, quantity, price)| {
        json!({"product_id": Uuid::now_v7(), "sku": sku, "quantity": quantity, "unit_price": price})
    });
    let valid = prop::collection::btree_map("[A-Z]{1,6}", valid_item, 1..3).prop_map(|items| {
        // Distinct SKUs (the map's keys): the same SKU twice is a 422 of its own.
        let items: Vec<Value> = items
            .into_iter()
            .map(|(sku, mut item)| {
                item["sku"] = json!(sku);
                item
            })
            .collect();
        json!({"currency": "EUR", "items": items})
    });
    let anything = (
        prop_oneof![Just("EUR"), Just("JPY"), Just("ABC"), Just("eur"), Just("")],
        prop::collection::vec(item(), 0..4),
    )
        .prop_map(|(currency, items)| json!({"currency": currency, "items": items}));
    prop_oneof![3 => valid, 1 => anything]
}

#[derive(Debug, Clone)]
enum Step {
    Confirm,
    Ship(Option<String>, Option<String>),
    Deliver,
    Cancel(String),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Confirm),
        (prop::option::of(text()), prop::option::of(text())).prop_map(|(c, t)| Step::Ship(c, t)),
        Just(Step::Deliver),
        text().prop_map(Step::Cancel),
    ]
}

/// What must agree between the backends: status, problem code, and the order's fields apart
/// from ids, positions and tokens (which each store makes its own).
fn outcome(status: StatusCode, body: &Value) -> Value {
    let mut body = body.clone();
    if let Some(object) = body.as_object_mut() {
        for key in ["id", "position", "consistency_token", "detail"] {
            object.remove(key);
        }
        if let Some(items) = object.get_mut("items").and_then(Value::as_array_mut) {
            for item in items {
                if let Some(item) = item.as_object_mut() {
                    item.remove("product_id");
                }
            }
        }
    }
    json!({"status": status.as_u16(), "body": body})
}

async fn send(app: &TestApp, path: &str, token: &str, body: Option<Value>) -> (StatusCode, Value) {
    let response = app.post(path, token, body).await;
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The stored events' types and payloads, without ids.
async fn stored(app: &TestApp, id: &str) -> Value {
    let page = app
        .query(&format!("/orders/{id}/events"), &app.staff())
        .await;
    let mut events = page["events"].clone();
    for event in events.as_array_mut().into_iter().flatten() {
        let mut payload = event["payload"].take();
        if let Some(payload) = payload.as_object_mut() {
            payload.remove("order_id");
            payload.remove("customer_id");
            if let Some(items) = payload.get_mut("items").and_then(Value::as_array_mut) {
                items.iter_mut().for_each(|i| {
                    i.as_object_mut().map(|i| i.remove("product_id"));
                });
            }
        }
        *event =
            json!({"type": event["event_type"], "version": event["version"], "payload": payload});
    }
    events
}

/// Cases in which both backends created the order, so that the steps ran.
static CREATED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

async fn run_case(
    apps: &[TestApp; 2],
    create: &Value,
    steps: &[Step],
) -> Result<(), TestCaseError> {
    let customer = Uuid::now_v7();
    let mut ids = Vec::new();
    let mut answers = Vec::new();
    for app in apps {
        let (status, body) = send(
            app,
            "/orders",
            &app.customer(customer),
            Some(create.clone()),
        )
        .await;
        answers.push(outcome(status, &body));
        ids.push(body["id"].as_str().map(str::to_owned));
    }
    prop_assert_eq!(&answers[0], &answers[1], "create {}", create);
    let (Some(sqlite_id), Some(postgres_id)) = (&ids[0], &ids[1]) else {
        return Ok(());
    };
    CREATED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    for step in steps {
        let mut answers = Vec::new();
        for (app, id) in apps.iter().zip([sqlite_id, postgres_id]) {
            let (action, body, token) = match step {
                Step::Confirm => ("confirm", None, app.staff()),
                Step::Deliver => ("deliver", None, app.staff()),
                Step::Ship(carrier, tracking) => (
                    "ship",
                    Some(json!({"carrier": carrier, "tracking_number": tracking})),
                    app.staff(),
                ),
                Step::Cancel(reason) => (
                    "cancel",
                    Some(json!({"reason": reason})),
                    app.customer(customer),
                ),
            };
            let (status, body) = send(app, &format!("/orders/{id}/{action}"), &token, body).await;
            prop_assert!(status.as_u16() < 500, "{:?}: {} {}", step, status, body);
            answers.push(outcome(status, &body));
        }
        prop_assert_eq!(&answers[0], &answers[1], "{:?}", step);
    }
    prop_assert_eq!(
        stored(&apps[0], sqlite_id).await,
        stored(&apps[1], postgres_id).await
    );
    Ok(())
}

#[test]
fn both_backends_answer_and_store_alike() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let apps = runtime.block_on(async {
        [
            spawn_app(Backend::Sqlite).await,
            spawn_app(Backend::Postgres).await,
        ]
    });
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(
        &(create_body(), prop::collection::vec(step(), 0..5)),
        |(create, steps)| runtime.block_on(run_case(&apps, &create, &steps)),
    );
    runtime.block_on(async move { drop(apps) });
    if let Err(error) = result {
        panic!("{error}");
    }
    let created = CREATED.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        created >= 12,
        "only {created} of 48 cases got as far as the commands"
    );
}
