//! The operator console in a real browser, on both backends: this test runs the service and
//! prepares its data (an order with two events, a correlated order, a parked event), then runs
//! `tests/console/console.test.mjs`, which drives Debian's Chromium with playwright-core and
//! checks every page with axe-core. Screenshots land in `target/console-screenshots/<backend>/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use domain::{CreateOrder, Currency, DomainEvent, OrderAggregate, OrderItem};
use event_store::{EventStore, ExpectedVersion, NewEvent};
use operator_console::ConsoleKeys;
use orders::auth::{JwtKeys, Role};
use reqwest::StatusCode;
use serde_json::{Value, json};
use store::Store;
use uuid::Uuid;

use crate::harness::{Backend, TestApp, spawn_app};

crate::on_both_backends!(the_console_works_in_a_browser);

fn console_tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console")
}

/// Fails loudly, with the command that fixes it, when the browser or the npm packages are missing.
pub(crate) fn check_prerequisites() -> PathBuf {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "the console's browser tests need Debian's Chromium at {chromium}: \
         apt-get update && apt-get install -y chromium chromium-driver (or set CHROMIUM)"
    );
    let dir = console_tests_dir();
    assert!(
        dir.join("node_modules/playwright-core").exists()
            && dir.join("node_modules/axe-core").exists(),
        "the console's browser tests need their npm packages: npm ci --prefix {} (Node.js 20+)",
        dir.display()
    );
    dir
}

async fn the_console_works_in_a_browser(backend: Backend) {
    let dir = check_prerequisites();
    let app = spawn_app(backend).await;
    let secret = app.config.jwt_secret.clone().unwrap();
    let api_keys = JwtKeys::new(secret.as_bytes());
    let tester = api_keys
        .issue("console-tester", Role::Staff, Duration::from_secs(600))
        .unwrap();
    let customer = Uuid::now_v7();
    let correlation = Uuid::now_v7();

    // An order at version 2 (created, then given an address), and a second order of the same
    // correlation.
    let order = command(&app, "/orders", &tester, correlation, json!({
        "customer_id": customer, "currency": "EUR",
        "items": [{ "product_id": Uuid::now_v7(), "sku": "CONSOLE-SKU-1", "quantity": 2, "unit_price": 1050 }],
    }))
    .await;
    let order_id = order["id"].as_str().unwrap().to_owned();
    command(
        &app,
        &format!("/orders/{order_id}/shipping-address"),
        &tester,
        correlation,
        json!({
            "shipping_address": { "recipient_name": "Console Tester", "line1": "Console Street 1",
                "postal_code": "10117", "city": "Berlin", "country": "DE" }
        }),
    )
    .await;
    let correlated = command(&app, "/orders", &tester, correlation, json!({
        "customer_id": Uuid::now_v7(), "currency": "EUR",
        "items": [{ "product_id": Uuid::now_v7(), "sku": "CONSOLE-SKU-2", "quantity": 1, "unit_price": 500 }],
    }))
    .await;

    let parked = park_a_repairable_event(&app).await;

    let keys = ConsoleKeys::derive(secret.as_bytes());
    let base = app.url("");
    let link = |token: String| format!("{base}/console/login?token={token}");
    let expired = link(keys.issue_link("ops", Duration::ZERO).unwrap());
    let valid = link(keys.issue_link("ops", Duration::from_secs(300)).unwrap());
    tokio::time::sleep(Duration::from_millis(1_100)).await; // the zero-lifetime link expires
    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/console-screenshots")
        .join(format!("{backend:?}").to_lowercase());

    let mut node = Command::new("node");
    node.arg(dir.join("console.test.mjs"))
        .current_dir(&dir)
        .env("CONSOLE_BASE_URL", &base)
        .env("CONSOLE_LINK", &valid)
        .env("CONSOLE_EXPIRED_LINK", &expired)
        .env("CONSOLE_STAFF_TOKEN", app.staff())
        .env("CONSOLE_CUSTOMER_TOKEN", app.customer(customer))
        .env("CONSOLE_CUSTOMER_ID", customer.to_string())
        .env("CONSOLE_ORDER_ID", &order_id)
        .env(
            "CONSOLE_CORRELATED_ORDER_ID",
            correlated["id"].as_str().unwrap(),
        )
        .env("CONSOLE_PARKED_POSITION", parked.to_string())
        .env("CONSOLE_SCREENSHOTS", &screenshots);
    let output = tokio::task::spawn_blocking(move || node.output())
        .await
        .unwrap()
        .expect("node must be installed (Node.js 20+) to run the console's browser tests");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the browser test failed ({}):\n{stdout}\n{stderr}\nscreenshots so far: {}",
        output.status,
        screenshots.display()
    );
    assert!(stdout.contains("console browser test passed"), "{stdout}");
}

/// Sends a command as `token` under `correlation`; returns the answer's body.
async fn command(app: &TestApp, path: &str, token: &str, correlation: Uuid, body: Value) -> Value {
    let response = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .header("x-correlation-id", correlation.to_string())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

/// An event no read model can apply (an unknown type) is parked by both; then its stored row is
/// repaired into a valid `OrderCreated`, as a fixed upcaster would read it, so that a retry from
/// the page applies it. Returns its position.
async fn park_a_repairable_event(app: &TestApp) -> u64 {
    let store = Store::open(&app.config.database).await.unwrap();
    let broken = Uuid::now_v7();
    let event = NewEvent::new("Order", "OrderTeleported", 1, json!({}));
    store
        .append_events(broken, ExpectedVersion::NoStream, vec![event])
        .await
        .unwrap();
    let position = store.global_position(broken, 1).await.unwrap();
    let staff = app.staff();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let response = app.get("/projections", &staff).await;
        assert_eq!(response.status(), StatusCode::OK);
        let models: Value = response.json().await.unwrap();
        if models.as_array().unwrap().iter().all(|m| m["parked"] == 1) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the event was never parked: {models}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let eur = Currency::new("EUR").unwrap();
    let created = OrderAggregate::default()
        .create(&CreateOrder {
            order_id: broken,
            customer_id: Uuid::now_v7(),
            currency: eur.clone(),
            items: vec![OrderItem::new(Uuid::now_v7(), "REPAIRED-1", 1, 100, eur).unwrap()],
            shipping_address: None,
            contact: None,
        })
        .unwrap()
        .remove(0);
    let payload = created.to_payload().to_string();
    let version = i64::from(created.schema_version());
    let repaired = match &store {
        Store::Postgres(pg) => sqlx::query(
            "UPDATE events SET event_type = 'OrderCreated', schema_version = $1, payload = $2::jsonb WHERE aggregate_id = $3",
        )
        .bind(version)
        .bind(&payload)
        .bind(broken)
        .execute(pg.pool())
        .await
        .unwrap()
        .rows_affected(),
        Store::Sqlite(sqlite) => sqlx::query(
            "UPDATE events SET event_type = 'OrderCreated', schema_version = $1, payload = $2 WHERE aggregate_id = $3",
        )
        .bind(version)
        .bind(&payload)
        .bind(broken.to_string())
        .execute(sqlite.writer())
        .await
        .unwrap()
        .rows_affected(),
    };
    assert_eq!(repaired, 1);
    position
}
