//! Wiring the service together and running it: start, serve, shut down gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::config::redact_password;
use common::{DatabaseConfig, ServerConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::{JwtKeys, load_or_create_secret};
use crate::cache::{CacheConfig, OrderCache};
use crate::commands::{CommandHandler, HandlerConfig};
use crate::http::{AppState, HttpLimits, router};
use operator_console::{Console, ConsoleKeys, HealthSamples, LinkTable, RelayView};
use order_views::Projections;
use personal_data::{KeyRing, KeyTable, MasterKey};
use store::Store;
use store::replicas::{ReplicaOptions, Replicas};

/// Queries answered by hot standbys (`DATABASE_READ_URL`). `Debug` shows no password.
#[derive(Clone)]
pub struct ReadReplicaConfig {
    /// The standbys, in libpq's multi-host form; `None`: the primary answers every query.
    pub url: Option<String>,
    /// Longest lag at which a standby answers a query without a consistency token.
    pub max_lag: Duration,
    /// Longest a query with a consistency token waits for a standby to replay the write before
    /// the primary answers it.
    pub standby_wait: Duration,
}

impl Default for ReadReplicaConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_lag: Duration::from_secs(1),
            standby_wait: Duration::from_millis(500),
        }
    }
}

impl std::fmt::Debug for ReadReplicaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadReplicaConfig")
            .field("url", &self.url.as_deref().map(redact_password))
            .field("max_lag", &self.max_lag)
            .field("standby_wait", &self.standby_wait)
            .finish()
    }
}

/// Everything [`Application::build`] needs. `Debug` shows no secret.
#[derive(Clone)]
pub struct AppConfig {
    /// Database.
    pub database: DatabaseConfig,
    /// HTTP server.
    pub server: ServerConfig,
    /// Token secret (generated into the data directory when `None`).
    pub jwt_secret: Option<String>,
    /// Longest lifetime of a token the service accepts.
    pub token_max_ttl: Duration,
    /// Master key wrapping the customers' data keys, base64 (generated into the data directory
    /// when `None`).
    pub master_key: Option<String>,
    /// Command handling.
    pub handler: HandlerConfig,
    /// How long idempotency records are kept (zero: forever).
    pub idempotency_retention: Duration,
    /// Redis URL for the order cache; `None` runs without a cache.
    pub redis_url: Option<String>,
    /// Cache settings.
    pub cache: CacheConfig,
    /// Hot standbys that answer queries.
    pub read_replicas: ReadReplicaConfig,
    /// Longest a query waits for the read model to reach a position.
    pub read_wait: Duration,
    /// What the read model does with an event it cannot apply.
    pub projection_on_error: order_views::OnError,
    /// This instance's name among those sharing the database (projection leases).
    pub instance_id: String,
    /// Publishing to Kafka (none without brokers).
    pub kafka: outbox::KafkaConfig,
    /// Webhook delivery.
    pub webhooks: webhooks::WebhookConfig,
}

impl std::fmt::Debug for AppConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppConfig")
            .field("database", &self.database)
            .field("server", &self.server)
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("token_max_ttl", &self.token_max_ttl)
            .field(
                "master_key",
                &self.master_key.as_ref().map(|_| "<redacted>"),
            )
            .field("handler", &self.handler)
            .field("idempotency_retention", &self.idempotency_retention)
            .field("redis_url", &self.redis_url.as_deref().map(redact_password))
            .field("cache", &self.cache)
            .field("read_replicas", &self.read_replicas)
            .field("read_wait", &self.read_wait)
            .field("projection_on_error", &self.projection_on_error)
            .field("instance_id", &self.instance_id)
            .field("kafka", &self.kafka)
            .field("webhooks", &self.webhooks)
            .finish()
    }
}

/// `<host>:<pid>:<random>`: unique among instances, and says where to look.
pub fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "orders".to_owned());
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &random[..6])
}

