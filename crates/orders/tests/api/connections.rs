//! Connection-level limits: a client that dribbles its request head or its body is cut off, and
//! the number of open connections is bounded.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{Backend, TestApp, spawn_app_with};

crate::on_both_backends!(
    a_client_that_never_finishes_its_headers_is_disconnected,
    connections_beyond_the_limit_wait_for_a_free_one,
    a_body_that_never_ends_is_cut_off_by_the_request_timeout,
);

const HEADER_READ_TIMEOUT: Duration = Duration::from_millis(800);

async fn app(backend: Backend, max_connections: u32) -> TestApp {
    spawn_app_with(backend, |config| {
        config.server.header_read_timeout = HEADER_READ_TIMEOUT;
        config.server.max_http_connections = max_connections;
    })
    .await
}

/// Opens a connection and sends half a request head.
async fn dribbler(app: &TestApp) -> TcpStream {
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: orders\r\nX-Slow: ")
        .await
        .unwrap();
    stream
}

/// Reads until the server closes the connection; the bytes it sent.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received).await;
    received
}

async fn a_client_that_never_finishes_its_headers_is_disconnected(backend: Backend) {
    let app = app(backend, 64).await;
    let mut stream = dribbler(&app).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(20), until_closed(&mut stream))
        .await
        .expect("the server must close a connection whose headers never end");
    assert!(
        started.elapsed() >= HEADER_READ_TIMEOUT / 2,
        "closed after {:?}, before the timeout",
        started.elapsed()
    );
}

async fn connections_beyond_the_limit_wait_for_a_free_one(backend: Backend) {
    const LIMIT: u32 = 3;
    let app = app(backend, LIMIT).await;
    let mut held = Vec::new();
    for _ in 0..LIMIT {
        held.push(dribbler(&app).await);
    }
    // A well-behaved client beyond the limit gets no answer while the dribblers hold every slot...
    let mut extra = TcpStream::connect(app.addr).await.unwrap();
    extra
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 1];
    let early = tokio::time::timeout(HEADER_READ_TIMEOUT / 4, extra.peek(&mut first)).await;
    assert!(
        early.is_err(),
        "answered although every connection slot was taken"
    );
    // ...and is served once the header timeout has closed them.
    let answer = tokio::time::timeout(Duration::from_secs(20), until_closed(&mut extra))
        .await
        .expect("served once a slot was free");
    assert!(
        String::from_utf8_lossy(&answer).contains("200 OK"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    drop(held);
}

/// A client that announces a body and sends it a byte at a time holds its request no longer than
/// `ORDERS_REQUEST_TIMEOUT`: it gets a 408 problem and nothing is written.
async fn a_body_that_never_ends_is_cut_off_by_the_request_timeout(backend: Backend) {
    let app = spawn_app_with(backend, |config| {
        config.server.request_timeout = Duration::from_millis(800);
    })
    .await;
    let token = app.staff();
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /orders HTTP/1.1\r\nHost: orders\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let dribble = async {
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut byte = [0u8; 1];
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::ZERO, stream.peek(&mut byte)).await {
                return; // the server answered or closed
            }
            if stream.write_all(b" ").await.is_err() {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), dribble)
        .await
        .expect("the server must cut off a body that never ends");
    let answer = tokio::time::timeout(Duration::from_secs(20), until_closed(&mut stream))
        .await
        .unwrap_or_default();
    // The server closes a connection whose body it did not read, which may reset it before the
    // answer is read here; whatever arrived must be the 408 problem.
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty()
            || (answer.starts_with("HTTP/1.1 408") && answer.contains("application/problem+json")),
        "{answer}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "cut off after {:?}, before the timeout",
        started.elapsed()
    );
    let page = app.query("/orders", &app.staff()).await;
    assert_eq!(page["orders"].as_array().unwrap().len(), 0, "{page}");
}
