//! Webhooks (ADR 0024): endpoints that staff register over the API receive each event of the
//! global feed they want as an HTTP POST, signed per Standard Webhooks, at least once and in
//! version order per order.
//!
//! - [`outbound`]: which URLs and addresses a delivery may reach (server-side request forgery);
//! - [`signing`]: secrets and signatures;
//! - [`endpoints`]: the `webhook_endpoints` table;
//! - [`delivery`]: one attempt (the HTTP client);
//! - [`retry`]: backoff and the retry period;
//! - `worker`: one endpoint's fenced delivery loop; `supervisor`: a worker per endpoint.
//!
//! Each endpoint has its own worker, lease and checkpoint: a slow or failing endpoint delays no
//! other, nor the Kafka relay, nor commands (which never wait for a delivery).

pub mod delivery;
pub mod endpoints;
pub mod outbound;
pub mod retry;
pub mod signing;
mod supervisor;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use event_store::Feed;
use ipnet::IpNet;
use personal_data::MasterKey;
use read_model::{BoxFuture, Checkpoint, Dialect, PgDialect, SqliteDialect};
use store::{Db, Store};
use tokio::sync::{Notify, watch};
use uuid::Uuid;

pub use endpoints::{Attempt, Endpoint, EndpointState, EndpointTable, Filter, Health};
pub use outbound::{OutboundPolicy, Refused};
pub use signing::SigningSecret;
pub use worker::secret_context;

/// How long a rotated-out secret keeps signing beside the new one.
pub const ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);

/// Longest description of an endpoint, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 200;

/// Most event types one endpoint may filter on.
pub const MAX_EVENT_TYPES: usize = 32;

/// Delivery settings of `orders serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookConfig {
    /// Development only: accept `http://` endpoint URLs on a loopback host and deliver to
    /// loopback addresses. Never set it in production.
    #[arg(long = "webhooks-allow-loopback", env = "ORDERS_WEBHOOKS_ALLOW_LOOPBACK", default_value_t = false, action = clap::ArgAction::Set)]
    pub allow_loopback: bool,
    /// Networks that endpoints may reach although private (CIDR, comma-separated), for an
    /// internal receiver: `10.20.0.0/16,fd12::/64`.
    #[arg(
        long = "webhooks-allow-networks",
        env = "ORDERS_WEBHOOKS_ALLOW_NETWORKS",
        value_delimiter = ','
    )]
    pub allow_networks: Vec<IpNet>,
    /// How long an event may keep being refused before its endpoint is marked failing and
    /// paused.
    #[arg(long = "webhooks-retry-period", env = "ORDERS_WEBHOOKS_RETRY_PERIOD", default_value = "24h", value_parser = common::config::parse_duration)]
    pub retry_period: Duration,
    /// The first delay after a refused delivery; each next one doubles, with jitter.
    #[arg(long = "webhooks-backoff-min", env = "ORDERS_WEBHOOKS_BACKOFF_MIN", default_value = "1s", value_parser = common::config::parse_duration)]
    pub backoff_min: Duration,
    /// The longest delay between two attempts.
    #[arg(long = "webhooks-backoff-max", env = "ORDERS_WEBHOOKS_BACKOFF_MAX", default_value = "10m", value_parser = common::config::parse_duration)]
    pub backoff_max: Duration,
    /// Longest a receiver may take to answer (connecting included).
    #[arg(long = "webhooks-timeout", env = "ORDERS_WEBHOOKS_TIMEOUT", default_value = "10s", value_parser = common::config::parse_duration)]
    pub timeout: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow_loopback: false,
            allow_networks: Vec::new(),
            retry_period: Duration::from_secs(24 * 3600),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(600),
            timeout: Duration::from_secs(10),
        }
    }
}

impl WebhookConfig {
    /// The outbound rules these settings make.
    pub fn policy(&self) -> OutboundPolicy {
        OutboundPolicy {
            allow_loopback: self.allow_loopback,
            allow: self.allow_networks.clone(),
        }
    }

    fn retry(&self) -> retry::RetryPolicy {
        retry::RetryPolicy {
            min: self.backoff_min,
            max: self.backoff_max.max(self.backoff_min),
            period: self.retry_period,
        }
    }
}

/// Why a webhook operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No endpoint has this id.
    #[error("there is no webhook endpoint {0}; GET /webhooks lists them")]
    NotFound(Uuid),
    /// The URL breaks the outbound rules.
    #[error("{0}")]
    Refused(#[from] Refused),
    /// A field is out of its range.
    #[error("{0}")]
    Invalid(String),
    /// A replay from a position the feed has not issued.
    #[error(
        "position {after} has not been issued yet (the feed's head is {head}); replay from a position at most the head"
    )]
    PositionNotIssued {
        /// The position asked for.
        after: u64,
        /// The feed's head.
        head: u64,
    },
    /// The database failed.
    #[error("the webhook tables cannot be reached: {0}")]
    Unavailable(String),
}

