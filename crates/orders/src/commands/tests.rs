//! Command handling against the in-memory store (logic only; the HTTP tests use real databases).

use domain::testing::fixtures;
use domain::{Aggregate, CancelOrder, OrderAggregate, OrderCommand, OrderError, OrderStatus};
use event_store::{AppendRequest, AppendResult, EventStore, Feed, InMemoryEventStore, Snapshot};
use proptest::prelude::*;
use serde_json::json;
use uuid::Uuid;

use super::*;

fn handler(snapshot_every: u64) -> CommandHandler<InMemoryEventStore> {
    CommandHandler::new(
        InMemoryEventStore::new(),
        HandlerConfig {
            snapshot_every,
            max_attempts: 3,
            state_cache: 0,
        },
    )
}

fn allow(_: &OrderAggregate) -> Result<(), AccessDenied> {
    Ok(())
}

fn render(_: &OrderAggregate, version: u64) -> serde_json::Value {
    json!({ "version": version })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn create(handler: &CommandHandler<impl EventStore>) -> Uuid {
    let command = fixtures::create_order();
    let id = command.order_id;
    handler
        .execute::<OrderAggregate>(id, command.into(), &CommandContext::new(), allow, render)
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn a_created_order_can_be_confirmed_and_reports_version_and_position() {
    let handler = handler(0);
    let id = create(&handler).await;
    let context = CommandContext {
        user_id: Some("staff-1".into()),
        ..CommandContext::new()
    };
    let outcome = handler
        .execute::<OrderAggregate>(
            id,
            OrderCommand::Confirm(Default::default()),
            &context,
            allow,
            render,
        )
        .await
        .unwrap();
    assert_eq!((outcome.version, outcome.position), (2, Some(2)));
    assert_eq!(outcome.state.status(), OrderStatus::Confirmed);
    let events = handler.store().load_events(id).await.unwrap();
    assert_eq!(events[1].metadata["user_id"], "staff-1");
    assert_eq!(
        events[1].metadata["correlation_id"],
        context.correlation_id.to_string()
    );
}

#[tokio::test]
async fn a_rule_violation_writes_nothing() {
    let handler = handler(0);
    let id = create(&handler).await;
    let ship = OrderCommand::Ship(Default::default());
    let err = handler
        .execute::<OrderAggregate>(id, ship, &CommandContext::new(), allow, render)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CommandError::Rejected(OrderError::InvalidTransition { .. })
        ),
        "{err:?}"
    );
    assert_eq!(handler.store().get_current_version(id).await.unwrap(), 1);
}

