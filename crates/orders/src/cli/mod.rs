//! The binary's command line: `serve` (the default), `migrate`, and the operator's tools
//! (`token`, `console-link`, `projections`, `streams`, `feed`, `kafka`, `customers`, `keys`,
//! `verify`, `doctor`).

/// `println!` that returns the write error instead of panicking, so that `orders feed tail | head`
/// ends quietly when `head` closes the pipe (the binary exits 0 on a broken pipe).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

mod console_link;
mod customers;
mod doctor;
mod feed;
mod kafka;
mod projections;
mod streams;
mod token;
pub mod verify;
mod webhook_endpoints;

use clap::{Parser, Subcommand};
use common::{DatabaseConfig, ServerConfig, TelemetryConfig};

use crate::app::{AppConfig, Application};
use store::Store;

/// Event-sourced order service. Without a subcommand it serves the HTTP API (and takes `serve`'s
/// options).
#[derive(Debug, Parser)]
#[command(
    name = "orders",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `serve`'s options, for `orders` without a subcommand.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Logging.
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (applies pending migrations first).
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations and exit.
    Migrate(MigrateArgs),
    /// Print a bearer token signed with the configured secret.
    Token(token::TokenArgs),
    /// Print a one-time link that signs a staff member in to the console (/console).
    ConsoleLink(console_link::ConsoleLinkArgs),
    /// Inspect and rebuild read models.
    #[command(subcommand)]
    Projections(projections::ProjectionsCommand),
    /// Inspect event streams.
    #[command(subcommand)]
    Streams(StreamsCommand),
    /// Read the global feed.
    #[command(subcommand)]
    Feed(FeedCommand),
    /// Watch the Kafka topic the service publishes to.
    #[command(subcommand)]
    Kafka(kafka::KafkaCommand),
    /// Replay every stream with the current code and check versions, snapshots and read models.
    Verify(verify::VerifyArgs),
    /// Check the configuration and connectivity to every configured service.
    Doctor(Box<ServeArgs>),
    /// Personal data of customers: forget one.
    #[command(subcommand)]
    Customers(customers::CustomersCommand),
    /// The master key: rotate it.
    #[command(subcommand)]
    Keys(customers::KeysCommand),
    /// Webhook endpoints: how their deliveries go.
    #[command(subcommand)]
    Webhooks(webhook_endpoints::WebhooksCommand),
}

/// `streams` subcommands.
#[derive(Debug, Subcommand)]
pub enum StreamsCommand {
    /// Print a stream's events with their metadata.
    Show(streams::ShowArgs),
}

/// `feed` subcommands.
#[derive(Debug, Subcommand)]
pub enum FeedCommand {
    /// Print the newest events of the global feed; `--follow` keeps printing new ones.
    Tail(feed::TailArgs),
}

/// Settings of `serve`.
#[derive(Debug, Clone, Parser)]
pub struct ServeArgs {
    /// Database.
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// HTTP server.
    #[command(flatten)]
    pub server: ServerConfig,
    /// HS256 secret for bearer tokens (≥ 32 bytes). Unset: generated once into the data directory.
    #[arg(long, env = "ORDERS_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Master key (base64 of 32 bytes) wrapping each customer's data key. Unset: generated once
    /// into the data directory (`master-key`, mode 0600). Back it up apart from the database.
    #[arg(long, env = "ORDERS_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
    /// Longest lifetime (from `iat` to `exp`) of a token the service accepts.
    #[arg(long, env = "ORDERS_TOKEN_MAX_TTL", default_value = "30d", value_parser = common::config::parse_duration)]
    pub token_max_ttl: std::time::Duration,
    /// Snapshot an order every this many events (0 = never).
    #[arg(long, env = "ORDERS_SNAPSHOT_EVERY", default_value_t = 100)]
    pub snapshot_every: u64,
    /// Order states kept in memory so that a later command on the same order skips its load
    /// (0 = always load); a stale one is caught by the append's expected version.
    #[arg(long, env = "ORDERS_STATE_CACHE", default_value_t = 10_000)]
    pub state_cache: usize,
    /// How long an `Idempotency-Key` is remembered: a retry within it gets the original answer,
    /// one after it is a new request (0 = forever).
    #[arg(long, env = "ORDERS_IDEMPOTENCY_RETENTION", default_value = "24h", value_parser = common::config::parse_duration)]
    pub idempotency_retention: std::time::Duration,
    /// Redis for the order cache (`redis://127.0.0.1:6379`). Unset: no cache.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Prefix of every cache key.
    #[arg(long, env = "ORDERS_CACHE_PREFIX", default_value = "orders:")]
    pub cache_prefix: String,
    /// Longest wait for Redis before answering from the database.
    #[arg(long, env = "ORDERS_CACHE_TIMEOUT", default_value = "50ms", value_parser = common::config::parse_duration)]
    pub cache_timeout: std::time::Duration,
    /// How long an unused cache entry lives.
    #[arg(long, env = "ORDERS_CACHE_TTL", default_value = "10m", value_parser = common::config::parse_duration)]
    pub cache_ttl: std::time::Duration,
    /// Hot standbys of the PostgreSQL primary that answer queries (libpq's multi-host form,
    /// `postgres://user@standby1,standby2/orders`). Unset: the primary answers every query.
    #[arg(long, env = "DATABASE_READ_URL", hide_env_values = true)]
    pub database_read_url: Option<String>,
    /// Longest replication lag at which a standby answers a query that carries no consistency
    /// token (queries with one are never answered stale, whatever the lag).
    #[arg(long, env = "ORDERS_READ_MAX_LAG", default_value = "1s", value_parser = common::config::parse_duration)]
    pub read_max_lag: std::time::Duration,
    /// Longest a query with a consistency token waits for a standby to replay the write before
    /// the primary answers it.
    #[arg(long, env = "ORDERS_READ_STANDBY_WAIT", default_value = "500ms", value_parser = common::config::parse_duration)]
    pub read_standby_wait: std::time::Duration,
    /// Longest a query with `min_position` waits for the read model.
    #[arg(long, env = "ORDERS_READ_WAIT", default_value = "5s", value_parser = common::config::parse_duration)]
    pub read_wait: std::time::Duration,
    /// What the read model does with an event it cannot apply: park it and go on, or stop.
    #[arg(long, env = "ORDERS_PROJECTION_ON_ERROR", value_enum, default_value_t = order_views::OnError::Park)]
    pub projection_on_error: order_views::OnError,
    /// This instance's name among the instances sharing a database: shown as the holder of a
    /// projection's lease (default: host name, process id and a random suffix).
    #[arg(long, env = "ORDERS_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Publishing to Kafka.
    #[command(flatten)]
    pub kafka: outbox::KafkaConfig,
    /// Webhook delivery.
    #[command(flatten)]
    pub webhooks: webhooks::WebhookConfig,
}

