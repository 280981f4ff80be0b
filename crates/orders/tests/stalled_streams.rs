//! Consumers of `GET /feed/stream` that stop reading: the service's memory stays flat while
//! thousands of events go by (they are not buffered per consumer), and once a stalled consumer
//! reads again it is cut off with `event: behind` and the position to resume after.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use orders::auth::{JwtKeys, Role};
use serde_json::json;
use test_support::service::ServiceBuilder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

const SECRET: &str = "stalled-streams-secret-0123456789abcdef";
const CONSUMERS: usize = 40;
const ORDERS: usize = 2_500;
/// Lines per order: big events (about 8 KiB each as a message), so that what the kernel's socket
/// buffers hold (up to 4 MiB per connection) is soon less than what a stalled consumer misses.
const LINES: usize = 60;

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_consumers_are_cut_off_and_memory_stays_flat() {
    let dir = tempfile::tempdir().unwrap();
    let service = ServiceBuilder::new(env!("CARGO_BIN_EXE_orders"), "stalled")
        .env("ORDERS_JWT_SECRET", SECRET)
        .env("ORDERS_DATA_DIR", dir.path())
        // The command path's cache of order states would grow with the orders written here
        // (about 8 KiB each); this test measures what the streams hold.
        .env("ORDERS_STATE_CACHE", "0")
        .start()
        .await;
    let pid = service.pid();
    let staff = JwtKeys::new(SECRET.as_bytes())
        .issue("ops", Role::Staff, Duration::from_secs(600))
        .unwrap();
    let client = reqwest::Client::new();
    let base = service.base_url();
    let create = |client: reqwest::Client, base: String, staff: String| async move {
        let items: Vec<_> = (0..LINES)
            .map(|line| json!({"product_id": Uuid::now_v7(), "sku": format!("SKU-STALLED-{line:04}"), "quantity": 1, "unit_price": 100}))
            .collect();
        let body = json!({ "customer_id": Uuid::now_v7(), "currency": "EUR", "items": items });
        let response = client
            .post(format!("{base}/orders"))
            .bearer_auth(&staff)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert_eq!(
            status,
            reqwest::StatusCode::CREATED,
            "{}",
            response.text().await.unwrap()
        );
    };
    // Warm up: the allocator and the database's caches reach their working size first.
    for _ in 0..200 {
        create(client.clone(), base.clone(), staff.clone()).await;
    }

    // Consumers that open the live stream, read its first bytes, then stop reading.
    let mut stalled = Vec::new();
    for _ in 0..CONSUMERS {
        // A small receive buffer, so that the kernel holds little of what the service sends.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut socket = socket
            .connect(([127, 0, 0, 1], service.port).into())
            .await
            .unwrap();
        let request = format!(
            "GET /feed/stream HTTP/1.1\r\nHost: orders\r\nAuthorization: Bearer {staff}\r\nAccept: text/event-stream\r\n\r\n"
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut head = [0u8; 256];
        let n = socket.read(&mut head).await.unwrap();
        assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));
        stalled.push(socket);
    }
    let before = rss_kib(pid);

    let mut writers = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (client, base, staff) = (client.clone(), base.clone(), staff.clone());
        writers.spawn(async move {
            for _ in (worker..ORDERS).step_by(8) {
                create(client.clone(), base.clone(), staff.clone()).await;
            }
        });
    }
    writers.join_all().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(pid);
    let grown_mib = after.saturating_sub(before) as f64 / 1024.0;
    println!(
        "{CONSUMERS} stalled consumers, {ORDERS} events: service RSS {:.1} → {:.1} MiB (+{grown_mib:.1})",
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
    // Buffered per consumer, the events would take far more: 40 consumers × 2 500 events ×
    // 8 KiB ≈ 780 MiB. The one shared ring holds 1 024 of them (8 MiB).
    assert!(grown_mib < 40.0, "memory grew by {grown_mib:.1} MiB");

    // Reading again, each consumer gets what its socket held, then the cut-off.
    for mut socket in stalled {
        // The stream's last 64 KiB (the cut-off is its last message), and how much came.
        let mut tail: Vec<u8> = Vec::new();
        let mut total = 0usize;
        let mut buffer = vec![0u8; 64 * 1024];
        let cut_off = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let n = socket.read(&mut buffer).await.unwrap();
                assert!(n > 0, "the stream ended without a cut-off");
                total += n;
                tail.extend_from_slice(&buffer[..n]);
                if tail.len() > 128 * 1024 {
                    tail.drain(..tail.len() - 64 * 1024);
                }
                if ends_with_cut_off(&tail) {
                    return;
                }
            }
        })
        .await;
        let text = String::from_utf8_lossy(&tail).into_owned();
        assert!(
            cut_off.is_ok(),
            "no `behind` within 30 s after {total} bytes: {}",
            &text[text.len().saturating_sub(300)..]
        );
        let behind = text.rfind("event: behind\n").expect("the cut-off message");
        let message = &text[behind..];
        let data = message
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap();
        let data: serde_json::Value = serde_json::from_str(data).unwrap();
        let last_id: u64 = text[..behind]
            .rfind("id: ")
            .and_then(|i| text[i + 4..].lines().next())
            .and_then(|id| id.parse().ok())
            .unwrap();
        assert_eq!(
            data["resume_after"], last_id,
            "resume after the last event it got"
        );
    }
}

/// Whether the stream's tail holds the whole `behind` message (its data line ends).
fn ends_with_cut_off(tail: &[u8]) -> bool {
    let text = String::from_utf8_lossy(tail);
    text.rfind("event: behind\n")
        .is_some_and(|at| text[at..].contains("}\n\n"))
}
