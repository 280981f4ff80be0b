//! `kafka-bench`: the outbox relay's throughput against a bare rdkafka producer, and the delay
//! from commit to consume.
//!
//! Against one broker (a tansu started for the run on a free loopback port, or `--brokers`) and
//! one throw-away PostgreSQL database (`orders_bench_<uuid>`, dropped at the end), each round:
//!
//! - `bare`: a `FutureProducer` with the relay's own settings (idempotent, `acks=all`, same
//!   linger) sends `--events` pre-built messages (the very key, headers and JSON value the relay
//!   would send for the stored events) and waits for every acknowledgement, timed once the
//!   producer is ready (after one untimed message: a new idempotent producer waits about 500 ms
//!   for its producer id);
//! - `relay`: the relay publishes the same `--events` events, already committed in the store, from
//!   checkpoint 0 until its stored checkpoint covers them all (reading the feed, building the
//!   messages, waiting for acknowledgements and writing checkpoints included), timed from the
//!   moment it takes the lease as a standby whose producer is ready (the benchmark holds the
//!   lease for its first second).
//!
//! Each on a fresh topic with 4 partitions. It prints
//! events/s, the relay/bare ratio (target ≥ 0.8), and for each phase the CPU time per event of
//! this process, the broker and PostgreSQL ([`bench::cpu`]) with how many cores were busy: when
//! both phases keep the cores busy, bare CPU per event ÷ relay CPU per event is the most the
//! ratio can be on this machine. Then medians over `--rounds`, then it streams
//! `--latency-events` single-event appends at `--rate` per second with the relay and a consumer
//! (`fetch.wait.max.ms=10`) running, and prints the commit-to-consume delay (p50/p99/max).
//!
//! ```text
//! cargo run --release -p bench --bin kafka-bench -- --events 20000 --rounds 3
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bench::cpu::CpuTimes;
use bench::db::BenchDatabase;
use bench::stats::{Latency, median};
use clap::Parser;
use common::config::TelemetryConfig;
use event_store::{EventStore, Feed, NewEvent};
use event_store_postgres::{PostgresEventStore, PostgresOptions};
use outbox::config::{Properties, parse_properties};
use outbox::consume::{ConsumerOptions, EventConsumer};
use outbox::lease::advisory_lock_name;
use outbox::{KafkaConfig, Published, Relay, RelayDb};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;
use sqlx::{Connection, PgConnection};
use test_support::tansu::Tansu;
use tokio::sync::{Mutex, watch};
use uuid::Uuid;

/// Flags.
#[derive(Debug, Parser)]
#[command(
    name = "kafka-bench",
    about = "Outbox relay vs bare rdkafka producer, and commit-to-consume delay"
)]
struct Args {
    /// Events per throughput case.
    #[arg(long, default_value_t = 20_000)]
    events: usize,
    /// Rounds of (bare, relay); medians are reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Relay batch size.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// Events appended (one per append) for the latency measurement.
    #[arg(long, default_value_t = 1000)]
    latency_events: usize,
    /// Appends per second during the latency measurement.
    #[arg(long, default_value_t = 250)]
    rate: u64,
    /// Use this broker instead of starting tansu.
    #[arg(long)]
    brokers: Option<String>,
    /// PostgreSQL server (a user that may CREATE DATABASE).
    #[arg(long, env = "TEST_DATABASE_URL", hide_env_values = true, default_value = test_support::postgres::DEFAULT_SERVER_URL)]
    server_url: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    max_seconds: u64,
    /// Extra librdkafka properties for both producers, `key=value,…` (e.g. `debug=msg`).
    #[arg(long, value_parser = parse_properties, default_value = "")]
    producer_properties: Properties,
    /// Logging (rdkafka's own log lines included, e.g. with `--log rdkafka=debug`).
    #[command(flatten)]
    telemetry: TelemetryConfig,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _telemetry = common::telemetry::init(&args.telemetry)?;
    let broker = match &args.brokers {
        Some(_) => None,
        None => Some(Tansu::start()),
    };
    let brokers = args
        .brokers
        .clone()
        .or_else(|| broker.as_ref().map(Tansu::bootstrap))
        .context("no broker")?;
    let database = BenchDatabase::create(&args.server_url).await?;
    eprintln!("broker {brokers}; benchmark database {}", database.name);
    let outcome = tokio::time::timeout(
        Duration::from_secs(args.max_seconds),
        run(&args, &brokers, broker.as_ref(), &database),
    )
    .await
    .unwrap_or_else(|_| {
        Err(anyhow::anyhow!(
            "gave up after {}s (--max-seconds)",
            args.max_seconds
        ))
    });
    if let Err(error) = database.drop_database().await {
        eprintln!("warning: {error:#}");
    }
    outcome
}

