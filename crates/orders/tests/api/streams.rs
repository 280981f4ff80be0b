//! `GET /feed/stream`: the live feed over server-sent events, read by an independent client
//! (sseclient-py over requests, from PyPI) that drops its connection again and again and resumes
//! with `Last-Event-ID`, while orders are written.

use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::harness::{Backend, TestApp, spawn_app};

/// Reads `total` events from the stream, `per` per connection, resuming each time with the last
/// id it received; prints each event as a JSON line, then the number of connections.
const CLIENT: &str = r#"
import json, sys
import requests, sseclient
base, token, total, per = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
last, seen, connections = None, 0, 0
while seen < total:
    headers = {"Authorization": "Bearer " + token, "Accept": "text/event-stream"}
    url = base + "/feed/stream"
    if last is None:
        url += "?after=0"
    else:
        headers["Last-Event-ID"] = last
    connections += 1
    with requests.get(url, headers=headers, stream=True, timeout=30) as response:
        response.raise_for_status()
        taken = 0
        for sse in sseclient.SSEClient(response).events():
            if not sse.data:
                continue  # the retry interval, or a heartbeat: nothing to dispatch
            if sse.event != "message":
                print(json.dumps({"unexpected": sse.event, "data": sse.data}), flush=True)
                sys.exit(1)
            event = json.loads(sse.data)
            print(json.dumps({"id": sse.id, "position": event["position"],
                              "order_id": event["order_id"], "version": event["order_version"],
                              "schema": event["schema"]}), flush=True)
            last, seen, taken = sse.id, seen + 1, taken + 1
            if taken >= per or seen >= total:
                break
print(json.dumps({"connections": connections}), flush=True)
"#;

