//! A relay killed mid-batch and restarted: no event missing; duplicates only within the contract
//! (same order, version and event id, at most what was in flight at the kill).

use std::time::Duration;

use outbox::relay::MAX_IN_FLIGHT_EVENTS;

use crate::harness::{assert_matches_store, consume, load, setup};

const BATCH: usize = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_killed_mid_batch_and_restarted_loses_nothing() {
    let setup = setup().await;
    load(&setup.store, 100, 20, 4).await;
    let head = setup.wait_head(2000).await;
    assert_eq!(head, 2000);

    let mut kills = Vec::new();
    for target in [300, 1100] {
        let relay = setup.relay(BATCH);
        assert!(
            relay
                .wait_for_checkpoint(target, Duration::from_secs(60))
                .await,
            "{:?}",
            relay.status()
        );
        relay.abort(); // a crash: nothing flushed, in-flight batches unacknowledged
        let at_kill = relay.status().checkpoint;
        relay.join().await;
        let stored = setup
            .db()
            .checkpoint("kafka-relay:orders.events")
            .await
            .unwrap();
        // The kill can land while the checkpoint write of the next acknowledged batch is already
        // on its way to the database: then that write commits although the relay never learned
        // it. Either way the stored checkpoint covers only acknowledged batches.
        assert!(
            stored >= at_kill && stored <= at_kill + BATCH as u64,
            "the stored checkpoint {stored} is the last acknowledged batch (the relay reported {at_kill})"
        );
        assert!(stored < head, "killed before the end");
        kills.push(stored);
    }
    let relay = setup.relay(BATCH);
    setup.wait_published(&relay, head).await;

    let stored = setup.stored().await;
    let (checker, _) = consume(
        &setup.broker.bootstrap(),
        head,
        Duration::from_secs(3),
        Duration::from_secs(90),
    )
    .await;
    assert_matches_store(&checker, &stored);
    eprintln!(
        "kills at checkpoints {kills:?}; {} duplicates skipped by the consumer",
        checker.duplicates()
    );
    // Each kill can only repeat what was sent after its checkpoint: what was in flight.
    let bound = kills
        .iter()
        .map(|at| (head - at).min((MAX_IN_FLIGHT_EVENTS + BATCH) as u64))
        .sum::<u64>();
    assert!(
        checker.duplicates() <= bound,
        "{} duplicates, at most {bound} expected (kills at {kills:?})",
        checker.duplicates()
    );
}
