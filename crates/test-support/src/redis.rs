//! The Redis server tests use: `TEST_REDIS_URL` (default `redis://127.0.0.1:6379`).

use std::net::TcpStream;
use std::time::Duration;

/// The server tests use when `TEST_REDIS_URL` is not set.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// The Redis URL for tests. Panics, with instructions, when nothing listens there.
pub fn url() -> String {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let address = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:6379")
        .to_owned();
    let reachable = address
        .parse()
        .ok()
        .is_some_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
    if !reachable {
        panic!(
            "\n\nRedis is not reachable at {url}.\n\
             These tests need a real Redis. Start one:\n\
             \x20 - this machine: redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save \"\" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log\n\
             \x20 - with Docker:  docker compose up -d redis\n\
             or point TEST_REDIS_URL at one.\n"
        );
    }
    url
}

/// A key prefix no other test run uses.
pub fn unique_prefix() -> String {
    format!("orders-test:{}:", uuid::Uuid::now_v7().simple())
}
