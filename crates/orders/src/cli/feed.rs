//! `orders feed tail`: follow the global feed.

use std::time::Duration;

use clap::Args;
use common::DatabaseConfig;
use event_store::Feed;

use super::streams::{Format, print_events};
use store::Store;

/// Settings of `feed tail`.
#[derive(Debug, Clone, Args)]
pub struct TailArgs {
    /// Start after this position (default: the last 10 events).
    #[arg(long)]
    pub after: Option<u64>,
    /// Keep following new events until interrupted.
    #[arg(long, short)]
    pub follow: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Database.
    #[command(flatten)]
    pub database: DatabaseConfig,
}

/// Events per read.
const PAGE: usize = 500;

/// Prints the feed from `after`, then follows it with `--follow`.
pub async fn tail(args: TailArgs) -> anyhow::Result<()> {
    let store = Store::open_existing(&args.database).await?;
    let mut after = match args.after {
        Some(after) => after,
        None => head(&store).await?.saturating_sub(10),
    };
    let mut header = true;
    loop {
        let page = store.read_all(after, PAGE).await?;
        if let Some(last) = page.last().and_then(|e| e.position) {
            after = last;
            print_events(&page, args.format, header)?;
            header = false;
        }
        if page.len() < PAGE {
            if !args.follow {
                return Ok(());
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        }
    }
}

async fn head(store: &Store) -> anyhow::Result<u64> {
    Ok(store.head().await?)
}
