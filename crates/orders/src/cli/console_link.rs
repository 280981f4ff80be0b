//! `orders console-link`: print a one-time link that signs a staff member in to the console.

use std::time::Duration;

use clap::Args;
use common::DatabaseConfig;

use operator_console::ConsoleKeys;

/// Settings of `console-link`.
#[derive(Debug, Clone, Args)]
pub struct ConsoleLinkArgs {
    /// Who signs in: recorded as the user of every command sent from the console.
    #[arg(long, default_value = "ops")]
    pub sub: String,
    /// How long the link works if nobody uses it, e.g. 5m (at most 15m). It works once.
    #[arg(long, default_value = "5m", value_parser = common::config::parse_duration)]
    pub ttl: Duration,
    /// The service's address as the browser reaches it.
    #[arg(
        long,
        env = "ORDERS_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub base_url: String,
    /// The secret the service uses (the same setting as `serve`).
    #[arg(long, env = "ORDERS_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Where the generated secret lives (the same setting as `serve`).
    #[command(flatten)]
    pub database: DatabaseConfig,
}

/// Prints the link on stdout.
pub fn run(args: ConsoleLinkArgs) -> anyhow::Result<()> {
    let secret =
        super::token::existing_secret(args.jwt_secret.as_deref(), &args.database.data_dir)?;
    let token = ConsoleKeys::derive(&secret).issue_link(&args.sub, args.ttl)?;
    outln!("{}", link(&args.base_url, &token));
    Ok(())
}

/// The login page's address for `token` at `base_url`.
pub fn link(base_url: &str, token: &str) -> String {
    format!(
        "{}/console/login?token={token}",
        base_url.trim_end_matches('/')
    )
}
