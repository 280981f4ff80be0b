//! One endpoint's delivery loop: take the endpoint's lease, read the feed after its checkpoint,
//! POST each event it wants until the receiver answers 2xx, then move the checkpoint, fenced.
//!
//! Invariants:
//! - the checkpoint moves only past events acknowledged with a 2xx or filtered out, and only in
//!   a transaction that finds this instance still holding the lease at the epoch it took it at;
//! - events go out one at a time in feed order, so an order's events arrive in version order;
//! - a failing event is retried (backoff with jitter) until the retry period ends, then the
//!   endpoint turns `failing` with its checkpoint before that event; nothing is skipped;
//! - the lease is renewed while a request or a retry wait is in flight, so a slow receiver does
//!   not hand the endpoint to another instance; an instance that loses the lease stops sending.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use event_store::{EventStore, Feed, FeedEvent};
use lru::LruCache;
use personal_data::MasterKey;
use read_model::Dialect;
use serde::Deserialize;
use store::Store;
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use crate::delivery::{Message, Outcome, Sender};
use crate::endpoints::{Endpoint, EndpointState, EndpointTable, Filter, Health, checkpoint_name};
use crate::retry::{RetryPolicy, jitter};
use crate::signing::SigningSecret;

/// Events read from the feed at a time.
const BATCH: usize = 100;

/// Acknowledged events after which the checkpoint is stored; also stored every
/// [`SAVE_INTERVAL`], at the end of a batch and before retrying a refused event. A crash sends
/// again at most what was acknowledged since (at least once, deduped on `webhook-id`).
const SAVE_EVERY: u64 = 64;

/// Longest an acknowledged event waits to be covered by the stored checkpoint.
const SAVE_INTERVAL: Duration = Duration::from_millis(250);

/// How often an idle worker looks at the feed and its endpoint without a wake-up.
const POLL: Duration = Duration::from_millis(500);

/// Pause after a database error before trying again.
const ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Orders whose customer a worker remembers (for the customer filter).
const CUSTOMERS_CACHED: NonZeroUsize = NonZeroUsize::new(10_000).expect("non-zero");

/// What every worker of an instance shares.
#[derive(Debug, Clone)]
pub(crate) struct Shared<D> {
    pub dialect: D,
    pub table: EndpointTable,
    pub store: Store,
    pub sender: Sender,
    pub master: MasterKey,
    pub retry: RetryPolicy,
    pub owner: String,
    pub lease_ttl: Duration,
    pub standby_interval: Duration,
}

/// Why a delivery run stopped before its batch ended.
#[derive(Debug)]
enum Stop {
    /// Another instance holds the lease now (or a replay revoked it).
    LeaseLost,
    /// The endpoint was paused, deleted or turned failing: look at it again.
    Changed,
    /// The service is shutting down.
    Shutdown,
    /// The database failed.
    Database(String),
}