impl From<sqlx::Error> for WebhookError {
    fn from(error: sqlx::Error) -> Self {
        Self::Unavailable(error.to_string())
    }
}

impl From<event_store::EventStoreError> for WebhookError {
    fn from(error: event_store::EventStoreError) -> Self {
        Self::Unavailable(error.to_string())
    }
}

impl From<read_model::Error> for WebhookError {
    fn from(error: read_model::Error) -> Self {
        Self::Unavailable(error.to_string())
    }
}

/// What a registration asks for.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Where deliveries go.
    pub url: String,
    /// Free text for people.
    pub description: String,
    /// Which events it receives.
    pub filter: Filter,
}

/// An endpoint with its checkpoint and the feed's head.
#[derive(Debug, Clone)]
pub struct EndpointStatus {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Its checkpoint and lease (`None` only while it is being deleted).
    pub checkpoint: Option<Checkpoint>,
    /// The feed's head when this was read.
    pub head: u64,
}

impl EndpointStatus {
    /// Events of the feed after the checkpoint (those it wants and those it does not).
    pub fn lag(&self) -> u64 {
        self.checkpoint
            .as_ref()
            .map_or(0, |c| self.head.saturating_sub(c.position))
    }
}

/// A database's checkpoint rows, whichever backend (object-safe).
trait Checkpoints: Send + Sync {
    fn checkpoint<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, read_model::Result<Option<Checkpoint>>>;
}

impl<D: Dialect> Checkpoints for D {
    fn checkpoint<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, read_model::Result<Option<Checkpoint>>> {
        Box::pin(Dialect::checkpoint(self, name))
    }
}

/// The endpoints of a database with their checkpoints, read-only (the CLI's view; the service's
/// [`Webhooks`] reads through one too).
#[derive(Clone)]
pub struct EndpointReader {
    table: EndpointTable,
    store: Store,
    checkpoints: Arc<dyn Checkpoints>,
}

impl EndpointReader {
    /// The endpoints of `store`'s database.
    pub fn new(store: &Store) -> Self {
        let checkpoints: Arc<dyn Checkpoints> = match store.db() {
            Db::Postgres(pool) => Arc::new(PgDialect::new(pool)),
            Db::Sqlite { writer, reader } => Arc::new(SqliteDialect::new(writer, reader)),
        };
        Self {
            table: EndpointTable::new(store.db()),
            store: store.clone(),
            checkpoints,
        }
    }

    /// Every endpoint with its checkpoint, oldest first.
    pub async fn list(&self) -> Result<Vec<EndpointStatus>, WebhookError> {
        let head = self.store.head().await?;
        let mut all = Vec::new();
        for endpoint in self.table.list().await? {
            let checkpoint = self
                .checkpoints
                .checkpoint(&endpoints::checkpoint_name(endpoint.id))
                .await?;
            all.push(EndpointStatus {
                endpoint,
                checkpoint,
                head,
            });
        }
        Ok(all)
    }

    /// One endpoint with its checkpoint.
    pub async fn status(&self, id: Uuid) -> Result<EndpointStatus, WebhookError> {
        let head = self.store.head().await?;
        let endpoint = self
            .table
            .get(id)
            .await?
            .ok_or(WebhookError::NotFound(id))?;
        let checkpoint = self
            .checkpoints
            .checkpoint(&endpoints::checkpoint_name(id))
            .await?;
        Ok(EndpointStatus {
            endpoint,
            checkpoint,
            head,
        })
    }
}

