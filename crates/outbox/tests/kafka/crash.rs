//! A relay killed mid-batch and restarted: no event missing; duplicates only within the contract
//! (same order, version and event id, and only of what was sent after a stored checkpoint).

use std::collections::HashMap;
use std::time::Duration;

use event_store::EventStore;

use crate::harness::{Setup, assert_matches_store, consume, load, setup, setup_sqlite};

const BATCH: usize = 50;
const WINDOW: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_killed_mid_batch_and_restarted_loses_nothing() {
    killed_mid_batch_and_restarted(setup().await).await;
}

/// The same on SQLite, the default backend, whose feed is numbered at commit (no sequencer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_relay_killed_mid_batch_and_restarted_loses_nothing() {
    killed_mid_batch_and_restarted(setup_sqlite().await).await;
}

async fn killed_mid_batch_and_restarted<S: EventStore + Clone + Send + Sync + 'static>(
    setup: Setup<S>,
) {
    load(&setup.store, 100, 20, 4).await;
    let head = setup.wait_head(2000).await;
    assert_eq!(head, 2000);

    let mut kills = Vec::new();
    for target in [300, 1100] {
        // A window of a few batches: the checkpoint advances in steps, and the kill finds some
        // of them in flight.
        let relay = setup.relay_with_window(BATCH, WINDOW);
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
        // The kill can land while the checkpoint write of the next acknowledged batches (one
        // write covers every batch acknowledged by then) is already on its way to the database:
        // then that write commits although the relay never learned it. Either way the stored
        // checkpoint is the end of an acknowledged batch, never a position inside one.
        assert!(
            stored >= at_kill && stored % BATCH as u64 == 0,
            "the stored checkpoint {stored} ends an acknowledged batch (the relay reported {at_kill})"
        );
        assert!(stored < head, "killed before the end");
        kills.push(stored);
    }
    let relay = setup.relay(BATCH);
    setup.wait_published(&relay, head).await;

    let stored = setup.stored().await;
    let (checker, received) = consume(
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
    // Which relay can have sent an event: the first sends from position 0, the one started after
    // each kill from that kill's stored checkpoint. Up to its stored checkpoint, a killed relay's
    // events were acknowledged and are never sent again; after it, what was in flight may have
    // arrived (this bound does not count on the window). So an event at
    // position p arrives at most 1 + (kills whose checkpoint is below p) times, and an event at
    // or below the first checkpoint exactly once.
    let mut copies: HashMap<u64, u64> = HashMap::new();
    for message in &received {
        let event = message.event.as_ref().unwrap();
        *copies.entry(event.position).or_default() += 1;
    }
    assert_eq!(copies.len() as u64, head, "every position arrived");
    let mut over = Vec::new();
    for (&position, &count) in &copies {
        let senders = 1 + kills.iter().filter(|&&at| at < position).count() as u64;
        if count > senders {
            over.push((position, count, senders));
        }
    }
    over.sort_unstable();
    assert!(
        over.is_empty(),
        "(position, copies, relays that could have sent it) beyond the bound, kills at {kills:?}: {:?}",
        &over[..over.len().min(20)]
    );
    let total: u64 = copies.values().sum();
    assert_eq!(total - head, checker.duplicates(), "duplicates counted");
}
