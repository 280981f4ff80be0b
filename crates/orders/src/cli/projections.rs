//! `orders projections …`: inspect and rebuild read models.

use clap::{Args, Subcommand};
use common::DatabaseConfig;
use indicatif::{ProgressBar, ProgressStyle};

use crate::projections::rebuild::rebuild;
use crate::projections::{ORDERS_PROJECTION, ReadModel};
use crate::store::Store;

/// The `projections` subcommands.
#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Show each projection's checkpoint, lag and parked events.
    Status(DatabaseArgs),
    /// Rebuild the order read model from the first event into new tables, then switch to them.
    /// A running service keeps serving the old tables until the switch.
    Rebuild(DatabaseArgs),
}

/// Which database.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database.
    #[command(flatten)]
    pub database: DatabaseConfig,
}

/// Runs a `projections` subcommand.
pub async fn run(command: ProjectionsCommand) -> anyhow::Result<()> {
    match command {
        ProjectionsCommand::Status(args) => {
            let read_model = ReadModel::for_store(&Store::open_existing(&args.database).await?);
            let Some((generation, position)) = read_model.state(ORDERS_PROJECTION).await? else {
                outln!(
                    "{ORDERS_PROJECTION}: not started yet (the service creates it when it first starts)"
                );
                return Ok(());
            };
            let head = read_model.feed_head().await?;
            outln!(
                "{ORDERS_PROJECTION}: generation {generation}, position {position} of {head} (lag {} events)",
                head.saturating_sub(position)
            );
            let parked = read_model.parked(ORDERS_PROJECTION).await?;
            outln!("parked events: {}", parked.len());
            for (position, event_id, error) in parked {
                outln!("  position {position}  event {event_id}: {error}");
            }
            Ok(())
        }
        ProjectionsCommand::Rebuild(args) => {
            let read_model = ReadModel::for_store(&Store::open(&args.database).await?);
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} rebuilding [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            let report = rebuild(&read_model, |done, head| {
                bar.set_length(head);
                bar.set_position(done);
            })
            .await?;
            bar.finish_and_clear();
            outln!(
                "rebuilt {ORDERS_PROJECTION}: {} events into generation {}, now serving from position {}",
                report.events,
                report.generation,
                report.position
            );
            Ok(())
        }
    }
}
