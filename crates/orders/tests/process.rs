//! The real binary as an operator runs it: start, serve, log without secrets, stop on SIGTERM.
#![allow(clippy::unwrap_used)] // test code

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const SECRET: &str = "process-test-secret-0123456789abcdef-xyz";
/// A master key (base64 of 32 bytes) that must never appear in a log line.
const MASTER_KEY: &str = "cHJvY2Vzcy10ZXN0LW1hc3Rlci1rZXktMzItYnl0ZXM=";

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
        .env("ORDERS_MASTER_KEY", MASTER_KEY)
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // At `--log trace` the log outgrows a pipe's buffer (64 KiB on Linux) within a few requests:
    // read it while the service runs, or the service blocks on a full pipe and never exits.
    let logs = drain(child.stderr.take().unwrap());
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    stdout.read_line(&mut banner).unwrap();
    let _stdout = drain(stdout);
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
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    // Personal values, to be found in no log line, before or after the customer is forgotten.
    let customer = uuid::Uuid::now_v7();
    let personal = [
        "NAMEMARKER7Q",
        "STREETMARKER7Q",
        "marker7q@example.com",
        "REASONMARKER7Q",
    ];
    let body = serde_json::json!({"customer_id": customer, "currency": "EUR",
        "items": [{"product_id": uuid::Uuid::now_v7(), "sku": "A-1", "quantity": 1, "unit_price": 100}],
        "shipping_address": {"recipient_name": personal[0], "line1": personal[1],
            "postal_code": "10117", "city": "Berlin", "country": "DE"},
        "contact": {"email": personal[2]}});
    let created = client
        .post(format!("http://{addr}/orders"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cancelled = client
        .post(format!("http://{addr}/orders/{id}/cancel"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"reason": personal[3]}))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    let shown = client
        .get(format!("http://{addr}/orders/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(shown.contains(personal[3]), "{shown}");
    let forgotten = client
        .post(format!("http://{addr}/customers/{customer}/forget"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(forgotten.status(), 200);
    let bad = client
        .get(format!("http://{addr}/orders/x"))
        .bearer_auth("not-a-real-token.abc.def")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    // A console sign-in: the link's token (in a URL and a form) and the session cookie.
    let link = operator_console::ConsoleKeys::derive(SECRET.as_bytes())
        .issue_link("ops", Duration::from_secs(60))
        .unwrap();
    let opened = client
        .get(format!("http://{addr}/console/login?token={link}"))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 200);
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = no_redirects
        .post(format!("http://{addr}/console/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={link}"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let session = cookie.split(';').next().unwrap().to_owned();
    let page = no_redirects
        .get(format!("http://{addr}/console/orders/{id}"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let session_value = session.split_once('=').unwrap().1.to_owned();
    // Enough traffic that the log is sure to be larger than a pipe's buffer.
    for _ in 0..60 {
        let health = client
            .get(format!("http://{addr}/health/ready"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
    }

    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = wait_at_most(&mut child, Duration::from_secs(60));
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    let logs = logs.join().unwrap();
    assert!(
        logs.len() > 64 * 1024,
        "the log ({} bytes) should be larger than a pipe's buffer",
        logs.len()
    );
    assert!(
        logs.contains("\"command\":\"create\"") || logs.contains("command handled"),
        "expected command logs:\n{logs}"
    );
    assert!(logs.contains("shutting down"));
    for secret in [
        SECRET,
        MASTER_KEY,
        token.as_str(),
        "not-a-real-token",
        link.as_str(),
        session_value.as_str(),
    ] {
        assert!(!logs.contains(secret), "a secret or token was logged");
    }
    for value in personal {
        assert!(
            !logs.contains(value),
            "the personal value {value} was logged"
        );
    }
    assert!(
        logs.contains("customer forgotten"),
        "the forgetting is logged (by id)"
    );
    for line in logs.lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not a JSON log line: {line}"
        );
    }
}

/// Reads `pipe` to the end on a thread; the thread's result is everything read.
fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        pipe.read_to_string(&mut text).unwrap();
        text
    })
}

/// Waits for `child` to exit; kills it and fails if it is still running after `deadline`.
fn wait_at_most(child: &mut Child, deadline: Duration) -> ExitStatus {
    let until = Instant::now() + deadline;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("the service did not exit within {deadline:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