fn require_sse_client() {
    let ok = Command::new("python3")
        .args(["-c", "import sseclient, requests"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "\n\nThe Python SSE client is missing (the independent reader of this test).\n\
         Install it: pip install sseclient-py requests   (.ci/run does this when it is missing)\n"
    );
}

async fn a_client_that_keeps_reconnecting_sees_every_event_once_in_order(backend: Backend) {
    require_sse_client();
    let app = spawn_app(backend).await;
    let mut orders = Vec::new();
    for _ in 0..20 {
        orders.push(app.create_order(Uuid::now_v7()).await);
    }
    let (total, per) = (60, 3); // 20 creations, 20 confirmations, 20 creations
    let client = {
        let (base, token) = (app.url(""), app.staff());
        tokio::task::spawn_blocking(move || {
            Command::new("python3")
                .args(["-c", CLIENT, &base, &token])
                .args([total.to_string(), per.to_string()])
                .output()
                .unwrap()
        })
    };
    // More events while the client reads: a confirmation of each order and 20 new orders.
    for order in &orders {
        let confirmed = app
            .post(&format!("/orders/{order}/confirm"), &app.staff(), None)
            .await;
        assert_eq!(confirmed.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for _ in 0..20 {
        app.create_order(Uuid::now_v7()).await;
    }
    let output = tokio::time::timeout(Duration::from_secs(120), client)
        .await
        .unwrap()
        .unwrap();
    assert!(
        output.status.success(),
        "the SSE client failed: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let (summary, events) = lines.split_last().unwrap();
    let positions: Vec<u64> = events
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert_eq!(
        positions,
        (1..=total).collect::<Vec<u64>>(),
        "every event once, in order"
    );
    for event in events {
        assert_eq!(event["id"], Value::String(event["position"].to_string()));
        assert_eq!(event["schema"], "orders.order-event/v1");
    }
    // Version order per order: its creation, then its confirmation.
    for order in &orders {
        let versions: Vec<u64> = events
            .iter()
            .filter(|e| e["order_id"] == Value::String(order.to_string()))
            .map(|e| e["version"].as_u64().unwrap())
            .collect();
        assert_eq!(versions, vec![1, 2], "order {order}");
    }
    assert!(
        summary["connections"].as_u64().unwrap() >= (total / per as u64),
        "{summary}"
    );
}

async fn only_staff_read_the_feed_stream_and_a_bad_resume_point_is_a_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let customer = app.customer(Uuid::now_v7());
    assert_eq!(
        app.get("/feed/stream", &customer).await.status(),
        StatusCode::FORBIDDEN
    );
    let bad = app
        .client
        .get(app.url("/feed/stream"))
        .bearer_auth(app.staff())
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    // A position the feed has not issued: refused at once, not waited for.
    let ahead = app.get("/feed/stream?after=999999", &app.staff()).await;
    assert_eq!(ahead.status(), StatusCode::BAD_REQUEST);
    let ahead = app
        .get(
            &format!("/customers/{}/orders/stream?after=999999", Uuid::now_v7()),
            &app.staff(),
        )
        .await;
    assert_eq!(ahead.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.headers()["content-type"],
        "application/problem+json",
        "a problem document"
    );
}

/// A stream opened without a position starts at the live head: the first event it carries is
/// the first one written after it opened.
async fn a_stream_without_a_position_starts_at_the_live_head(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.create_order(Uuid::now_v7()).await;
    numbered(&app, first).await;
    let mut response = app
        .client
        .get(app.url("/feed/stream"))
        .bearer_auth(app.staff())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let order = app.create_order(Uuid::now_v7()).await;
    let mut text = String::new();
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        while !text
            .split_once("data:")
            .is_some_and(|(_, rest)| rest.contains("\n\n"))
        {
            let chunk = response.chunk().await.unwrap().unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    });
    read.await.unwrap();
    let data = text
        .lines()
        .find_map(|line| line.strip_prefix("data:"))
        .unwrap();
    let event: Value = serde_json::from_str(data.trim()).unwrap();
    assert_eq!(event["order_id"], Value::String(order.to_string()));
    assert_eq!(event["position"], 2);
    assert!(
        text.contains("id:2\n") || text.contains("id: 2\n"),
        "{text}"
    );
    // The first thing a stream says is how soon to reconnect.
    assert!(text.starts_with("retry:"), "{text}");
}

/// Reads `n` messages (blocks with `data`) from an SSE response: (id, data) each.
async fn messages(response: &mut reqwest::Response, n: usize) -> Vec<(u64, Value)> {
    let mut text = String::new();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while out.len() < n {
            while let Some((block, rest)) = text.split_once("\n\n") {
                let id = block
                    .lines()
                    .find_map(|l| l.strip_prefix("id:"))
                    .map(|id| id.trim().parse::<u64>().unwrap());
                let data = block.lines().find_map(|l| l.strip_prefix("data:"));
                if let (Some(id), Some(data)) = (id, data) {
                    out.push((id, serde_json::from_str(data.trim()).unwrap()));
                }
                text = rest.to_owned();
            }
            if out.len() >= n {
                break;
            }
            let chunk = response.chunk().await.unwrap().expect("the stream ended");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {n} messages within 30 s", out.len()));
    out
}

async fn open_stream(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response
}

/// Many customers write at once, each with its stream open from the live head: each stream
/// carries exactly its customer's events (of orders created before it opened, found through the
/// read model, and of orders created since), with personal data revealed; another customer's
/// stream is a 404; once the customer is forgotten, its personal fields read `null`.
async fn a_customer_stream_carries_its_customers_events_and_no_one_elses(backend: Backend) {
    let app = spawn_app(backend).await;
    let customers: Vec<Uuid> = (0..6).map(|_| Uuid::now_v7()).collect();
    let mut first = Vec::new();
    for customer in &customers {
        first.push(app.create_order(*customer).await);
    }
    // Numbered (PostgreSQL numbers a moment after the commit), so behind the live head.
    for order in &first {
        numbered(&app, *order).await;
    }
    let mut streams = Vec::new();
    for customer in &customers {
        let path = format!("/customers/{customer}/orders/stream");
        streams.push(open_stream(&app, &path, &app.customer(*customer)).await);
    }
    let other = app
        .get(
            &format!("/customers/{}/orders/stream", customers[1]),
            &app.customer(customers[0]),
        )
        .await;
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    // All customers at once: confirm the order from before, create and confirm a new one.
    let writes = customers.iter().zip(&first).map(|(customer, order)| {
        let app = &app;
        async move {
            let confirm = |order: Uuid| async move {
                let path = format!("/orders/{order}/confirm");
                assert_eq!(
                    app.post(&path, &app.staff(), None).await.status(),
                    StatusCode::OK
                );
            };
            confirm(*order).await;
            let second = app.create_order(*customer).await;
            confirm(second).await;
            (*order, second)
        }
    });
    let written = futures::future::join_all(writes).await;
    for ((customer, stream), (order, second)) in customers.iter().zip(&mut streams).zip(&written) {
        let got = messages(stream, 3).await;
        let seen: Vec<(String, u64, String)> = got
            .iter()
            .map(|(_, m)| {
                (
                    m["order_id"].as_str().unwrap().to_owned(),
                    m["order_version"].as_u64().unwrap(),
                    m["event_type"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (order.to_string(), 2, "OrderConfirmed".to_owned()),
                (second.to_string(), 1, "OrderCreated".to_owned()),
                (second.to_string(), 2, "OrderConfirmed".to_owned()),
            ],
            "customer {customer}"
        );
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "ids rise");
        assert_eq!(
            got[1].1["data"]["customer_id"],
            Value::String(customer.to_string())
        );
        assert_eq!(
            got[1].1["data"]["shipping_address"]["city"], "Berlin",
            "revealed: {}",
            got[1].1
        );
    }
    // Nothing else came after them either: each customer's next order is the next message on
    // its stream.
    for (customer, stream) in customers.iter().zip(&mut streams) {
        let marker = app.create_order(*customer).await;
        let next = messages(stream, 1).await;
        assert_eq!(next[0].1["order_id"], Value::String(marker.to_string()));
    }

    // Forgotten: a replay from the start shows the customer's personal fields as null.
    let forgotten = app
        .post(
            &format!("/customers/{}/forget", customers[2]),
            &app.staff(),
            None,
        )
        .await;
    assert_eq!(forgotten.status(), StatusCode::OK);
    let path = format!("/customers/{}/orders/stream?after=0", customers[2]);
    let mut replay = open_stream(&app, &path, &app.staff()).await;
    let replayed = messages(&mut replay, 4).await;
    assert_eq!(replayed[0].1["event_type"], "OrderCreated");
    assert_eq!(
        replayed[0].1["data"]["shipping_address"],
        Value::Null,
        "{}",
        replayed[0].1
    );
}

crate::on_both_backends!(
    a_customer_stream_carries_its_customers_events_and_no_one_elses,
    a_client_that_keeps_reconnecting_sees_every_event_once_in_order,
    only_staff_read_the_feed_stream_and_a_bad_resume_point_is_a_400,
    a_stream_without_a_position_starts_at_the_live_head,
    a_browser_whose_connection_breaks_100_times_sees_every_event_once,
);

/// Waits until the feed has numbered the creation of `order` (PostgreSQL numbers a moment after
/// the commit).
async fn numbered(app: &TestApp, order: Uuid) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while app
        .query(&format!("/orders/{order}/events?limit=1"), &app.staff())
        .await["events"][0]["position"]
        .as_u64()
        .is_none()
    {
        assert!(std::time::Instant::now() < deadline, "never numbered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The console's live feed (the same fan-out as `/feed/stream`) in Chromium, behind a proxy that
/// breaks the page's connection 100 times while orders are written: the page's `EventSource`
/// reconnects with `Last-Event-ID` each time and ends with every event exactly once, in order.
async fn a_browser_whose_connection_breaks_100_times_sees_every_event_once(backend: Backend) {
    use tokio::io::{AsyncBufReadExt, BufReader};

    const DROPS: usize = 100;
    const PER_DROP: usize = 2;
    let dir = crate::console::check_prerequisites();
    let app = spawn_app(backend).await;
    let proxy = test_support::proxy::Proxy::start(app.addr).await;
    let base = format!("http://{}", proxy.addr);
    let secret = app.config.jwt_secret.clone().unwrap();
    let link = operator_console::ConsoleKeys::derive(secret.as_bytes())
        .issue_link("ops", Duration::from_secs(600))
        .unwrap();
    let expect = DROPS * PER_DROP;
    let mut node = tokio::process::Command::new("node")
        .arg(dir.join("feed-drops.test.mjs"))
        .current_dir(&dir)
        .env("FEED_BASE_URL", &base)
        .env("FEED_LINK", format!("{base}/console/login?token={link}"))
        .env("FEED_EXPECT", expect.to_string())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node must be installed (Node.js 20+) to run the browser tests");
    let mut lines = BufReader::new(node.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await;
    assert_eq!(ready.unwrap().unwrap().as_deref(), Some("ready"));

    let customer = Uuid::now_v7();
    let (mut dropped, mut written) = (0, 0);
    while dropped < DROPS {
        // PER_DROP events before each break (not again when a break is retried).
        while written < (dropped + 1) * PER_DROP {
            app.create_order(customer).await;
            written += 1;
        }
        let before = proxy.accepted();
        proxy.refuse();
        tokio::time::sleep(Duration::from_millis(50)).await;
        proxy.forward();
        // The page reconnects within its retry interval; a break the page did not notice (it was
        // between connections) is simply tried again.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while proxy.accepted() == before && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if proxy.accepted() > before {
            dropped += 1;
        }
    }
    let result = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
        .await
        .expect("the page did not show every event")
        .unwrap()
        .unwrap();
    let shown: Value = serde_json::from_str(&result).unwrap();
    let mut positions: Vec<u64> = shown["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect();
    positions.reverse(); // the page shows the newest first
    assert_eq!(
        positions,
        (1..=expect as u64).collect::<Vec<u64>>(),
        "every event once, in order, after {DROPS} broken connections"
    );
    assert!(node.wait().await.unwrap().success());
}