/// Settings of `migrate`.
#[derive(Debug, Clone, Parser)]
pub struct MigrateArgs {
    /// Database.
    #[command(flatten)]
    pub database: DatabaseConfig,
}

/// Whether `error` is a write to a closed pipe (the reader went away): not worth a message.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

impl Cli {
    /// Whether this runs the service (the default), whose errors belong in its log.
    pub fn serves(&self) -> bool {
        matches!(self.command, None | Some(Command::Serve(_)))
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::Serve(Box::new(cli.serve)));
    match command {
        Command::Serve(args) => {
            let app = Application::build(AppConfig::from(*args)).await?;
            app.print_banner();
            app.run_until_signal().await
        }
        Command::Migrate(args) => {
            let store = Store::open(&args.database).await?;
            outln!("migrations applied ({})", store.kind());
            Ok(())
        }
        Command::Token(args) => token::run(args),
        Command::ConsoleLink(args) => console_link::run(args),
        Command::Projections(command) => projections::run(command).await,
        Command::Streams(StreamsCommand::Show(args)) => streams::show(args).await,
        Command::Feed(FeedCommand::Tail(args)) => feed::tail(args).await,
        Command::Kafka(command) => kafka::run(command).await,
        Command::Verify(args) => verify::run(args).await,
        Command::Doctor(args) => doctor::run(*args).await,
        Command::Customers(customers::CustomersCommand::Forget(args)) => {
            customers::forget(args).await
        }
        Command::Keys(customers::KeysCommand::RotateMaster(args)) => customers::rotate(args).await,
        Command::Webhooks(command) => webhook_endpoints::run(command).await,
    }
}

impl From<ServeArgs> for AppConfig {
    fn from(args: ServeArgs) -> Self {
        Self {
            database: args.database,
            server: args.server,
            jwt_secret: args.jwt_secret,
            token_max_ttl: args.token_max_ttl,
            master_key: args.master_key,
            handler: crate::commands::HandlerConfig {
                snapshot_every: args.snapshot_every,
                state_cache: args.state_cache,
                ..crate::commands::HandlerConfig::default()
            },
            idempotency_retention: args.idempotency_retention,
            redis_url: args.redis_url,
            cache: crate::cache::CacheConfig {
                prefix: args.cache_prefix,
                timeout: args.cache_timeout,
                ttl: args.cache_ttl,
            },
            read_replicas: crate::app::ReadReplicaConfig {
                url: args.database_read_url,
                max_lag: args.read_max_lag,
                standby_wait: args.read_standby_wait,
            },
            read_wait: args.read_wait,
            projection_on_error: args.projection_on_error,
            instance_id: args
                .instance_id
                .unwrap_or_else(crate::app::default_instance_id),
            kafka: args.kafka,
            webhooks: args.webhooks,
        }
    }
}
