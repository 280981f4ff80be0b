//! `orders token`: mint a bearer token for trying the API.

use std::time::Duration;

use clap::Args;
use common::DatabaseConfig;

use crate::auth::{JwtKeys, Role, SECRET_FILE, load_secret};

/// Settings of `token`.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The caller's role.
    #[arg(long, value_enum)]
    pub role: Role,
    /// Subject: the customer's UUID for `customer`; any name for `staff`.
    #[arg(long)]
    pub sub: String,
    /// How long the token is valid, e.g. 30m, 24h (at most the service's --token-max-ttl).
    #[arg(long, default_value = "1440m", value_parser = common::config::parse_duration)]
    pub ttl: Duration,
    /// The secret the service uses (the same setting as `serve`).
    #[arg(long, env = "ORDERS_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// The longest lifetime the service accepts (the same setting as `serve`).
    #[arg(long, env = "ORDERS_TOKEN_MAX_TTL", default_value = "30d", value_parser = common::config::parse_duration)]
    pub token_max_ttl: Duration,
    /// Where the generated secret lives (the same setting as `serve`).
    #[command(flatten)]
    pub database: DatabaseConfig,
}

/// Prints the token on stdout.
pub fn run(args: TokenArgs) -> anyhow::Result<()> {
    let secret = existing_secret(args.jwt_secret.as_deref(), &args.database.data_dir)?;
    let token = JwtKeys::new(&secret)
        .with_max_ttl(args.token_max_ttl)
        .issue(&args.sub, args.role, args.ttl)?;
    outln!("{token}");
    Ok(())
}

/// The service's token secret, configured or in `data_dir`; never creates one, and says where
/// it looked when there is none.
pub(super) fn existing_secret(
    configured: Option<&str>,
    data_dir: &std::path::Path,
) -> anyhow::Result<Vec<u8>> {
    let Some(secret) = load_secret(configured, data_dir)? else {
        anyhow::bail!(
            "no token secret: ORDERS_JWT_SECRET is unset and {} does not exist. Start the service once (`orders serve`) to generate it, or give this command the service's --data-dir or ORDERS_JWT_SECRET",
            data_dir.join(SECRET_FILE).display()
        );
    };
    Ok(secret)
}
