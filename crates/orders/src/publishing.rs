//! Publishing to Kafka: the service starts the outbox relay when `KAFKA_BROKERS` is set, and runs
//! without publishing otherwise. See the `outbox` crate and ADR 0008.

use outbox::{KafkaConfig, Relay, RelayDb, RelayHandle};
use tokio::sync::watch;

use store::Store;

/// Starts the relay for `store` if Kafka is configured; it stops when `shutdown` turns true.
pub fn start(
    store: &Store,
    config: &KafkaConfig,
    instance_id: &str,
    shutdown: watch::Receiver<bool>,
) -> Option<RelayHandle> {
    if !config.enabled() {
        tracing::info!("no KAFKA_BROKERS: events are not published");
        return None;
    }
    let relay =
        Relay::new(store.clone(), relay_db(store), config.clone()).with_instance(instance_id);
    Some(relay.spawn(shutdown))
}

/// The relay's database handles for the store's backend.
pub fn relay_db(store: &Store) -> RelayDb {
    RelayDb::new(store.db())
}

/// The start-up banner's line about publishing.
pub fn banner(config: &KafkaConfig) -> String {
    match &config.brokers {
        Some(brokers) if config.enabled() => {
            format!("Kafka {brokers}, topic {}", config.topic)
        }
        _ => "none (set KAFKA_BROKERS to publish events to Kafka)".into(),
    }
}
