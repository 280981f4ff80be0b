//! Several relays on one database (several service instances): one publishes at a time, and
//! another takes over when it dies.

use std::time::Duration;

use crate::harness::{assert_matches_store, consume, load, setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_relay_publishes_at_a_time_and_another_takes_over() {
    let setup = setup().await;
    let first = setup.relay(100);
    assert!(first.wait_until_leading(Duration::from_secs(10)).await);
    let second = setup.relay(100);
    load(&setup.store, 10, 5, 2).await;
    setup.wait_published(&first, 50).await;
    assert!(!second.status().leading, "two relays publishing at once");

    first.abort(); // the instance dies: its session, and with it the lock, goes away
    first.join().await;
    assert!(
        second.wait_until_leading(Duration::from_secs(10)).await,
        "no takeover"
    );
    load(&setup.store, 10, 5, 2).await;
    setup.wait_published(&second, 100).await;

    let stored = setup.stored().await;
    let (checker, _) = consume(
        &setup.broker.bootstrap(),
        100,
        Duration::from_secs(2),
        Duration::from_secs(60),
    )
    .await;
    assert_matches_store(&checker, &stored);
}