/// A built service, bound to its port, not yet serving.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    config: AppConfig,
    shutdown: watch::Sender<bool>,
    relay: Option<outbox::RelayHandle>,
    console: Console,
}

impl Application {
    /// Opens the store (migrating it), loads the token secret and binds the listener.
    pub async fn build(config: AppConfig) -> anyhow::Result<Self> {
        crate::telemetry::prometheus();
        crate::telemetry::describe();
        let store = Store::open(&config.database).await?;
        let secret =
            load_or_create_secret(config.jwt_secret.as_deref(), &config.database.data_dir)?;
        let master =
            MasterKey::load_or_create(config.master_key.as_deref(), &config.database.data_dir)?;
        let ring = KeyRing::new(KeyTable::new(store.db()), master.clone());
        let listener = TcpListener::bind(config.server.listen).await.map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {}: {e}; set ORDERS_LISTEN or --listen to a free address",
                config.server.listen
            )
        })?;
        let (shutdown, _) = watch::channel(false);
        let projections = Projections::start(
            &store,
            config.projection_on_error,
            &config.instance_id,
            shutdown.subscribe(),
        )
        .await?;
        let relay = crate::publishing::start(
            &store,
            &config.kafka,
            &config.instance_id,
            shutdown.subscribe(),
        );
        crate::commands::spawn_purger(
            store.clone(),
            config.idempotency_retention,
            shutdown.subscribe(),
        );
        personal_data::watch::spawn(ring.clone(), shutdown.subscribe());
        let console = console_parts(&store, &secret, &config, relay.as_ref(), &shutdown).await?;
        let cache = match &config.redis_url {
            Some(url) => Some(OrderCache::connect(url, config.cache.clone()).await?),
            None => None,
        };
        let replicas = start_replicas(&store, &config, &shutdown)?;
        let live = live_feed::Hub::start(store.clone(), shutdown.subscribe());
        let webhooks = webhooks::Webhooks::start(
            &store,
            master,
            &config.webhooks,
            &config.instance_id,
            shutdown.subscribe(),
        )?;
        let state = AppState {
            handler: CommandHandler::new(store, config.handler).with_key_ring(ring),
            keys: JwtKeys::new(&secret).with_max_ttl(config.token_max_ttl),
            shutting_down: Arc::new(AtomicBool::new(false)),
            projections,
            cache,
            read_wait: config.read_wait,
            waits: Default::default(),
            replicas,
            standby_wait: config.read_replicas.standby_wait,
            live,
            webhooks,
        };
        Ok(Self {
            listener,
            state,
            config,
            shutdown,
            relay,
            console,
        })
    }

    /// Where the service listens (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.config.server.listen)
    }

    /// The token keys (tests mint tokens with them).
    pub fn keys(&self) -> JwtKeys {
        self.state.keys.clone()
    }

    /// A handle that starts a graceful shutdown when sent `true`.
    pub fn shutdown_handle(&self) -> watch::Sender<bool> {
        self.shutdown.clone()
    }

    /// Tells the operator where the service is and how to get a token.
    pub fn print_banner(&self) {
        let database = self
            .config
            .database
            .backend()
            .map_or_else(|_| "?".to_owned(), |backend| backend.to_string());
        let addr = self.local_addr();
        println!("orders listening on http://{addr} ({database})");
        match &self.config.redis_url {
            Some(url) => println!("  cache:      Redis {}", redact_password(url)),
            None => println!("  cache:      none (set REDIS_URL to cache orders in Redis)"),
        }
        println!(
            "  publishing: {}",
            crate::publishing::banner(&self.config.kafka)
        );
        println!("  API docs:   http://{addr}/docs   (OpenAPI: http://{addr}/openapi.json)");
        let base = if addr.to_string() == "127.0.0.1:8080" {
            String::new()
        } else {
            format!(" --base-url http://{addr}")
        };
        println!(
            "  console:    http://{addr}/console   (sign in: orders console-link --sub <name>{base})"
        );
        println!(
            "  get a token: orders token --role staff --sub ops   |   orders token --role customer --sub <customer-uuid>"
        );
        println!(
            "               (with cargo: cargo run --release -- token --role staff --sub ops)"
        );
    }

    /// Serves until SIGINT/SIGTERM (or the shutdown handle), then drains in-flight requests.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        let trigger = self.shutdown.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = trigger.send(true);
        });
        self.run().await
    }

    /// Serves until the shutdown handle fires, then stops accepting, finishes in-flight requests
    /// (bounded by the configured grace period) and returns.
    pub async fn run(self) -> anyhow::Result<()> {
        let Self {
            listener,
            state,
            config,
            shutdown,
            relay,
            console,
        } = self;
        let flag = state.shutting_down.clone();
        let limits = HttpLimits {
            body_limit: config.server.body_limit,
            request_timeout: config.server.request_timeout,
        };
        let app = router(state, limits, Some(console));
        let mut stop = shutdown.subscribe();
        let mut stopped = shutdown.subscribe();
        let connections = crate::server::ConnectionLimits {
            max_connections: config.server.max_http_connections as usize,
            header_read_timeout: config.server.header_read_timeout,
        };
        let server = tokio::spawn(async move {
            crate::server::serve(listener, app, connections, async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await;
            std::io::Result::Ok(())
        });
        let _ = stopped.wait_for(|s| *s).await;
        flag.store(true, Ordering::SeqCst);
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        let finished = finish_within(config.server.shutdown_grace, server).await;
        if let Some(relay) = relay {
            // It saw the same signal; let it store the checkpoint of its last acknowledged batch.
            let _ = tokio::time::timeout(Duration::from_secs(6), relay.join()).await;
        }
        finished
    }
}