/// The webhooks of one instance: the endpoints' API, and a delivery worker per endpoint.
/// Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    reader: EndpointReader,
    master: MasterKey,
    policy: Arc<OutboundPolicy>,
    supervisor: Arc<Notify>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Webhooks {
    /// Starts delivering to every endpoint in `store`'s database (as instance `owner`) until
    /// `shutdown` turns true.
    pub fn start(
        store: &Store,
        master: MasterKey,
        config: &WebhookConfig,
        owner: &str,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        match store.db() {
            Db::Postgres(pool) => {
                Self::start_on(PgDialect::new(pool), store, master, config, owner, shutdown)
            }
            Db::Sqlite { writer, reader } => Self::start_on(
                SqliteDialect::new(writer, reader),
                store,
                master,
                config,
                owner,
                shutdown,
            ),
        }
    }

    fn start_on<D: Dialect>(
        dialect: D,
        store: &Store,
        master: MasterKey,
        config: &WebhookConfig,
        owner: &str,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<Self> {
        let policy = Arc::new(config.policy());
        let table = EndpointTable::new(store.db());
        let timeout = config.timeout.max(Duration::from_millis(100));
        let sender =
            delivery::Sender::new(policy.clone(), timeout.min(Duration::from_secs(5)), timeout)?;
        let shared = Arc::new(worker::Shared {
            dialect: dialect.clone(),
            table: table.clone(),
            store: store.clone(),
            sender,
            master: master.clone(),
            retry: config.retry(),
            owner: owner.to_owned(),
            lease_ttl: Duration::from_secs(5),
            standby_interval: Duration::from_secs(1),
        });
        let supervisor = Arc::new(Notify::new());
        tokio::spawn(supervisor::run(shared, supervisor.clone(), shutdown));
        Ok(Self {
            reader: EndpointReader {
                table,
                store: store.clone(),
                checkpoints: Arc::new(dialect),
            },
            master,
            policy,
            supervisor,
        })
    }

    /// The outbound rules.
    pub fn policy(&self) -> &OutboundPolicy {
        &self.policy
    }

    /// Registers an endpoint starting at the feed's head; returns it with its secret (shown
    /// this once).
    pub async fn register(
        &self,
        registration: Registration,
        by: &str,
    ) -> Result<(EndpointStatus, SigningSecret), WebhookError> {
        let url = self.policy.parse_url(&registration.url)?;
        self.policy.resolve(&url).await?;
        check_description(&registration.description)?;
        let filter = check_filter(registration.filter)?;
        let id = Uuid::now_v7();
        let secret =
            SigningSecret::generate().map_err(|e| WebhookError::Unavailable(e.to_string()))?;
        let wrapped = personal_data::cipher::wrap_secret(
            &self.master,
            &worker::secret_context(id),
            secret.bytes(),
        );
        let head = self.reader.store.head().await?;
        self.reader
            .table
            .insert(&endpoints::NewEndpoint {
                id,
                url: url.to_string(),
                description: registration.description,
                filter,
                secret: wrapped,
                master_key_id: self.master.id().to_owned(),
                created_by: by.to_owned(),
                after: head,
            })
            .await?;
        self.supervisor.notify_one();
        Ok((self.status(id).await?, secret))
    }

    /// Every endpoint with its checkpoint.
    pub async fn list(&self) -> Result<Vec<EndpointStatus>, WebhookError> {
        self.reader.list().await
    }

    /// One endpoint with its checkpoint.
    pub async fn status(&self, id: Uuid) -> Result<EndpointStatus, WebhookError> {
        self.reader.status(id).await
    }

    /// Pauses (`Paused`) or resumes (`Active`) an endpoint; resuming a failing one tries the
    /// event it was stuck on again at once.
    pub async fn set_state(
        &self,
        id: Uuid,
        state: EndpointState,
    ) -> Result<EndpointStatus, WebhookError> {
        if !self.reader.table.set_state(id, state).await? {
            return Err(WebhookError::NotFound(id));
        }
        self.supervisor.notify_one();
        self.status(id).await
    }

    /// Deletes an endpoint and its checkpoint.
    pub async fn delete(&self, id: Uuid) -> Result<(), WebhookError> {
        if !self.reader.table.delete(id).await? {
            return Err(WebhookError::NotFound(id));
        }
        self.supervisor.notify_one();
        Ok(())
    }

    /// Restarts deliveries after `after` (0: the whole feed).
    pub async fn replay(&self, id: Uuid, after: u64) -> Result<EndpointStatus, WebhookError> {
        // An unknown endpoint is a 404 whatever the position.
        self.reader
            .table
            .get(id)
            .await?
            .ok_or(WebhookError::NotFound(id))?;
        let head = self.reader.store.head().await?;
        if after > head {
            return Err(WebhookError::PositionNotIssued { after, head });
        }
        if !self.reader.table.replay(id, after).await? {
            return Err(WebhookError::NotFound(id));
        }
        self.supervisor.notify_one();
        self.status(id).await
    }

    /// A new secret for an endpoint; the previous one keeps signing for [`ROTATION_OVERLAP`].
    pub async fn rotate_secret(
        &self,
        id: Uuid,
    ) -> Result<(EndpointStatus, SigningSecret), WebhookError> {
        let secret =
            SigningSecret::generate().map_err(|e| WebhookError::Unavailable(e.to_string()))?;
        let wrapped = personal_data::cipher::wrap_secret(
            &self.master,
            &worker::secret_context(id),
            secret.bytes(),
        );
        let until = Utc::now() + chrono::Duration::from_std(ROTATION_OVERLAP).unwrap_or_default();
        if !self
            .reader
            .table
            .rotate(id, &wrapped, self.master.id(), until)
            .await?
        {
            return Err(WebhookError::NotFound(id));
        }
        Ok((self.status(id).await?, secret))
    }
}

/// Re-wraps every endpoint's signing secrets from master key `old` to `new` (master key
/// rotation, beside the customers' data keys); how many endpoints it re-wrapped. Endpoints
/// already under `new` are left as they are, so a rotation that stopped half-way can run again.
pub async fn rewrap_secrets(
    table: &EndpointTable,
    old: &MasterKey,
    new: &MasterKey,
) -> anyhow::Result<usize> {
    use personal_data::cipher::{unwrap_secret, wrap_secret};
    let mut rewrapped = Vec::new();
    for endpoint in table.list().await? {
        if endpoint.master_key_id == new.id() {
            continue;
        }
        let context = worker::secret_context(endpoint.id);
        let rewrap = |wrapped: &[u8]| {
            unwrap_secret(old, &context, wrapped)
                .map(|secret| wrap_secret(new, &context, &secret))
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "the signing secret of webhook {} is wrapped under master key {}, not the current {}",
                        endpoint.id,
                        endpoint.master_key_id,
                        old.id()
                    )
                })
        };
        let secret = rewrap(&endpoint.secret)?;
        let previous = match &endpoint.previous_secret {
            Some((wrapped, _)) => Some(rewrap(wrapped)?),
            None => None,
        };
        rewrapped.push((endpoint.id, secret, previous));
    }
    table.rewrap_all(&rewrapped, new.id()).await?;
    Ok(rewrapped.len())
}