impl From<read_model::Error> for Stop {
    fn from(error: read_model::Error) -> Self {
        match error {
            read_model::Error::LeaseLost(_) => Self::LeaseLost,
            other => Self::Database(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for Stop {
    fn from(error: sqlx::Error) -> Self {
        Self::Database(error.to_string())
    }
}

impl From<event_store::EventStoreError> for Stop {
    fn from(error: event_store::EventStoreError) -> Self {
        Self::Database(error.to_string())
    }
}

/// The fields of a payload that name a customer (`OrderCreated`, `CustomerForgotten`).
#[derive(Deserialize)]
struct NamesCustomer {
    customer_id: Option<Uuid>,
}

/// What a batch has done that the stored checkpoint does not say yet.
struct Progress {
    /// The position every event up to which was acknowledged or filtered out.
    passed: u64,
    /// Whether `passed` is beyond the stored checkpoint.
    moved: bool,
    /// Acknowledgements not recorded yet, and the last one's status.
    acknowledged: u64,
    status: u16,
    /// When the checkpoint was last stored.
    saved_at: Instant,
    /// The stored failure (since when, attempts, next attempt) of the event after the
    /// checkpoint: it belongs to the batch's first delivery only.
    resumed: Option<Health>,
}

impl Progress {
    fn due(&self) -> bool {
        self.moved && (self.acknowledged >= SAVE_EVERY || self.saved_at.elapsed() >= SAVE_INTERVAL)
    }
}

/// One endpoint's worker.
pub(crate) struct Worker<D> {
    id: Uuid,
    name: String,
    shared: Arc<Shared<D>>,
    wake: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
    customers: LruCache<Uuid, Uuid>,
    /// The epoch of the lease this instance holds.
    epoch: Option<u64>,
    /// When this instance last wrote its lease.
    renewed_at: Instant,
}

impl<D: Dialect> Worker<D> {
    pub fn new(
        id: Uuid,
        shared: Arc<Shared<D>>,
        wake: Arc<Notify>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            id,
            name: checkpoint_name(id),
            shared,
            wake,
            shutdown,
            customers: LruCache::new(CUSTOMERS_CACHED),
            epoch: None,
            renewed_at: Instant::now(),
        }
    }

    /// Runs until the endpoint is deleted or the service shuts down.
    pub async fn run(mut self) {
        let mut wakeups = self.shared.store.wakeups();
        loop {
            if *self.shutdown.borrow() {
                self.release().await;
                return;
            }
            let endpoint = match self.shared.table.get(self.id).await {
                Ok(Some(endpoint)) => endpoint,
                Ok(None) => {
                    tracing::info!(endpoint = %self.id, "webhook endpoint deleted; its worker stops");
                    return;
                }
                Err(error) => {
                    tracing::warn!(endpoint = %self.id, %error, "cannot read the webhook endpoint; retrying");
                    self.pause(ERROR_PAUSE).await;
                    continue;
                }
            };
            if endpoint.state != EndpointState::Active {
                self.release().await;
                self.idle(&mut wakeups).await;
                continue;
            }
            let Some(epoch) = self.lease().await else {
                self.pause(self.shared.standby_interval).await;
                continue;
            };
            match self.deliver_batch(&endpoint, epoch).await {
                Ok(0) => self.idle(&mut wakeups).await,
                Ok(_) => {}
                Err(Stop::LeaseLost) => {
                    tracing::warn!(endpoint = %self.id, "webhook lease lost (another instance, or a replay); standing by");
                    metrics::counter!("webhook_leases_lost_total").increment(1);
                    self.epoch = None;
                }
                Err(Stop::Changed | Stop::Shutdown) => {}
                Err(Stop::Database(error)) => {
                    tracing::warn!(endpoint = %self.id, %error, "webhook delivery interrupted by the database; retrying");
                    self.pause(ERROR_PAUSE).await;
                }
            }
        }
    }

    /// The lease's epoch, taken now if this instance does not hold it.
    async fn lease(&mut self) -> Option<u64> {
        if let Some(epoch) = self.epoch {
            return Some(epoch);
        }
        let shared = &self.shared;
        match shared
            .dialect
            .acquire(&self.name, &shared.owner, shared.lease_ttl)
            .await
        {
            Ok(Some(epoch)) => {
                tracing::info!(endpoint = %self.id, owner = %shared.owner, epoch, "webhook lease taken: this instance delivers to the endpoint");
                self.epoch = Some(epoch);
                Some(epoch)
            }
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(endpoint = %self.id, %error, "cannot try the webhook lease");
                None
            }
        }
    }

    async fn release(&mut self) {
        if self.epoch.take().is_some() {
            let _ = self
                .shared
                .dialect
                .release(&self.name, &self.shared.owner)
                .await;
        }
    }

    /// Delivers what follows the checkpoint, up to [`BATCH`] events; how many it read.
    async fn deliver_batch(&mut self, endpoint: &Endpoint, epoch: u64) -> Result<usize, Stop> {
        let checkpoint = self
            .shared
            .dialect
            .checkpoint(&self.name)
            .await?
            .ok_or(Stop::Changed)?;
        if !checkpoint.is_held_by(&self.shared.owner, epoch) {
            return Err(Stop::LeaseLost);
        }
        let events = self
            .shared
            .store
            .read_feed(checkpoint.position, BATCH)
            .await?;
        if events.is_empty() {
            // Idle: keep the lease.
            if self.renewed_at.elapsed() >= self.shared.lease_ttl / 3 {
                self.renew(epoch).await?;
            }
            return Ok(0);
        }
        let secrets = self.secrets(endpoint)?;
        let read = events.len();
        let mut progress = Progress {
            passed: checkpoint.position,
            moved: false,
            acknowledged: 0,
            status: 0,
            saved_at: Instant::now(),
            resumed: Some(endpoint.health.clone()),
        };
        for event in events {
            let position = event.position;
            if self.wants(&endpoint.filter, &event).await? {
                self.deliver(endpoint, epoch, &secrets, event, &mut progress)
                    .await?;
            }
            progress.passed = position;
            progress.moved = true;
            if progress.due() {
                self.flush(epoch, &mut progress).await?;
            }
        }
        self.flush(epoch, &mut progress).await?;
        Ok(read)
    }

    /// Stores the checkpoint at what `progress` has passed and records its acknowledgements.
    async fn flush(&mut self, epoch: u64, progress: &mut Progress) -> Result<(), Stop> {
        if progress.moved {
            self.save(epoch, progress.passed).await?;
            progress.moved = false;
        }
        if progress.acknowledged > 0 {
            self.shared
                .table
                .succeeded(self.id, progress.acknowledged, progress.status)
                .await?;
            progress.acknowledged = 0;
        }
        progress.saved_at = Instant::now();
        Ok(())
    }

    /// The secrets to sign with: the current one, and the previous one during a rotation.
    fn secrets(&self, endpoint: &Endpoint) -> Result<Vec<SigningSecret>, Stop> {
        let open = |wrapped: &[u8]| {
            personal_data::cipher::unwrap_secret(
                &self.shared.master,
                &secret_context(self.id),
                wrapped,
            )
            .map(SigningSecret::from_bytes)
            .ok_or_else(|| {
                Stop::Database(format!(
                    "the signing secret of webhook {} does not open with the configured master key (fingerprint {}; it was wrapped by {})",
                    self.id,
                    self.shared.master.id(),
                    endpoint.master_key_id
                ))
            })
        };
        let mut secrets = vec![open(&endpoint.secret)?];
        if let Some((previous, until)) = &endpoint.previous_secret
            && *until > Utc::now()
        {
            secrets.push(open(previous)?);
        }
        Ok(secrets)
    }

    /// Whether the endpoint's filter lets `event` through.
    async fn wants(&mut self, filter: &Filter, event: &FeedEvent) -> Result<bool, Stop> {
        if !filter.wants_type(&event.event_type) {
            return Ok(false);
        }
        let Some(customer) = filter.customer_id else {
            return Ok(true);
        };
        Ok(self.customer_of(event).await? == Some(customer))
    }

    /// The customer an event belongs to: named in its payload (`OrderCreated`,
    /// `CustomerForgotten`), else its order's, from the order's first event.
    async fn customer_of(&mut self, event: &FeedEvent) -> Result<Option<Uuid>, Stop> {
        if let Ok(NamesCustomer {
            customer_id: Some(customer),
        }) = serde_json::from_str(event.payload.get())
        {
            self.customers.put(event.aggregate_id, customer);
            return Ok(Some(customer));
        }
        if let Some(customer) = self.customers.get(&event.aggregate_id) {
            return Ok(Some(*customer));
        }
        let first = self
            .shared
            .store
            .load_events_from_version(event.aggregate_id, 1)
            .await?;
        let customer = first.first().and_then(|created| {
            serde_json::from_value::<NamesCustomer>(created.payload.clone())
                .ok()
                .and_then(|named| named.customer_id)
        });
        if let Some(customer) = customer {
            self.customers.put(event.aggregate_id, customer);
        }
        Ok(customer)
    }

    /// POSTs `event` until it is acknowledged; the lease is renewed meanwhile.
    async fn deliver(
        &mut self,
        endpoint: &Endpoint,
        epoch: u64,
        secrets: &[SigningSecret],
        event: FeedEvent,
        progress: &mut Progress,
    ) -> Result<(), Stop> {
        let position = event.position;
        let committed_at = event.recorded_at;
        let published = outbox::Published::from_feed(event);
        let message = Message {
            id: published.event_id.to_string(),
            body: serde_json::to_vec(&published)
                .map_err(|e| Stop::Database(format!("cannot encode event {position}: {e}")))?,
            secrets: secrets.iter().collect(),
        };
        let resumed = progress.resumed.take().unwrap_or_default();
        let mut failing_since = resumed.failing_since;
        let mut failures = resumed.attempts;
        if let Some(due) = resumed.next_attempt_at {
            // Taken over (or resumed) in the middle of a backoff: keep its schedule.
            let wait = (due - Utc::now()).to_std().unwrap_or_default();
            self.wait_renewing(epoch, wait).await?;
        }
        loop {
            let shared = self.shared.clone();
            let outcome = self
                .renewing(epoch, shared.sender.send(&endpoint.url, &message))
                .await?;
            match outcome {
                Outcome::Acknowledged(status) => {
                    progress.acknowledged += 1;
                    progress.status = status;
                    if failures > 0 {
                        // Recovered: say so at once (the failure's columns are cleared).
                        progress.passed = position;
                        progress.moved = true;
                        self.flush(epoch, progress).await?;
                    }
                    metrics::counter!("webhook_deliveries_total", "outcome" => "acknowledged")
                        .increment(1);
                    let latency = (Utc::now() - committed_at).num_milliseconds().max(0);
                    metrics::histogram!("webhook_delivery_lag_seconds")
                        .record(latency as f64 / 1e3);
                    return Ok(());
                }
                Outcome::Failed(attempt) => {
                    metrics::counter!("webhook_deliveries_total", "outcome" => "failed")
                        .increment(1);
                    // What came before this event is done: store it before waiting.
                    self.flush(epoch, progress).await?;
                    failures += 1;
                    let since = *failing_since.get_or_insert(attempt.at);
                    if self.shared.retry.exhausted(since, attempt.at) {
                        self.shared
                            .table
                            .failed(self.id, &attempt, attempt.at)
                            .await?;
                        self.shared.table.give_up(self.id).await?;
                        tracing::error!(
                            endpoint = %self.id, position, failures, since = %since, last_status = ?attempt.status, error = ?attempt.error,
                            "webhook endpoint marked failing: an event was refused for the whole retry period; it is paused before that event (resume it with PATCH /webhooks/{{id}} once the receiver is fixed)"
                        );
                        return Err(Stop::Changed);
                    }
                    let delay = self.shared.retry.delay(failures, jitter());
                    let next = attempt.at
                        + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
                    self.shared.table.failed(self.id, &attempt, next).await?;
                    tracing::info!(
                        endpoint = %self.id, position, failures, status = ?attempt.status, error = ?attempt.error, retry_in = ?delay,
                        "webhook delivery refused; retrying"
                    );
                    self.wait_renewing(epoch, delay).await?;
                    // Staff may have paused, replayed or deleted it meanwhile.
                    match self.shared.table.get(self.id).await? {
                        Some(now) if now.state == EndpointState::Active => {}
                        _ => return Err(Stop::Changed),
                    }
                }
            }
        }
    }

    /// Runs `work`, renewing the lease every third of its time to live; stops (dropping `work`)
    /// when the lease is lost or the service shuts down.
    async fn renewing<T>(
        &mut self,
        epoch: u64,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, Stop> {
        let mut work = std::pin::pin!(work);
        let every = self.shared.lease_ttl / 3;
        loop {
            tokio::select! {
                done = &mut work => return Ok(done),
                () = tokio::time::sleep(every) => self.renew(epoch).await?,
                _ = self.shutdown.changed() => return Err(Stop::Shutdown),
            }
        }
    }

    /// Waits `delay` holding the lease; a wake-up (pause, replay, delete) ends the wait early.
    async fn wait_renewing(&mut self, epoch: u64, delay: Duration) -> Result<(), Stop> {
        let wake = self.wake.clone();
        let sleep = async move {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = wake.notified() => {}
            }
        };
        self.renewing(epoch, sleep).await
    }

    /// Moves the checkpoint to `position` and renews the lease, if this instance still holds
    /// it at `epoch`.
    async fn save(&mut self, epoch: u64, position: u64) -> Result<(), Stop> {
        let mut tx = self.shared.dialect.begin().await?;
        let checkpoint = D::lock(&mut tx, &self.name).await?;
        if !checkpoint.is_held_by(&self.shared.owner, epoch) {
            return Err(Stop::LeaseLost);
        }
        D::save(
            &mut tx,
            &self.name,
            checkpoint.generation,
            position.max(checkpoint.position),
            Some(self.shared.lease_ttl),
        )
        .await?;
        D::commit(tx).await?;
        self.renewed_at = Instant::now();
        Ok(())
    }

    /// Renews the lease without moving the checkpoint.
    async fn renew(&mut self, epoch: u64) -> Result<(), Stop> {
        let mut tx = self.shared.dialect.begin().await?;
        let checkpoint = D::lock(&mut tx, &self.name).await?;
        if !checkpoint.is_held_by(&self.shared.owner, epoch) {
            return Err(Stop::LeaseLost);
        }
        D::renew(&mut tx, &self.name, self.shared.lease_ttl).await?;
        D::commit(tx).await?;
        self.renewed_at = Instant::now();
        Ok(())
    }

    /// Waits for new events, a wake-up or the poll interval.
    async fn idle(&mut self, wakeups: &mut event_store::FeedWakeups) {
        tokio::select! {
            () = wakeups.changed() => {}
            () = self.wake.notified() => {}
            () = tokio::time::sleep(POLL) => {}
            _ = self.shutdown.changed() => {}
        }
    }

    async fn pause(&mut self, delay: Duration) {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = self.wake.notified() => {}
            _ = self.shutdown.changed() => {}
        }
    }
}

/// The context a webhook's secret is wrapped under.
pub fn secret_context(id: Uuid) -> String {
    format!("webhook/{id}")
}