/// The standbys of `DATABASE_READ_URL`, watched until shutdown; only beside a PostgreSQL primary.
fn start_replicas(
    store: &Store,
    config: &AppConfig,
    shutdown: &watch::Sender<bool>,
) -> anyhow::Result<Option<Replicas>> {
    let Some(url) = &config.read_replicas.url else {
        return Ok(None);
    };
    let store::Db::Postgres(primary) = store.db() else {
        anyhow::bail!(
            "DATABASE_READ_URL names standbys of a PostgreSQL primary; the embedded SQLite file has none (unset it)"
        );
    };
    let options = ReplicaOptions {
        max_lag: config.read_replicas.max_lag,
        max_connections: config.database.max_connections,
    };
    Replicas::start(url, primary, options, shutdown.subscribe()).map(Some)
}

/// The console's keys (derived from the token secret), its table of used links, the charts'
/// sampler and the relay it shows.
async fn console_parts(
    store: &Store,
    secret: &[u8],
    config: &AppConfig,
    relay: Option<&outbox::RelayHandle>,
    shutdown: &watch::Sender<bool>,
) -> anyhow::Result<Console> {
    let links = LinkTable::new(store.db());
    let relay = relay.map(|handle| RelayView {
        checkpoint_name: outbox::checkpoint_name(&config.kafka.topic),
        topic: config.kafka.topic.clone(),
        db: crate::publishing::relay_db(store),
        status: handle.watch(),
    });
    Ok(Console {
        keys: ConsoleKeys::derive(secret),
        links,
        health: HealthSamples::start(
            store.clone(),
            std::sync::Arc::new(|| crate::telemetry::prometheus().render()),
            shutdown.subscribe(),
        ),
        relay,
    })
}

async fn finish_within(
    grace: Duration,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
) -> anyhow::Result<()> {
    match tokio::time::timeout(grace, server).await {
        Ok(joined) => {
            joined??;
            tracing::info!("stopped");
            Ok(())
        }
        Err(_) => {
            tracing::warn!(
                ?grace,
                "in-flight requests did not finish within the grace period; exiting anyway"
            );
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