async fn run(
    args: &Args,
    brokers: &str,
    broker: Option<&Tansu>,
    database: &BenchDatabase,
) -> anyhow::Result<()> {
    let options = PostgresOptions {
        max_connections: 8,
        ..Default::default()
    };
    let store = PostgresEventStore::connect(&database.url, options).await?;
    store.migrate().await?;
    let db = RelayDb::new(store::Db::Postgres(store.pool().clone()));
    load(&store, args.events).await?;
    let started = Instant::now();
    let messages = prebuilt(&store, args.events, args.batch_size).await?;
    let read = started.elapsed();
    println!(
        "reading the feed and building the messages alone (batches of {}): {:.0} events/s",
        args.batch_size,
        args.events as f64 / read.as_secs_f64()
    );
    let bytes: usize = messages.iter().map(|m| m.value.len()).sum();
    println!(
        "{} events in the store, {} bytes of JSON value on average",
        args.events,
        bytes / args.events.max(1)
    );

    let (mut bare_rates, mut relay_rates) = (Vec::new(), Vec::new());
    let pid = broker.map(Tansu::pid);
    for round in 1..=args.rounds {
        let topic = format!("bench.bare.{round}");
        create_topic(broker, &topic);
        let (bare, bare_cpu) = bare_producer(brokers, &topic, args, &messages, pid).await?;
        let topic = format!("bench.relay.{round}");
        create_topic(broker, &topic);
        let (relay, relay_cpu) =
            relay_catch_up(&store, &db, brokers, &topic, args, &database.url, pid).await?;
        let (bare_rate, relay_rate) = (
            args.events as f64 / bare.as_secs_f64(),
            args.events as f64 / relay.as_secs_f64(),
        );
        println!(
            "round {round}: bare {bare_rate:>8.0} events/s ({bare:.2?})   relay {relay_rate:>8.0} events/s ({relay:.2?}, batches of {})   ratio {:.2}",
            args.batch_size,
            relay_rate / bare_rate
        );
        let events = args.events;
        println!("  bare:  {}", bare_cpu.per_unit(events));
        println!("  relay: {}", relay_cpu.per_unit(events));
        println!(
            "  CPU in use: bare {:.2} cores, relay {:.2} cores; CPU-bound ceiling of the ratio (bare CPU per event ÷ relay CPU per event): {:.2}",
            bare_cpu.total().as_secs_f64() / bare.as_secs_f64(),
            relay_cpu.total().as_secs_f64() / relay.as_secs_f64(),
            bare_cpu.total().as_secs_f64() / relay_cpu.total().as_secs_f64().max(1e-9)
        );
        bare_rates.push(bare_rate);
        relay_rates.push(relay_rate);
    }
    let (bare, relay) = (median(&bare_rates), median(&relay_rates));
    println!(
        "median: bare {bare:.0} events/s, relay {relay:.0} events/s (batch size {}), ratio {:.2} (target >= 0.80)",
        args.batch_size,
        relay / bare
    );

    let topic = "bench.latency";
    create_topic(broker, topic);
    let latency = commit_to_consume(&store, &db, brokers, topic, args).await?;
    println!(
        "commit to consume ({} events at {}/s, one event per append): p50 {:.1?}  p99 {:.1?}  max {:.1?}",
        args.latency_events, args.rate, latency.p50, latency.p99, latency.max
    );
    Ok(())
}

