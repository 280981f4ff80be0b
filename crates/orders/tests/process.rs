//! The real binary as an operator runs it: start, serve, log without secrets, stop on SIGTERM.
#![allow(clippy::unwrap_used)] // test code

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

const SECRET: &str = "process-test-secret-0123456789abcdef-xyz";

#[tokio::test]
async fn the_service_logs_no_secrets_and_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_orders"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log",
            "trace",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("ORDERS_JWT_SECRET", SECRET)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    stdout.read_line(&mut banner).unwrap();
    let addr = banner
        .split("http://")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();

    let token = orders::auth::JwtKeys::new(SECRET.as_bytes())
        .issue("ops", orders::auth::Role::Staff, Duration::from_secs(60))
        .unwrap();
    let client = reqwest::Client::new();
    let body = serde_json::json!({"customer_id": uuid::Uuid::now_v7(), "currency": "EUR",
        "items": [{"product_id": uuid::Uuid::now_v7(), "sku": "A-1", "quantity": 1, "unit_price": 100}]});
    let created = client
        .post(format!("http://{addr}/orders"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let bad = client
        .get(format!("http://{addr}/orders/x"))
        .bearer_auth("not-a-real-token.abc.def")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);

    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(
        logs.contains("\"command\":\"create\"") || logs.contains("command handled"),
        "expected command logs:\n{logs}"
    );
    assert!(logs.contains("shutting down"));
    for secret in [SECRET, token.as_str(), "not-a-real-token"] {
        assert!(!logs.contains(secret), "a secret or token was logged");
    }
    for line in logs.lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not a JSON log line: {line}"
        );
    }
}
