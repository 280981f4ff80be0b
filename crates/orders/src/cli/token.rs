//! `orders token`: mint a bearer token for trying the API.

use std::time::Duration;

use clap::Args;
use common::DatabaseConfig;

use crate::auth::{JwtKeys, Role, load_or_create_secret};

/// Settings of `token`.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The caller's role.
    #[arg(long, value_enum)]
    pub role: Role,
    /// Subject: the customer's UUID for `customer`; any name for `staff`.
    #[arg(long)]
    pub sub: String,
    /// How long the token is valid, e.g. 30m, 24h is written 1440m.
    #[arg(long, default_value = "1440m", value_parser = common::config::parse_duration)]
    pub ttl: Duration,
    /// The secret the service uses (the same setting as `serve`).
    #[arg(long, env = "ORDERS_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Where the generated secret lives (the same setting as `serve`).
    #[command(flatten)]
    pub database: DatabaseConfig,
}

/// Prints the token on stdout.
pub fn run(args: TokenArgs) -> anyhow::Result<()> {
    let secret = load_or_create_secret(args.jwt_secret.as_deref(), &args.database.data_dir)?;
    let token = JwtKeys::new(&secret).issue(&args.sub, args.role, args.ttl)?;
    println!("{token}");
    Ok(())
}
