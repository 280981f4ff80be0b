//! `orders streams show <id>`: one stream's events with their metadata.

use clap::{Args, ValueEnum};
use common::DatabaseConfig;
use event_store::{EventStore, RecordedEvent};
use uuid::Uuid;

use personal_data::{KeyRing, KeyTable, MasterKey};
use store::Store;

/// How to print events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An aligned table, one event per line.
    Table,
    /// One JSON object per line.
    Json,
}

/// Settings of `streams show`.
#[derive(Debug, Clone, Args)]
pub struct ShowArgs {
    /// The stream (order) id.
    pub id: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Master key (as for `serve`), to show personal fields in plain text; without one they
    /// print sealed.
    #[arg(long, env = "ORDERS_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
    /// Database.
    #[command(flatten)]
    pub database: DatabaseConfig,
}

/// Prints the stream.
pub async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let id = Uuid::parse_str(args.id.trim())
        .map_err(|_| anyhow::anyhow!("{:?} is not a stream id: expected a UUID", args.id))?;
    let store = Store::open_existing(&args.database).await?;
    let mut events = store.load_events(id).await?;
    anyhow::ensure!(!events.is_empty(), "stream {id} has no events");
    if let Some(master) = MasterKey::load(args.master_key.as_deref(), &args.database.data_dir)? {
        let ring = KeyRing::new(KeyTable::new(store.db()), master);
        let customer = events[0].payload["customer_id"]
            .as_str()
            .and_then(|c| Uuid::parse_str(c).ok());
        if let Some(customer) = customer {
            ring.erase_legacy_events(customer, &mut events).await?;
        }
        for event in &mut events {
            ring.reveal(&mut event.payload).await?;
        }
    }
    print_events(&events, args.format, true)
}

/// Prints events in `format` on stdout.
pub fn print_events(events: &[RecordedEvent], format: Format, header: bool) -> anyhow::Result<()> {
    match format {
        Format::Json => {
            for event in events {
                outln!("{}", serde_json::to_string(event)?);
            }
        }
        Format::Table => {
            if header {
                outln!(
                    "{:>8} {:>8}  {:<24} {:<20} {:<36} {:<12} PAYLOAD",
                    "POSITION",
                    "VERSION",
                    "RECORDED",
                    "TYPE",
                    "CORRELATION",
                    "USER"
                );
            }
            for e in events {
                let position = e.position.map_or_else(|| "-".to_owned(), |p| p.to_string());
                let correlation = e
                    .metadata
                    .get("correlation_id")
                    .and_then(|v| v.as_str())
                    .unwrap_or("-");
                let user = e
                    .metadata
                    .get("user_id")
                    .and_then(|v| v.as_str())
                    .unwrap_or("-");
                outln!(
                    "{position:>8} {:>8}  {:<24} {:<20} {correlation:<36} {user:<12} {}",
                    e.version,
                    e.recorded_at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                    e.event_type,
                    e.payload
                );
            }
        }
    }
    Ok(())
}
