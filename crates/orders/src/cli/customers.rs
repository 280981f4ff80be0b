//! `orders customers forget <id>` and `orders keys rotate-master`: personal data from the
//! command line.

use clap::{Args, Subcommand};
use common::DatabaseConfig;
use uuid::Uuid;

use personal_data::cipher::rewrap;
use personal_data::{KeyRing, KeyTable, MasterKey, forget_customer};
use store::Store;

/// `customers` subcommands.
#[derive(Debug, Subcommand)]
pub enum CustomersCommand {
    /// Destroy a customer's data key: their personal data reads as erased from then on
    /// (idempotent; rerun it to finish an interrupted one).
    Forget(ForgetArgs),
}

/// Settings of `customers forget`.
#[derive(Debug, Clone, Args)]
pub struct ForgetArgs {
    /// The customer id.
    pub id: String,
    /// Master key (as for `serve`).
    #[arg(long, env = "ORDERS_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
    /// Database.
    #[command(flatten)]
    pub database: DatabaseConfig,
}

/// `keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Re-wrap every customer's data key under a new master key, in one transaction; events are
    /// not touched. Reads the current key as `serve` does and the new one from
    /// `ORDERS_NEW_MASTER_KEY`; then configure the new key and restart the instances.
    RotateMaster(RotateArgs),
}

/// Settings of `keys rotate-master`.
#[derive(Debug, Clone, Args)]
pub struct RotateArgs {
    /// The current master key (as for `serve`).
    #[arg(long, env = "ORDERS_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
    /// The new master key, base64 of 32 bytes (`openssl rand -base64 32`).
    #[arg(long, env = "ORDERS_NEW_MASTER_KEY", hide_env_values = true)]
    pub new_master_key: String,
    /// Database.
    #[command(flatten)]
    pub database: DatabaseConfig,
}

/// Forgets a customer.
pub async fn forget(args: ForgetArgs) -> anyhow::Result<()> {
    let id = Uuid::parse_str(args.id.trim())
        .map_err(|_| anyhow::anyhow!("{:?} is not a customer id: expected a UUID", args.id))?;
    let store = Store::open_for_tool(&args.database).await?;
    let master = MasterKey::load(args.master_key.as_deref(), &args.database.data_dir)?
        .ok_or_else(|| anyhow::anyhow!("no master key: set ORDERS_MASTER_KEY as for `serve`, or run from the service's data directory"))?;
    let ring = KeyRing::new(KeyTable::new(store.db()), master);
    let metadata =
        domain::EventMetadata::new(uuid::Uuid::now_v7(), chrono::Utc::now()).with_user("cli");
    let record = forget_customer(&ring, &store, id, metadata).await?;
    outln!(
        "customer {id} forgotten at {} by {}",
        record.forgotten_at.to_rfc3339(),
        record.forgotten_by
    );
    Ok(())
}

/// Rotates the master key.
pub async fn rotate(args: RotateArgs) -> anyhow::Result<()> {
    let store = Store::open_for_tool(&args.database).await?;
    let old =
        MasterKey::load(args.master_key.as_deref(), &args.database.data_dir)?.ok_or_else(|| {
            anyhow::anyhow!("no current master key: set ORDERS_MASTER_KEY as for `serve`")
        })?;
    let new = MasterKey::from_base64(&args.new_master_key)?;
    let table = KeyTable::new(store.db());
    let mut rewrapped = Vec::new();
    for (customer, wrapped, master_key_id) in table.active().await? {
        if master_key_id == new.id() {
            continue; // a rotation that stopped half-way (there is none: it is one transaction)
        }
        let key = rewrap(&old, &new, customer, &wrapped).ok_or_else(|| {
            anyhow::anyhow!("the key of customer {customer} is wrapped under master key {master_key_id}, not the current {}", old.id())
        })?;
        rewrapped.push((customer, key));
    }
    table.rewrap_all(&rewrapped, new.id()).await?;
    let endpoints =
        webhooks::rewrap_secrets(&webhooks::EndpointTable::new(store.db()), &old, &new).await?;
    outln!(
        "{} data keys and the signing secrets of {endpoints} webhook endpoints re-wrapped from master key {} to {}; configure the new key (ORDERS_MASTER_KEY) and restart every instance",
        rewrapped.len(),
        old.id(),
        new.id()
    );
    Ok(())
}