#[tokio::test]
async fn a_pinned_version_that_is_stale_fails_the_precondition() {
    let handler = handler(0);
    let id = create(&handler).await;
    let context = CommandContext {
        expected_version: Some(0),
        ..CommandContext::new()
    };
    let confirm = OrderCommand::Confirm(Default::default());
    let err = handler
        .execute::<OrderAggregate>(id, confirm, &context, allow, render)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CommandError::PreconditionFailed {
                expected: 0,
                actual: 1
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_guard_can_hide_an_order() {
    let handler = handler(0);
    let id = create(&handler).await;
    let cancel = OrderCommand::Cancel(CancelOrder {
        reason: "changed my mind".into(),
    });
    let err = handler
        .execute::<OrderAggregate>(
            id,
            cancel,
            &CommandContext::new(),
            |_| Err(AccessDenied::NotFound),
            render,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CommandError::Denied(AccessDenied::NotFound)));
    assert_eq!(handler.store().get_current_version(id).await.unwrap(), 1);
}

/// A store where another writer sneaks in a confirmation just before our first append.
#[derive(Clone)]
struct RacingStore {
    inner: InMemoryEventStore,
    raced: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Feed for RacingStore {
    async fn read_all(
        &self,
        after: u64,
        limit: usize,
    ) -> event_store::Result<Vec<event_store::RecordedEvent>> {
        self.inner.read_all(after, limit).await
    }
    async fn head(&self) -> event_store::Result<u64> {
        self.inner.head().await
    }
    async fn committed_at(
        &self,
        position: u64,
    ) -> event_store::Result<Option<chrono::DateTime<chrono::Utc>>> {
        self.inner.committed_at(position).await
    }
    async fn backlog(&self) -> event_store::Result<event_store::FeedBacklog> {
        self.inner.backlog().await
    }
    fn wakeups(&self) -> event_store::FeedWakeups {
        self.inner.wakeups()
    }
}

impl EventStore for RacingStore {
    async fn append(&self, request: AppendRequest) -> event_store::Result<AppendResult> {
        if request.expected == event_store::ExpectedVersion::Exact(1)
            && !self.raced.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            let confirm = domain::OrderEvent::Confirmed(Default::default());
            let event = codec::to_new_event("Order", &confirm, &CommandContext::new());
            self.inner
                .append_events(request.aggregate_id, 1_u64, vec![event])
                .await?;
        }
        self.inner.append(request).await
    }
    async fn load_events_from_version(
        &self,
        id: Uuid,
        from: u64,
    ) -> event_store::Result<Vec<event_store::RecordedEvent>> {
        self.inner.load_events_from_version(id, from).await
    }
    async fn get_current_version(&self, id: Uuid) -> event_store::Result<u64> {
        self.inner.get_current_version(id).await
    }
    async fn save_snapshot(&self, snapshot: Snapshot) -> event_store::Result<()> {
        self.inner.save_snapshot(snapshot).await
    }
    async fn load_snapshot(&self, id: Uuid) -> event_store::Result<Option<Snapshot>> {
        self.inner.load_snapshot(id).await
    }
    async fn global_position(&self, id: Uuid, version: u64) -> event_store::Result<u64> {
        self.inner.global_position(id, version).await
    }
    async fn position_of(&self, id: Uuid, version: u64) -> event_store::Result<Option<u64>> {
        self.inner.position_of(id, version).await
    }
    async fn find_idempotency_record(
        &self,
        scope: &str,
        key: &str,
    ) -> event_store::Result<Option<event_store::IdempotencyRecord>> {
        self.inner.find_idempotency_record(scope, key).await
    }
    async fn purge_idempotency_records(
        &self,
        older_than: std::time::Duration,
    ) -> event_store::Result<u64> {
        self.inner.purge_idempotency_records(older_than).await
    }
    async fn ping(&self) -> event_store::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_lost_race_is_decided_again_against_the_new_state() {
    let store = RacingStore {
        inner: InMemoryEventStore::new(),
        raced: Default::default(),
    };
    let handler = CommandHandler::new(store, HandlerConfig::default());
    let id = create(&handler).await;
    // We decide "cancel" against a created order; meanwhile it gets confirmed. Cancelling a
    // confirmed order is still allowed, so the retry succeeds on top of the confirmation.
    let cancel = OrderCommand::Cancel(CancelOrder {
        reason: "too slow".into(),
    });
    let outcome = handler
        .execute::<OrderAggregate>(id, cancel, &CommandContext::new(), allow, render)
        .await
        .unwrap();
    assert_eq!(outcome.version, 3);
    let types: Vec<String> = handler
        .store()
        .load_events(id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(types, ["OrderCreated", "OrderConfirmed", "OrderCancelled"]);
}

#[tokio::test]
async fn a_pinned_version_is_not_retried_after_a_lost_race() {
    let store = RacingStore {
        inner: InMemoryEventStore::new(),
        raced: Default::default(),
    };
    let handler = CommandHandler::new(store, HandlerConfig::default());
    let id = create(&handler).await;
    let context = CommandContext {
        expected_version: Some(1),
        ..CommandContext::new()
    };
    let cancel = OrderCommand::Cancel(CancelOrder {
        reason: "too slow".into(),
    });
    let err = handler
        .execute::<OrderAggregate>(id, cancel, &context, allow, render)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CommandError::PreconditionFailed {
                expected: 1,
                actual: 2
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unusable_snapshot_is_ignored() {
    let handler = handler(1);
    let id = create(&handler).await;
    let truth = handler.load::<OrderAggregate>(id).await.unwrap();
    for (schema_version, state) in [
        (OrderAggregate::SNAPSHOT_VERSION, json!({"garbage": true})),
        (999, json!({})),
    ] {
        let snapshot = Snapshot {
            aggregate_id: id,
            aggregate_type: "Order".into(),
            version: 1,
            schema_version,
            state,
        };
        // Replace whatever is there (same version: the store keeps the newest save).
        handler.store().save_snapshot(snapshot).await.unwrap();
        // State and version; the position is known only when the load read the last event.
        let loaded = handler.load::<OrderAggregate>(id).await.unwrap();
        assert_eq!(
            (loaded.state, loaded.version),
            (truth.state.clone(), truth.version)
        );
    }
}

fn command_strategy() -> impl Strategy<Value = OrderCommand> {
    prop_oneof![
        Just(OrderCommand::Confirm(Default::default())),
        Just(OrderCommand::Cancel(CancelOrder {
            reason: "reason".into()
        })),
        Just(OrderCommand::Ship(Default::default())),
        Just(OrderCommand::Deliver(Default::default())),
    ]
}

proptest! {
    /// Snapshots never change what a load returns, whatever the snapshot interval.
    #[test]
    fn loads_with_and_without_snapshots_agree(commands in prop::collection::vec(command_strategy(), 0..12), every in 1_u64..4) {
        runtime().block_on(async {
            let with = handler(every);
            let id = create(&with).await;
            for command in commands {
                // Rejections are fine: the point is what gets stored.
                let _ = with.execute::<OrderAggregate>(id, command, &CommandContext::new(), allow, render).await;
            }
            let without = CommandHandler::new(with.store().clone(), HandlerConfig { snapshot_every: 0, max_attempts: 1, state_cache: 0 });
            let a = with.load::<OrderAggregate>(id).await.unwrap();
            let b = without.load::<OrderAggregate>(id).await.unwrap();
            prop_assert_eq!((a.state, a.version), (b.state, b.version));
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn a_new_stream_hint_skips_the_load_but_never_overwrites() {
    let handler = handler(0);
    let id = create(&handler).await;
    // Someone claims the id is new although the stream exists: the append's "no stream" check
    // catches it, the retry loads the real state, and the aggregate refuses a second creation.
    let mut command = fixtures::create_order();
    command.order_id = id;
    let context = CommandContext {
        new_stream: true,
        ..CommandContext::new()
    };
    let err = handler
        .execute::<OrderAggregate>(id, command.into(), &context, allow, render)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CommandError::Rejected(OrderError::AlreadyExists)),
        "{err:?}"
    );
    assert_eq!(handler.store().get_current_version(id).await.unwrap(), 1);
}

fn caching(store: InMemoryEventStore) -> CommandHandler<InMemoryEventStore> {
    CommandHandler::new(
        store,
        HandlerConfig {
            state_cache: 100,
            ..HandlerConfig::default()
        },
    )
}

fn uncached(store: InMemoryEventStore) -> CommandHandler<InMemoryEventStore> {
    CommandHandler::new(
        store,
        HandlerConfig {
            state_cache: 0,
            ..HandlerConfig::default()
        },
    )
}

fn confirm() -> OrderCommand {
    OrderCommand::Confirm(Default::default())
}

/// Another writer (another instance) moved the order on behind the cache's back: the cached state
/// is stale, the append is refused, and the command is decided again on the real state.
#[tokio::test]
async fn a_stale_cached_state_is_caught_by_the_append_and_decided_again() {
    let store = InMemoryEventStore::new();
    let cached = caching(store.clone());
    let other = uncached(store.clone());
    let id = create(&cached).await; // cached at version 1
    other
        .execute::<OrderAggregate>(id, confirm(), &CommandContext::new(), allow, render)
        .await
        .unwrap(); // the store is at version 2 now
    let cancel = OrderCommand::Cancel(CancelOrder {
        reason: "changed my mind".into(),
    });
    let outcome = cached
        .execute::<OrderAggregate>(id, cancel, &CommandContext::new(), allow, render)
        .await
        .unwrap();
    assert_eq!(
        outcome.version, 3,
        "decided on the real state, after the confirmation"
    );
    let events = store.load_events(id).await.unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["OrderCreated", "OrderConfirmed", "OrderCancelled"]);
}

/// A rule rejection decided on a cached state is never the answer: the order is loaded and the
/// command decided again. (Shipping needs a confirmed order; only the store knows it is one.)
#[tokio::test]
async fn a_rejection_from_a_cached_state_is_checked_against_the_store() {
    let store = InMemoryEventStore::new();
    let cached = caching(store.clone());
    let other = uncached(store.clone());
    let id = create(&cached).await;
    other
        .execute::<OrderAggregate>(id, confirm(), &CommandContext::new(), allow, render)
        .await
        .unwrap();
    let ship = OrderCommand::Ship(Default::default());
    let outcome = cached
        .execute::<OrderAggregate>(id, ship, &CommandContext::new(), allow, render)
        .await
        .expect(
            "the cached 'created' state would refuse to ship; the store's 'confirmed' allows it",
        );
    assert_eq!(
        (outcome.version, outcome.state.status()),
        (3, OrderStatus::Shipped)
    );
    // And a real rejection stays a rejection.
    let error = cached
        .execute::<OrderAggregate>(id, confirm(), &CommandContext::new(), allow, render)
        .await
        .unwrap_err();
    assert!(matches!(error, CommandError::Rejected(_)), "{error:?}");
}
