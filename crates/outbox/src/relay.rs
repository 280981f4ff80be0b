//! The relay: publishes the global feed to Kafka, advancing its checkpoint only after the broker
//! acknowledged.
//!
//! The feed *is* the transactional outbox: every append queues its events for the feed in the
//! same statement that writes them, so a committed event is always in the feed and a rolled-back
//! one never is (ADR 0002). The relay reads `position > checkpoint` in batches
//! ([`Feed::read_feed`]: payloads stay the stored JSON text and are copied into the message
//! unparsed), hands them to an idempotent producer (`acks=all`), keeps a few batches in flight,
//! and stores the checkpoint of a batch once every message of it (and of every batch before it) is acknowledged. A crash between
//! the acknowledgement and the checkpoint write republishes that batch: delivery is at least once,
//! and consumers dedupe on (order id, version). See ADR 0008.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use event_store::{EventStoreError, Feed, FeedWakeups};
use futures::FutureExt;
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::backoff::Backoff;
use crate::config::{KafkaConfig, MAX_BATCH_SIZE, MAX_IN_FLIGHT_EVENTS};
use crate::database::RelayDb;
use crate::lease::Lease;
use crate::metrics::{self, LagGauge};
use crate::publish::{InFlight, send_batch};
use crate::read_ahead::ReadAhead;

/// How often an idle relay looks for events nobody told it about.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How often a relay that does not hold the lease tries to take it.
const STANDBY_INTERVAL: Duration = Duration::from_secs(1);

