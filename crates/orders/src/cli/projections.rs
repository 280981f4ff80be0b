//! `orders projections …`: inspect and rebuild read models, and operate on parked events.

use clap::{Args, Subcommand};
use common::DatabaseConfig;
use event_store::Feed;
use indicatif::{ProgressBar, ProgressStyle};
use read_model::RetryOutcome;

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
    /// Events a projection could not apply: list them, or retry or skip one.
    #[command(subcommand)]
    Parked(ParkedCommand),
}

/// The `projections parked` subcommands.
#[derive(Debug, Subcommand)]
pub enum ParkedCommand {
    /// List the parked events with their errors.
    List(DatabaseArgs),
    /// Apply a parked event again (after a fix); it stays parked if it fails again.
    Retry(ParkedArgs),
    /// Give up on a parked event: it is no longer parked and never applied.
    Skip(ParkedArgs),
}

/// Which database.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database.
    #[command(flatten)]
    pub database: DatabaseConfig,
}

/// Which parked event.
#[derive(Debug, Clone, Args)]
pub struct ParkedArgs {
    /// Its feed position (from `orders projections parked list`).
    pub position: u64,
    /// Database.
    #[command(flatten)]
    pub database: DatabaseConfig,
}

/// Runs a `projections` subcommand.
pub async fn run(command: ProjectionsCommand) -> anyhow::Result<()> {
    match command {
        ProjectionsCommand::Status(args) => {
            let store = Store::open_existing(&args.database).await?;
            let read_model = ReadModel::for_store(&store);
            let Some(checkpoint) = read_model.checkpoint().await? else {
                outln!(
                    "{ORDERS_PROJECTION}: not started yet (the service creates it when it first starts)"
                );
                return Ok(());
            };
            let head = store.head().await?;
            outln!(
                "{ORDERS_PROJECTION}: generation {}, position {} of {head} (lag {} events)",
                checkpoint.generation,
                checkpoint.position,
                head.saturating_sub(checkpoint.position)
            );
            match &checkpoint.holder {
                Some(holder) => match holder.expires_in {
                    Some(left) => outln!(
                        "held by {} (epoch {}, lease runs {:.1} s more)",
                        holder.owner,
                        holder.epoch,
                        left.as_secs_f64()
                    ),
                    None => outln!(
                        "not held: the lease of {} (epoch {}) has ended; a running instance takes it within a second",
                        holder.owner,
                        holder.epoch
                    ),
                },
                None => outln!("not held yet: no instance has run it"),
            }
            print_parked(&read_model).await
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
            let report = read_model
                .rebuild(|done, head| {
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
        ProjectionsCommand::Parked(ParkedCommand::List(args)) => {
            let read_model = ReadModel::for_store(&Store::open_existing(&args.database).await?);
            print_parked(&read_model).await
        }
        ProjectionsCommand::Parked(ParkedCommand::Retry(args)) => {
            // Writes: not an inspection connection (those are read-only).
            let read_model = ReadModel::for_store(&Store::open(&args.database).await?);
            let outcome = read_model.retry_parked(args.position).await?;
            audit("retry", args.position, &outcome);
            match outcome {
                RetryOutcome::Applied => {
                    outln!("position {}: applied, no longer parked", args.position);
                    Ok(())
                }
                RetryOutcome::StillFails(error) => {
                    anyhow::bail!(
                        "position {} still fails and stays parked: {error}",
                        args.position
                    )
                }
            }
        }
        ProjectionsCommand::Parked(ParkedCommand::Skip(args)) => {
            let read_model = ReadModel::for_store(&Store::open(&args.database).await?);
            read_model.skip_parked(args.position).await?;
            tracing::warn!(projection = ORDERS_PROJECTION, position = args.position, by = %operator(), "parked event skipped: it will never be applied");
            outln!("position {}: skipped, no longer parked", args.position);
            Ok(())
        }
    }
}

async fn print_parked(read_model: &ReadModel) -> anyhow::Result<()> {
    let parked = read_model.parked().await?;
    outln!("parked events: {}", parked.len());
    for event in parked {
        outln!(
            "  position {}  event {}  parked {}: {}",
            event.position,
            event.event_id,
            event.parked_at.to_rfc3339(),
            event.error
        );
    }
    Ok(())
}

/// Records an operator's action on a parked event in the log.
fn audit(action: &str, position: u64, outcome: &RetryOutcome) {
    tracing::warn!(projection = ORDERS_PROJECTION, action, position, by = %operator(), ?outcome, "parked event operated on");
}

/// Who ran the command, as the operating system names them.
fn operator() -> String {
    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
}
