//! A store, a broker, a relay, and readers that check what arrived.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use event_store::{EventStore, NewEvent, RecordedEvent};
use event_store_postgres::{PostgresEventStore, PostgresOptions};
use event_store_sqlite::{SqliteEventStore, SqliteOptions};
use outbox::check::Checker;
use outbox::consume::{ConsumerOptions, EventConsumer, Received};
use outbox::{KafkaConfig, Relay, RelayDb, RelayHandle};
use serde_json::json;
use test_support::tansu::Tansu;
use tokio::sync::watch;
use uuid::Uuid;

pub const TOPIC: &str = "orders.events";

pub struct Setup<S> {
    pub store: S,
    pub broker: Tansu,
    pub shutdown: watch::Sender<bool>,
    db: RelayDb,
    /// Dropped last (fields drop in order): the database goes when the test ends.
    _database: Database,
}

/// What holds a test's database until the test ends.
enum Database {
    Postgres {
        _database: test_support::postgres::TestDatabase,
    },
    Sqlite {
        _dir: tempfile::TempDir,
    },
}

fn broker() -> Tansu {
    let broker = Tansu::start();
    broker.create_topic(TOPIC);
    broker
}

/// A fresh PostgreSQL database, a broker with the topic, no relay yet.
pub async fn setup() -> Setup<PostgresEventStore> {
    let database = test_support::postgres::fresh_database().await;
    let options = PostgresOptions {
        max_connections: 20,
        ..Default::default()
    };
    let store = PostgresEventStore::connect(database.url(), options)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    Setup {
        db: RelayDb::new(store::Db::Postgres(store.pool().clone())),
        store,
        broker: broker(),
        shutdown: watch::channel(false).0,
        _database: Database::Postgres {
            _database: database,
        },
    }
}

/// A fresh SQLite file (the service's default backend), a broker with the topic, no relay yet.
pub async fn setup_sqlite() -> Setup<SqliteEventStore> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteEventStore::open(dir.path().join("orders.db"), SqliteOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    Setup {
        db: RelayDb::new(store::Db::Sqlite {
            writer: store.writer().clone(),
            reader: store.reader().clone(),
        }),
        store,
        broker: broker(),
        shutdown: watch::channel(false).0,
        _database: Database::Sqlite { _dir: dir },
    }
}

impl<S: EventStore + Clone + Send + Sync + 'static> Setup<S> {
    pub fn db(&self) -> RelayDb {
        self.db.clone()
    }

    pub fn config(&self) -> KafkaConfig {
        KafkaConfig::new(self.broker.bootstrap()).with_topic(TOPIC)
    }

    /// Starts a relay with `batch_size`.
    pub fn relay(&self, batch_size: usize) -> RelayHandle {
        self.relay_with_window(batch_size, outbox::config::MAX_IN_FLIGHT_EVENTS)
    }

    /// A relay that keeps at most `window` events (plus one batch) unacknowledged.
    pub fn relay_with_window(&self, batch_size: usize, window: usize) -> RelayHandle {
        let mut config = self.config();
        config.batch_size = batch_size;
        config.max_in_flight = window;
        Relay::new(self.store.clone(), self.db(), config).spawn(self.shutdown.subscribe())
    }

    pub async fn head(&self) -> u64 {
        self.store.head().await.unwrap()
    }

    /// Waits until the feed has numbered `events` events (on PostgreSQL, appends return at
    /// commit and the sequencer numbers them a moment later).
    pub async fn wait_head(&self, events: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let head = self.head().await;
            if head >= events || Instant::now() > deadline {
                assert_eq!(head, events, "feed head");
                return head;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the feed has `events` events and the relay's checkpoint covers them all.
    pub async fn wait_published(&self, relay: &RelayHandle, events: u64) {
        let head = self.wait_head(events).await;
        assert!(
            relay
                .wait_for_checkpoint(head, Duration::from_secs(60))
                .await,
            "relay checkpoint {:?} did not reach the feed head {head}; broker log:\n{}",
            relay.status(),
            self.broker.log()
        );
    }

    /// Every stored event by order, in version order.
    pub async fn stored(&self) -> HashMap<Uuid, Vec<RecordedEvent>> {
        let mut out: HashMap<Uuid, Vec<RecordedEvent>> = HashMap::new();
        let mut after = 0;
        loop {
            let page = self.store.read_all(after, 1000).await.unwrap();
            let Some(last) = page.last() else { break };
            after = last.position.unwrap();
            for event in page {
                out.entry(event.aggregate_id).or_default().push(event);
            }
        }
        for events in out.values_mut() {
            events.sort_by_key(|e| e.version);
        }
        out
    }
}

/// An event with the metadata the service writes.
pub fn event(kind: &str) -> NewEvent {
    NewEvent::new("Order", kind, 1, json!({ "note": kind })).with_metadata(json!({
        "correlation_id": Uuid::now_v7(),
        "causation_id": Uuid::now_v7(),
        "timestamp": chrono::Utc::now(),
    }))
}

/// Appends `per_order` single-event appends to each of `orders` new orders from `writers`
/// concurrent tasks, interleaving the orders. Returns the order ids.
pub async fn load<S: EventStore + Clone + 'static>(
    store: &S,
    orders: usize,
    per_order: usize,
    writers: usize,
) -> Vec<Uuid> {
    let ids: Vec<Uuid> = (0..orders).map(|_| Uuid::now_v7()).collect();
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let store = store.clone();
        let mine: Vec<Uuid> = ids.iter().copied().skip(writer).step_by(writers).collect();
        tasks.push(tokio::spawn(async move {
            for version in 0..per_order {
                for id in &mine {
                    store
                        .append_events(*id, version as u64, vec![event(&format!("Step{version}"))])
                        .await
                        .unwrap();
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    ids
}

/// Consumes with a new group until `expected` distinct events arrived (then `linger` more, to
/// catch anything extra) or `timeout` passed.
pub async fn consume(
    bootstrap: &str,
    expected: u64,
    linger: Duration,
    timeout: Duration,
) -> (Checker, Vec<Received>) {
    let consumer = EventConsumer::connect(&ConsumerOptions {
        brokers: bootstrap.to_owned(),
        topic: TOPIC.to_owned(),
        group: format!("test-{}", Uuid::now_v7()),
        properties: Default::default(),
    })
    .unwrap();
    let mut checker = Checker::new();
    let mut received = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut done_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let until = done_at.unwrap_or(deadline).min(deadline);
        if now >= until {
            break;
        }
        let Some(message) = consumer.next(until - now).await.unwrap() else {
            break;
        };
        checker.observe(&message);
        received.push(message);
        if done_at.is_none() && checker.new_events() >= expected {
            done_at = Some(Instant::now() + linger);
        }
    }
    (checker, received)
}

/// Asserts that what arrived is exactly the stored feed after dedupe: per order the same event
/// ids in version order, nothing else, no contract violation.
pub fn assert_matches_store(checker: &Checker, stored: &HashMap<Uuid, Vec<RecordedEvent>>) {
    assert_eq!(checker.problems(), &[] as &[String], "contract violations");
    let total: usize = stored.values().map(Vec::len).sum();
    assert_eq!(checker.new_events(), total as u64, "distinct events");
    for (order, events) in stored {
        let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
        assert_eq!(checker.events_of(*order), ids.as_slice(), "order {order}");
    }
}