/// How often an idle leader checks that it still holds the lease.
const LEASE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Longest a stopping relay waits for outstanding acknowledgements before exiting.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Back-off after a failure: first and longest delay.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Why a leadership term ended.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Reading the feed failed.
    #[error("reading the feed: {0}")]
    Store(#[from] EventStoreError),
    /// The lease or checkpoint database failed (the lease may be lost).
    #[error("relay database: {0}")]
    Database(#[from] sqlx::Error),
    /// The producer could not be created (bad configuration).
    #[error("kafka producer: {0}")]
    Kafka(#[from] KafkaError),
}

/// What the relay is doing, for tests and health output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStatus {
    /// Whether this relay holds the lease and publishes.
    pub leading: bool,
    /// Its last stored checkpoint.
    pub checkpoint: u64,
}

/// Publishes the feed of `store` to the configured topic.
pub struct Relay<S> {
    store: S,
    db: RelayDb,
    config: KafkaConfig,
    name: String,
    instance: Option<String>,
}

/// The name of the relay of `topic`: its checkpoint's `projections` row and its lease. One per
/// topic, so a relay to another topic starts from the beginning of the feed.
pub fn checkpoint_name(topic: &str) -> String {
    format!("kafka-relay:{topic}")
}

impl<S: Feed + Clone + Send + Sync + 'static> Relay<S> {
    /// A relay for `config.topic`, with the checkpoint [`checkpoint_name`] names.
    pub fn new(store: S, db: RelayDb, config: KafkaConfig) -> Self {
        let name = checkpoint_name(&config.topic);
        Self {
            store,
            db,
            config,
            name,
            instance: None,
        }
    }

    /// Names this instance on its lease connection (`application_name` `orders-outbox-relay
    /// <instance>` in `pg_stat_activity`), so operators can see which instance publishes.
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// The checkpoint row's name.
    pub fn checkpoint_name(&self) -> &str {
        &self.name
    }

    /// Starts the relay on the current runtime. It runs until `shutdown` turns true (then waits
    /// briefly for outstanding acknowledgements) or the handle is dropped or aborted.
    pub fn spawn(self, shutdown: watch::Receiver<bool>) -> RelayHandle {
        let (status_tx, status) = watch::channel(RelayStatus::default());
        let task = tokio::spawn(self.run(status_tx, shutdown));
        RelayHandle { task, status }
    }

    async fn run(self, status: watch::Sender<RelayStatus>, mut shutdown: watch::Receiver<bool>) {
        let wake = Arc::new(Notify::new());
        let waker = AbortOnDrop(spawn_waker(self.store.wakeups(), wake.clone()));
        let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
        // The producer is made before the lease is tried and kept while this instance stands by:
        // a new idempotent producer needs about half a second before it may send (librdkafka
        // asks the broker for a producer id on a 500 ms timer), which a standby pays in advance
        // instead of at takeover.
        let mut producer: Option<FutureProducer> = None;
        while !stopping_now(&shutdown) {
            let made = match producer.take() {
                Some(warm) => Ok(warm),
                None => self.producer(),
            };
            let term = match made {
                Ok(made) => {
                    let current = producer.insert(made);
                    self.lead(current, &wake, &status, &mut shutdown, &mut backoff)
                        .await
                }
                Err(error) => Err(RelayError::Kafka(error)),
            };
            let pause = match term {
                Ok(Term::Stopped) => break,
                Ok(Term::Standby) => STANDBY_INTERVAL,
                Err(error) => {
                    tracing::warn!(topic = %self.config.topic, %error, "kafka relay stopped publishing; retrying");
                    metrics::failure(&self.config.topic);
                    // What the last term left queued must not reach the topic after another
                    // instance resent it: a fresh producer for the next term.
                    if let Some(old) = producer.take() {
                        discard(old);
                    }
                    backoff.next_delay()
                }
            };
            status.send_modify(|s| s.leading = false);
            sleep_or_stop(pause, &mut shutdown).await;
        }
        status.send_modify(|s| s.leading = false);
        if let Some(producer) = producer.take() {
            discard(producer);
        }
        drop(waker);
    }

    /// One term: take the lease, then publish until stopped or the lease or store fails.
    async fn lead(
        &self,
        producer: &mut FutureProducer,
        wake: &Notify,
        status: &watch::Sender<RelayStatus>,
        shutdown: &mut watch::Receiver<bool>,
        backoff: &mut Backoff,
    ) -> Result<Term, RelayError> {
        let Some(mut lease) = self
            .db
            .try_lease(&self.name, self.instance.as_deref())
            .await?
        else {
            return Ok(Term::Standby);
        };
        let mut checkpoint = lease.checkpoint().await?;
        tracing::info!(topic = %self.config.topic, checkpoint, "kafka relay: this instance publishes");
        status.send_replace(RelayStatus {
            leading: true,
            checkpoint,
        });
        let topic = self.config.topic.as_str();
        let batch_size = self.config.batch_size.clamp(1, MAX_BATCH_SIZE);
        let window = self.config.max_in_flight.clamp(1, MAX_IN_FLIGHT_EVENTS);
        let mut pipeline: VecDeque<InFlight> = VecDeque::new();
        let in_flight =
            |pipeline: &VecDeque<InFlight>| pipeline.iter().map(|b| b.events).sum::<usize>();
        let mut next = checkpoint;
        let mut reader = ReadAhead::new(self.store.clone(), batch_size);
        let mut lag = LagGauge::new(topic);
        let mut last_check = tokio::time::Instant::now();
        loop {
            if stopping_now(shutdown) {
                drain(pipeline, &mut lease, status, topic).await;
                return Ok(Term::Stopped);
            }
            if in_flight(&pipeline) < window {
                let events = reader.next(next).await?;
                if !events.is_empty() {
                    match send_batch(producer, topic, events) {
                        Ok(batch) => {
                            metrics::batch(topic, batch.events);
                            next = batch.last_position;
                            pipeline.push_back(batch);
                            continue;
                        }
                        Err(error) => {
                            self.failed(error, &mut pipeline, producer, backoff, shutdown)
                                .await?;
                            next = checkpoint;
                            continue;
                        }
                    }
                }
            }
            if let Some(mut batch) = pipeline.pop_front() {
                let (last, events) = (batch.last_position, batch.events);
                let acked = tokio::select! {
                    acked = batch.acked() => Some(acked),
                    () = stopped(shutdown) => None,
                    () = tokio::time::sleep_until(last_check + LEASE_CHECK_INTERVAL) => {
                        // A slow broker must not let the lease connection fall silent.
                        lease.check().await?;
                        last_check = tokio::time::Instant::now();
                        pipeline.push_front(batch);
                        continue;
                    }
                };
                let Some(acked) = acked else {
                    pipeline.push_front(batch); // the drain above waits for it, bounded
                    continue;
                };
                match acked {
                    Ok(()) => {
                        // Batches acknowledged meanwhile share this checkpoint write.
                        let (mut last, mut events, mut failure) = (last, events, None);
                        while let Some(following) = pipeline.front_mut() {
                            match following.acked().now_or_never() {
                                None => break,
                                Some(Ok(())) => {
                                    (last, events) =
                                        (following.last_position, events + following.events);
                                    pipeline.pop_front();
                                }
                                Some(Err(error)) => {
                                    failure = Some(error);
                                    break;
                                }
                            }
                        }
                        lease.commit(last).await?;
                        checkpoint = last;
                        last_check = tokio::time::Instant::now();
                        metrics::published(topic, events);
                        status.send_modify(|s| s.checkpoint = last);
                        backoff.reset();
                        lag.update(&self.store, checkpoint).await;
                        if let Some(error) = failure {
                            self.failed(error, &mut pipeline, producer, backoff, shutdown)
                                .await?;
                            next = checkpoint;
                        }
                    }
                    Err(error) => {
                        self.failed(error, &mut pipeline, producer, backoff, shutdown)
                            .await?;
                        next = checkpoint;
                    }
                }
                continue;
            }
            // Caught up.
            lag.update(&self.store, checkpoint).await;
            if last_check.elapsed() >= LEASE_CHECK_INTERVAL {
                lease.check().await?;
                last_check = tokio::time::Instant::now();
            }
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(POLL_INTERVAL) => {}
                () = stopped(shutdown) => {}
            }
        }
    }

    /// After a failed send or acknowledgement: forget what is in flight, replace the producer (so
    /// nothing queued before the failure is delivered after the resend), back off, and let the
    /// caller resend from the checkpoint.
    async fn failed(
        &self,
        error: KafkaError,
        pipeline: &mut VecDeque<InFlight>,
        producer: &mut FutureProducer,
        backoff: &mut Backoff,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), RelayError> {
        let delay = backoff.next_delay();
        tracing::warn!(topic = %self.config.topic, %error, ?delay, "kafka publish failed; resending from the checkpoint");
        metrics::failure(&self.config.topic);
        pipeline.clear();
        discard(std::mem::replace(producer, self.producer()?));
        sleep_or_stop(delay, shutdown).await;
        Ok(())
    }

    fn producer(&self) -> Result<FutureProducer, KafkaError> {
        self.config.producer_config().create()
    }
}