/// Appends `events` order events, 10 per order in one append each, and waits until all have a
/// position.
async fn load(store: &PostgresEventStore, events: usize) -> anyhow::Result<()> {
    for _ in 0..events.div_ceil(10) {
        let batch = (0..10).map(|i| order_event(i + 1)).collect();
        store.append_events(Uuid::now_v7(), 0, batch).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.head().await? < (events.div_ceil(10) * 10) as u64 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the sequencer did not number the events"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// A ~200-byte order event with the metadata the service writes.
fn order_event(step: usize) -> NewEvent {
    NewEvent::new(
        "Order",
        "OrderItemAdded",
        1,
        json!({"sku": format!("SKU-{step:04}"), "quantity": 2, "unit_price": 1050, "currency": "EUR",
               "product_id": Uuid::now_v7()}),
    )
    .with_metadata(json!({
        "correlation_id": Uuid::now_v7(),
        "causation_id": Uuid::now_v7(),
        "timestamp": chrono::Utc::now(),
    }))
}

struct Prebuilt {
    key: String,
    headers: Vec<(&'static str, String)>,
    value: Vec<u8>,
}

/// The messages the relay would send for the first `events` events of the feed.
async fn prebuilt(
    store: &PostgresEventStore,
    events: usize,
    batch_size: usize,
) -> anyhow::Result<Vec<Prebuilt>> {
    let mut out = Vec::with_capacity(events);
    let mut after = 0;
    while out.len() < events {
        let page = store.read_feed(after, batch_size).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        let wanted = events - out.len();
        for stored in page.into_iter().take(wanted) {
            let event = Published::from_feed(stored);
            out.push(Prebuilt {
                key: event.key(),
                headers: event.headers(),
                value: serde_json::to_vec(&event)?,
            });
        }
    }
    Ok(out)
}

fn config(brokers: &str, topic: &str, args: &Args) -> KafkaConfig {
    let mut config = KafkaConfig::new(brokers).with_topic(topic);
    config.batch_size = args.batch_size;
    config.properties = args.producer_properties.clone();
    config
}

/// Sends every pre-built message and waits for every acknowledgement, timed from the moment the
/// producer is ready: one untimed message first (a new idempotent producer waits about half a
/// second for its producer id).
async fn bare_producer(
    brokers: &str,
    topic: &str,
    args: &Args,
    messages: &[Prebuilt],
    broker_pid: Option<u32>,
) -> anyhow::Result<(Duration, CpuTimes)> {
    let producer: FutureProducer = config(brokers, topic, args).producer_config().create()?;
    let record = |message: &Prebuilt| {
        let headers =
            message
                .headers
                .iter()
                .fold(OwnedHeaders::new_with_capacity(7), |h, (name, text)| {
                    h.insert(Header {
                        key: name,
                        value: Some(text.as_bytes()),
                    })
                });
        producer
            .send_result(
                FutureRecord::to(topic)
                    .key(&message.key)
                    .payload(&message.value)
                    .headers(headers),
            )
            .map_err(|(e, _)| e)
    };
    let warm_up = Instant::now();
    if let Some(first) = messages.first() {
        record(first)?.await?.map_err(|(e, _)| e)?;
    }
    eprintln!("  bare: producer ready after {:.2?}", warm_up.elapsed());
    let cpu = CpuTimes::sample(broker_pid)?;
    let started = Instant::now();
    let mut deliveries = Vec::with_capacity(messages.len());
    for message in messages {
        deliveries.push(record(message)?);
    }
    for delivery in deliveries {
        delivery.await?.map_err(|(e, _)| e)?;
    }
    let elapsed = started.elapsed();
    Ok((elapsed, CpuTimes::sample(broker_pid)?.since(&cpu)))
}

/// Runs a relay from checkpoint 0 until it has stored the checkpoint of the last event, timed
/// from the moment it takes the lease. The benchmark holds the lease for the relay's first two
/// seconds, so the relay starts as a standby with a ready producer, as it would when it takes
/// over from another instance.
async fn relay_catch_up(
    store: &PostgresEventStore,
    db: &RelayDb,
    brokers: &str,
    topic: &str,
    args: &Args,
    database_url: &str,
    broker_pid: Option<u32>,
) -> anyhow::Result<(Duration, CpuTimes)> {
    let (stop, shutdown) = watch::channel(false);
    let head = store.head().await?;
    let relay = Relay::new(store.clone(), db.clone(), config(brokers, topic, args));
    let mut holder = PgConnection::connect(database_url).await?;
    sqlx::query("SELECT pg_advisory_lock(hashtextextended($1, 0))")
        .bind(advisory_lock_name(relay.checkpoint_name()))
        .execute(&mut holder)
        .await?;
    let relay = relay.spawn(shutdown);
    tokio::time::sleep(Duration::from_secs(1)).await;
    anyhow::ensure!(
        !relay.status().leading,
        "the relay took a lease the benchmark holds"
    );
    holder.close().await?;
    let leading = relay.wait_until_leading(Duration::from_secs(30)).await;
    let cpu = CpuTimes::sample(broker_pid)?;
    let started = Instant::now();
    let done = relay
        .wait_for_checkpoint(head, Duration::from_secs(120))
        .await;
    let elapsed = started.elapsed();
    let cpu = CpuTimes::sample(broker_pid)?.since(&cpu);
    eprintln!(
        "  relay: took the lease as a standby (leading: {leading}), caught up after {elapsed:.2?}"
    );
    anyhow::ensure!(done, "relay stuck at {:?}", relay.status());
    let _ = stop.send(true);
    relay.join().await;
    Ok((elapsed, cpu))
}

/// Appends one event at a time at `--rate` with a relay and a consumer running; returns the
/// delays from each append's return to its message's arrival.
async fn commit_to_consume(
    store: &PostgresEventStore,
    db: &RelayDb,
    brokers: &str,
    topic: &str,
    args: &Args,
) -> anyhow::Result<Latency> {
    let (stop, shutdown) = watch::channel(false);
    let relay = Relay::new(store.clone(), db.clone(), config(brokers, topic, args)).spawn(shutdown);
    let consumer = EventConsumer::connect(&ConsumerOptions {
        brokers: brokers.to_owned(),
        topic: topic.to_owned(),
        group: format!("bench-{}", Uuid::now_v7()),
        properties: parse_properties("fetch.wait.max.ms=10").map_err(anyhow::Error::msg)?,
    })?;
    let arrived: Arc<Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let sink = arrived.clone();
    let reader = tokio::spawn(async move {
        while let Ok(Some(message)) = consumer.next(Duration::from_secs(30)).await {
            if let Ok(event) = message.event {
                sink.lock()
                    .await
                    .entry(event.event_id)
                    .or_insert_with(Instant::now);
            }
        }
    });
    // The relay first catches up with the throughput rounds' events (they are in the same feed);
    // measure only once it has and the consumer has received a first new event.
    relay
        .wait_for_checkpoint(store.head().await?, Duration::from_secs(120))
        .await;
    let warm_up = order_event(1);
    let warm_id = warm_up.event_id;
    store
        .append_events(Uuid::now_v7(), 0, vec![warm_up])
        .await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !arrived.lock().await.contains_key(&warm_id) {
        anyhow::ensure!(Instant::now() < deadline, "the consumer received nothing");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let mut committed = Vec::with_capacity(args.latency_events);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate.max(1) as f64));
    for _ in 0..args.latency_events {
        tick.tick().await;
        let event = order_event(1);
        let id = event.event_id;
        store.append_events(Uuid::now_v7(), 0, vec![event]).await?;
        committed.push((id, Instant::now()));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let delays = loop {
        let arrived = arrived.lock().await;
        if committed.iter().all(|(id, _)| arrived.contains_key(id)) || Instant::now() > deadline {
            break committed
                .iter()
                .filter_map(|(id, at)| {
                    arrived
                        .get(id)
                        .map(|got| got.saturating_duration_since(*at))
                })
                .collect::<Vec<_>>();
        }
        drop(arrived);
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    anyhow::ensure!(
        delays.len() == committed.len(),
        "only {} of {} events arrived",
        delays.len(),
        committed.len()
    );
    let _ = stop.send(true);
    relay.join().await;
    reader.abort();
    Ok(Latency::of(delays))
}

fn create_topic(broker: Option<&Tansu>, topic: &str) {
    // With --brokers the broker's auto-creation (or the operator) provides the topic.
    if let Some(broker) = broker {
        broker.create_topic(topic);
    }
}
