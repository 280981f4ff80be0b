//! Round trips per command on PostgreSQL, counted on the wire by a proxy (`Sync` and `Query`
//! messages, so pool pings count too): a create is one, a confirm two (load, append), with or
//! without an `Idempotency-Key`, with group commit on or off; one when the state cache holds the
//! order (ADR 0011).

use std::net::SocketAddr;

use domain::{CreateOrder, Currency, OrderAggregate, OrderCommand, OrderItem};
use event_store_postgres::{PostgresEventStore, PostgresOptions};
use orders::commands::{CommandContext, CommandHandler, HandlerConfig, IdempotencyKey};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use test_support::pgwire::CountingProxy;
use uuid::Uuid;

async fn proxied_store(group_commit: bool) -> (CountingProxy, PostgresEventStore) {
    let url = test_support::postgres::fresh_database_url().await;
    let direct = PostgresEventStore::connect(&url, PostgresOptions::default())
        .await
        .unwrap();
    direct.migrate().await.unwrap();
    let options: PgConnectOptions = url.parse().unwrap();
    let target: SocketAddr = tokio::net::lookup_host((options.get_host(), options.get_port()))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = CountingProxy::start(target).await;
    // The proxy reads the protocol, so no TLS; no sequencer, so only commands use the proxy.
    let options = options
        .host("127.0.0.1")
        .port(proxy.addr.port())
        .ssl_mode(PgSslMode::Disable);
    let defaults = PostgresOptions::default();
    let store = PostgresEventStore::connect_with(
        options,
        PostgresOptions {
            sequencer: false,
            group_commit: defaults.group_commit.filter(|_| group_commit),
            ..defaults
        },
    )
    .await
    .unwrap();
    (proxy, store)
}

fn create(id: Uuid) -> OrderCommand {
    let eur = Currency::new("EUR").unwrap();
    OrderCommand::Create(CreateOrder {
        order_id: id,
        customer_id: Uuid::now_v7(),
        currency: eur.clone(),
        items: vec![OrderItem::new(Uuid::now_v7(), "SKU-1", 1, 100, eur).unwrap()],
        shipping_address: Some(domain::testing::fixtures::address()),
        contact: None,
    })
}

fn context(new_stream: bool, key: Option<&str>) -> CommandContext {
    CommandContext {
        new_stream,
        idempotency: key.map(|key| IdempotencyKey {
            scope: "staff".into(),
            key: key.into(),
            request_hash: "hash".into(),
        }),
        ..CommandContext::new()
    }
}

/// Round trips of create + confirm of one new order: (create, confirm).
async fn count(
    proxy: &CountingProxy,
    handler: &CommandHandler<PostgresEventStore>,
    key: Option<&str>,
) -> (u64, u64) {
    let id = Uuid::now_v7();
    let render = |_: &OrderAggregate, _: u64| serde_json::json!({});
    let before = proxy.round_trips();
    let create_key = key.map(|k| format!("{k}-create"));
    handler
        .execute::<OrderAggregate>(
            id,
            create(id),
            &context(true, create_key.as_deref()),
            |_| Ok(()),
            render,
        )
        .await
        .unwrap();
    let created = proxy.round_trips();
    let confirm_key = key.map(|k| format!("{k}-confirm"));
    handler
        .execute::<OrderAggregate>(
            id,
            OrderCommand::Confirm(Default::default()),
            &context(false, confirm_key.as_deref()),
            |_| Ok(()),
            render,
        )
        .await
        .unwrap();
    let confirmed = proxy.round_trips();
    (created - before, confirmed - created)
}

async fn commands_cost_one_and_two_round_trips(group_commit: bool) {
    let (proxy, store) = proxied_store(group_commit).await;
    let config = HandlerConfig {
        state_cache: 0,
        ..HandlerConfig::default()
    };
    let handler = CommandHandler::new(store.clone(), config);
    // Warm-up: opens the connections and prepares each statement once (a round trip of its own).
    for i in 0..3 {
        count(&proxy, &handler, None).await;
        count(&proxy, &handler, Some(&format!("warm-{i}"))).await;
    }
    for i in 0..5 {
        assert_eq!(count(&proxy, &handler, None).await, (1, 2), "without a key");
        let key = format!("key-{i}");
        assert_eq!(
            count(&proxy, &handler, Some(&key)).await,
            (1, 2),
            "with a key"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_group_commit_a_create_is_one_round_trip_and_a_confirm_two() {
    commands_cost_one_and_two_round_trips(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_group_commit_a_create_is_one_round_trip_and_a_confirm_two() {
    commands_cost_one_and_two_round_trips(false).await;
}
