//! Several relays on one database (several service instances): one publishes at a time, and
//! another takes over when it dies.

use std::time::Duration;

use crate::harness::{assert_matches_store, consume, load, setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_relay_publishes_at_a_time_and_another_takes_over() {
    let setup = setup().await;
    let first = setup.relay(100);
    assert!(first.wait_until_leading(Duration::from_secs(30)).await);
    let second = setup.relay(100);
    // The whole time the first relay lives, the second must never lead (sampled every 5 ms, not
    // once at the end), and the first must not lose the lease.
    let both_alive = async {
        load(&setup.store, 10, 5, 2).await;
        setup.wait_published(&first, 50).await;
        // Give the standby relay a few lease attempts (it retries every 2 s) while idle.
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    let watch = async {
        loop {
            assert!(!second.status().leading, "two relays publishing at once");
            assert!(first.status().leading, "the first relay lost the lease");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        () = both_alive => {}
        () = watch => unreachable!(),
    }

    first.abort(); // the instance dies: its session, and with it the lock, goes away
    first.join().await;
    assert!(
        second.wait_until_leading(Duration::from_secs(30)).await,
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
    // The first relay's checkpoint covered everything it sent before it died, so the second one
    // resumes after it: any duplicate means both published, or the takeover ignored the
    // checkpoint.
    assert_eq!(checker.duplicates(), 0, "duplicates");
}