/// Drops a producer without delivering what it still holds, off the async threads: dropping
/// purges its queue and blocks up to half a second.
fn discard(producer: FutureProducer) {
    tokio::task::spawn_blocking(move || drop(producer));
}

/// On shutdown: wait (bounded) for the batches in flight and store the last acknowledged one.
async fn drain(
    pipeline: VecDeque<InFlight>,
    lease: &mut Lease,
    status: &watch::Sender<RelayStatus>,
    topic: &str,
) {
    let wait = async {
        let mut last = None;
        for mut batch in pipeline {
            let (position, events) = (batch.last_position, batch.events);
            if batch.acked().await.is_err() {
                break;
            }
            metrics::published(topic, events);
            last = Some(position);
        }
        last
    };
    let last = tokio::time::timeout(DRAIN_TIMEOUT, wait)
        .await
        .ok()
        .flatten();
    if let Some(position) = last
        && lease.commit(position).await.is_ok()
    {
        status.send_modify(|s| s.checkpoint = position);
    }
}

/// How a leadership term ended without error.
enum Term {
    /// Shutdown was requested.
    Stopped,
    /// Another instance holds the lease.
    Standby,
}

/// A running relay.
#[derive(Debug)]
pub struct RelayHandle {
    task: JoinHandle<()>,
    status: watch::Receiver<RelayStatus>,
}

impl RelayHandle {
    /// A receiver of the relay's status, for whoever shows it (the console).
    pub fn watch(&self) -> watch::Receiver<RelayStatus> {
        self.status.clone()
    }

    /// What the relay is doing now.
    pub fn status(&self) -> RelayStatus {
        *self.status.borrow()
    }

    /// Waits until the stored checkpoint reaches `position`, at most `timeout`. Returns whether it
    /// did.
    pub async fn wait_for_checkpoint(&self, position: u64, timeout: Duration) -> bool {
        let mut status = self.status.clone();
        tokio::time::timeout(timeout, status.wait_for(|s| s.checkpoint >= position))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits until the relay holds the lease (or `timeout`). Returns whether it does.
    pub async fn wait_until_leading(&self, timeout: Duration) -> bool {
        let mut status = self.status.clone();
        tokio::time::timeout(timeout, status.wait_for(|s| s.leading))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Kills the relay at once, as a crash would: nothing is flushed or stored.
    pub fn abort(&self) {
        self.task.abort();
    }

    /// Waits for the relay to finish (after shutdown or [`Self::abort`]).
    pub async fn join(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Forwards the store's feed wake-ups to `wake` (the relay also polls: a lost tick costs latency).
fn spawn_waker(mut wakeups: FeedWakeups, wake: Arc<Notify>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            wakeups.changed().await;
            wake.notify_one();
        }
    })
}

fn stopping_now(shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow() || shutdown.has_changed().is_err()
}

/// Resolves when shutdown is requested (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

async fn sleep_or_stop(delay: Duration, shutdown: &mut watch::Receiver<bool>) {
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        () = stopped(shutdown) => {}
    }
}
