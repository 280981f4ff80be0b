//! A damaged snapshot never blocks an order: a command replays the stream instead (on both real
//! backends, with the state cache off so that every command loads).
//!
//! Snapshots are a shortcut, not a source of truth; `orders verify` reports one that disagrees
//! with its stream (`operations.rs`). These tests cover the damage a load can see for itself: a
//! state that does not decode, a stored text that is not JSON, a version beyond the stream.

use common::DatabaseConfig;
use domain::{
    CreateOrder, Currency, OrderAggregate, OrderCommand, OrderItem, OrderStatus, ShipOrder,
};
use event_store::EventStore;
use orders::commands::{CommandContext, CommandHandler, HandlerConfig};
use store::Store;
use uuid::Uuid;

use crate::harness::Backend;
use crate::on_both_backends;

struct Fixture {
    store: Store,
    handler: CommandHandler<Store>,
    _data_dir: tempfile::TempDir,
}

async fn fixture(backend: Backend) -> Fixture {
    let data_dir = tempfile::tempdir().unwrap();
    let database_url = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(test_support::postgres::fresh_database_url().await),
    };
    let config = DatabaseConfig {
        database_url,
        data_dir: data_dir.path().to_path_buf(),
        max_connections: 4,
        group_commit: true,
    };
    let store = Store::open(&config).await.unwrap();
    let handler = CommandHandler::new(
        store.clone(),
        HandlerConfig {
            snapshot_every: 2,
            state_cache: 0,
            ..HandlerConfig::default()
        },
    );
    Fixture {
        store,
        handler,
        _data_dir: data_dir,
    }
}

impl Fixture {
    async fn run(&self, id: Uuid, command: OrderCommand) -> u64 {
        let context = CommandContext {
            new_stream: matches!(command, OrderCommand::Create(_)),
            ..CommandContext::new()
        };
        self.handler
            .execute::<OrderAggregate>(
                id,
                command,
                &context,
                |_| Ok(()),
                |_, _| serde_json::json!({}),
            )
            .await
            .unwrap()
            .version
    }

    /// A confirmed order whose snapshot (taken at version 2) is then damaged by `damage`, an
    /// SQL statement with the order's id as its only parameter.
    async fn order_with_damaged_snapshot(&self, damage: &'static str) -> Uuid {
        let id = Uuid::now_v7();
        let eur = Currency::new("EUR").unwrap();
        let create = OrderCommand::Create(CreateOrder {
            order_id: id,
            customer_id: Uuid::now_v7(),
            currency: eur.clone(),
            items: vec![OrderItem::new(Uuid::now_v7(), "SKU-1", 2, 250, eur).unwrap()],
            shipping_address: Some(domain::testing::fixtures::address()),
            contact: None,
        });
        assert_eq!(self.run(id, create).await, 1);
        assert_eq!(
            self.run(id, OrderCommand::Confirm(Default::default()))
                .await,
            2
        );
        let snapshot = self.store.load_snapshot(id).await.unwrap();
        assert_eq!(
            snapshot.map(|s| s.version),
            Some(2),
            "the snapshot is taken"
        );
        let damaged = match &self.store {
            Store::Postgres(pg) => sqlx::query(damage)
                .bind(id)
                .execute(pg.pool())
                .await
                .map(|done| done.rows_affected()),
            Store::Sqlite(sqlite) => sqlx::query(damage)
                .bind(id.hyphenated().to_string())
                .execute(sqlite.writer())
                .await
                .map(|done| done.rows_affected()),
        };
        assert_eq!(damaged.unwrap(), 1, "{damage}");
        id
    }

    /// The order loads as confirmed at version 2 and can still be shipped.
    async fn assert_replayed_and_usable(&self, id: Uuid) {
        let loaded = self.handler.load::<OrderAggregate>(id).await.unwrap();
        assert_eq!(loaded.version, 2);
        assert_eq!(loaded.state.status(), OrderStatus::Confirmed);
        let ship = OrderCommand::Ship(ShipOrder {
            carrier: Some("DHL".into()),
            tracking_number: Some("TRACK-1".into()),
        });
        assert_eq!(self.run(id, ship).await, 3);
        let loaded = self.handler.load::<OrderAggregate>(id).await.unwrap();
        assert_eq!(loaded.state.status(), OrderStatus::Shipped);
    }
}

async fn a_snapshot_whose_state_does_not_decode_is_replayed_past(backend: Backend) {
    let fixture = fixture(backend).await;
    let sql = match backend {
        Backend::Postgres => {
            "UPDATE snapshots SET state = '{\"garbage\": true}'::jsonb WHERE aggregate_id = $1"
        }
        Backend::Sqlite => {
            "UPDATE snapshots SET state = '{\"garbage\": true}' WHERE aggregate_id = ?1"
        }
    };
    let id = fixture.order_with_damaged_snapshot(sql).await;
    fixture.assert_replayed_and_usable(id).await;
}

async fn a_snapshot_beyond_the_stream_is_ignored(backend: Backend) {
    let fixture = fixture(backend).await;
    let sql = match backend {
        Backend::Postgres => "UPDATE snapshots SET version = 50 WHERE aggregate_id = $1",
        Backend::Sqlite => "UPDATE snapshots SET version = 50 WHERE aggregate_id = ?1",
    };
    let id = fixture.order_with_damaged_snapshot(sql).await;
    // Before: the load answered version 50 with no events after it, and every command on the
    // order then lost its append's version check (409 for ever).
    fixture.assert_replayed_and_usable(id).await;
}

on_both_backends!(
    a_snapshot_whose_state_does_not_decode_is_replayed_past,
    a_snapshot_beyond_the_stream_is_ignored,
);

/// SQLite keeps the state as TEXT, so a damaged file can hold text that is not JSON at all
/// (PostgreSQL's JSONB column cannot). Before, the load failed with "corrupt" on every command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_snapshot_that_is_not_json_is_replayed_past() {
    let fixture = fixture(Backend::Sqlite).await;
    let id = fixture
        .order_with_damaged_snapshot(
            "UPDATE snapshots SET state = '{\"status\": ' WHERE aggregate_id = ?1",
        )
        .await;
    fixture.assert_replayed_and_usable(id).await;
}
