//! The conformance suite: one set of behaviours every [`EventStore`] backend must show.
//!
//! A backend crate runs it with [`conformance_tests!`](crate::conformance_tests), passing an async
//! expression that yields a fresh store handle (clones must share data). Tests use their own random
//! stream ids, so they may share one database.

// This module is a test suite compiled as a library: a panic is how it reports a failure.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

mod appends;
mod concurrency;
mod feed;
mod snapshots;

pub use appends::*;
pub use concurrency::*;
pub use feed::*;
pub use snapshots::*;

use serde_json::json;

use crate::NewEvent;

/// `n` events of type `Tested` whose payload records their place in the batch.
pub fn events(n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|i| NewEvent::new("Test", "Tested", 1, json!({ "n": i })))
        .collect()
}

/// Generates one `#[tokio::test]` per conformance behaviour.
///
/// ```ignore
/// event_store::conformance_tests!(my_backend::fresh_store());
/// ```
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@each $factory;
            appends_and_loads_one_event,
            appends_and_loads_many_events_in_order,
            zero_from_old_callers_creates_a_new_stream,
            no_stream_rejects_an_existing_stream,
            stream_exists_requires_the_stream,
            exact_version_must_match,
            any_appends_after_whatever_is_there,
            a_rejected_append_writes_nothing,
            reappending_the_same_events_is_a_no_op,
            a_partial_or_foreign_duplicate_is_rejected,
            invalid_appends_are_rejected,
            load_from_version_returns_the_tail,
            current_version_counts_events,
            large_payloads_round_trip,
            unicode_round_trips,
            idempotency_record_is_written_with_the_append,
            a_used_idempotency_key_writes_nothing,
            idempotency_records_expire,
            concurrent_appends_to_one_stream_have_one_winner,
            concurrent_creation_of_one_stream_has_one_winner,
            concurrent_any_appends_leave_no_gaps,
            snapshots_keep_the_latest,
            read_all_is_dense_and_in_stream_order,
            global_position_matches_the_feed,
            read_feed_agrees_with_read_all,
            position_of_agrees_with_the_feed,
            head_and_commit_times_follow_the_feed,
            wakeups_tick_until_an_append_is_readable,
            the_feed_is_not_held_back,
            load_stream_starts_after_a_matching_snapshot,
            load_stream_ignores_a_snapshot_beyond_the_stream,
            load_stream_returns_the_idempotency_record
        );
    };
    (@each $factory:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let store = $factory.await;
                $crate::conformance::$name(store).await;
            }
        )*
    };
}