fn check_description(description: &str) -> Result<(), WebhookError> {
    if description.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(WebhookError::Invalid(format!(
            "the description is longer than {MAX_DESCRIPTION_LEN} characters"
        )));
    }
    Ok(())
}

/// Every event type the feed carries.
pub fn known_event_types() -> impl Iterator<Item = &'static str> {
    domain::ORDER_EVENT_TYPES
        .into_iter()
        .chain([personal_data::CUSTOMER_FORGOTTEN])
}

/// The filter with its types checked and in a stable order.
fn check_filter(filter: Filter) -> Result<Filter, WebhookError> {
    let Some(mut types) = filter.event_types else {
        return Ok(filter);
    };
    if types.is_empty() {
        return Err(WebhookError::Invalid(
            "event_types is empty: list the types to receive, or leave it out to receive every type".to_owned(),
        ));
    }
    if types.len() > MAX_EVENT_TYPES {
        return Err(WebhookError::Invalid(format!(
            "event_types lists more than {MAX_EVENT_TYPES} types"
        )));
    }
    if let Some(unknown) = types.iter().find(|t| !known_event_types().any(|k| k == *t)) {
        let known: Vec<&str> = known_event_types().collect();
        return Err(WebhookError::Invalid(format!(
            "unknown event type {unknown:?}; the feed carries {}",
            known.join(", ")
        )));
    }
    types.sort();
    types.dedup();
    Ok(Filter {
        event_types: Some(types),
        customer_id: filter.customer_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_name_known_types_at_least_once_each() {
        let all = check_filter(Filter::default()).expect("no filter");
        assert_eq!(all, Filter::default());
        let some = check_filter(Filter {
            event_types: Some(vec![
                "OrderShipped".into(),
                "OrderCreated".into(),
                "OrderShipped".into(),
            ]),
            customer_id: None,
        })
        .expect("known types");
        assert_eq!(
            some.event_types,
            Some(vec!["OrderCreated".to_owned(), "OrderShipped".to_owned()])
        );
        assert!(some.wants_type("OrderShipped"));
        assert!(!some.wants_type("OrderConfirmed"));
        for bad in [
            vec![],
            vec!["OrderLost".to_owned()],
            vec!["OrderCreated".to_owned(); 33],
        ] {
            assert!(matches!(
                check_filter(Filter {
                    event_types: Some(bad),
                    customer_id: None
                }),
                Err(WebhookError::Invalid(_))
            ));
        }
        assert!(
            check_filter(Filter {
                event_types: Some(vec!["CustomerForgotten".into()]),
                customer_id: None
            })
            .is_ok()
        );
    }

    #[test]
    fn descriptions_are_bounded_in_characters() {
        assert!(check_description(&"é".repeat(MAX_DESCRIPTION_LEN)).is_ok());
        assert!(check_description(&"é".repeat(MAX_DESCRIPTION_LEN + 1)).is_err());
    }
}
