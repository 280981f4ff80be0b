//! `orders projections …`: inspect and rebuild read models, and operate on parked events.

use clap::{Args, Subcommand};
use common::DatabaseConfig;
use event_store::Feed;
use indicatif::{ProgressBar, ProgressStyle};
use read_model::{Operate, RetryOutcome};

use order_views::ReadModels;
use store::Store;

/// The `projections` subcommands.
#[derive(Debug, Subcommand)]
pub enum ProjectionsCommand {
    /// Show each projection's checkpoint, lag and parked events.
    Status(DatabaseArgs),
    /// Rebuild read models from the first event into new tables, then switch to them. A running
    /// service keeps serving the old tables until the switch.
    Rebuild(RebuildArgs),
    /// Events a projection could not apply: list them, or retry or skip one.
    #[command(subcommand)]
    Parked(ParkedCommand),
}

/// The `projections parked` subcommands.
#[derive(Debug, Subcommand)]
pub enum ParkedCommand {
    /// List the parked events of every read model with their errors.
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

/// Settings of `projections rebuild`.
#[derive(Debug, Clone, Args)]
pub struct RebuildArgs {
    /// Only this read model (default: all).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(ReadModels::NAMES))]
    pub projection: Option<String>,
    /// Database.
    #[command(flatten)]
    pub database: DatabaseConfig,
}

/// Which parked event.
#[derive(Debug, Clone, Args)]
pub struct ParkedArgs {
    /// Its feed position (from `orders projections parked list`).
    pub position: u64,
    /// The read model that parked it.
    #[arg(long, default_value = ReadModels::NAMES[0],
        value_parser = clap::builder::PossibleValuesParser::new(ReadModels::NAMES))]
    pub projection: String,
    /// Database.
    #[command(flatten)]
    pub database: DatabaseConfig,
}

/// Runs a `projections` subcommand.
pub async fn run(command: ProjectionsCommand) -> anyhow::Result<()> {
    match command {
        ProjectionsCommand::Status(args) => {
            let store = Store::open_existing(&args.database).await?;
            let head = store.head().await?;
            for model in ReadModels::for_store(&store).all() {
                status(model, head).await?;
            }
            Ok(())
        }
        ProjectionsCommand::Rebuild(args) => {
            let store = Store::open_for_tool(&args.database).await?;
            let models = ReadModels::for_store(&store);
            for model in models.all() {
                if args.projection.as_deref().is_none_or(|p| p == model.name()) {
                    rebuild(model).await?;
                }
            }
            Ok(())
        }
        ProjectionsCommand::Parked(ParkedCommand::List(args)) => {
            let store = Store::open_existing(&args.database).await?;
            for model in ReadModels::for_store(&store).all() {
                print_parked(model).await?;
            }
            Ok(())
        }
        ProjectionsCommand::Parked(ParkedCommand::Retry(args)) => {
            // Writes: not an inspection connection (those are read-only).
            let store = Store::open_for_tool(&args.database).await?;
            let models = ReadModels::for_store(&store);
            retry(named(&models, &args.projection)?, args.position).await
        }
        ProjectionsCommand::Parked(ParkedCommand::Skip(args)) => {
            let store = Store::open_for_tool(&args.database).await?;
            let models = ReadModels::for_store(&store);
            skip(named(&models, &args.projection)?, args.position).await
        }
    }
}

/// The read model `name` (clap has already checked it is one of [`ReadModels::NAMES`]).
fn named<'a>(models: &'a ReadModels, name: &str) -> anyhow::Result<&'a dyn Operate> {
    models.named(name).ok_or_else(|| {
        anyhow::anyhow!(
            "there is no read model {name:?}; the read models are {:?}",
            ReadModels::NAMES
        )
    })
}

async fn status(engine: &dyn Operate, head: u64) -> anyhow::Result<()> {
    let name = engine.name();
    let Some(checkpoint) = engine.checkpoint().await? else {
        outln!("{name}: not started yet (the service creates it when it first starts)");
        return Ok(());
    };
    outln!(
        "{name}: generation {}, position {} of {head} (lag {} events)",
        checkpoint.generation,
        checkpoint.position,
        head.saturating_sub(checkpoint.position)
    );
    match &checkpoint.holder {
        Some(holder) => match holder.expires_in {
            Some(left) => outln!(
                "  held by {} (epoch {}, lease runs {:.1} s more)",
                holder.owner,
                holder.epoch,
                left.as_secs_f64()
            ),
            None => outln!(
                "  not held: the lease of {} (epoch {}) has ended; a running instance takes it within a second",
                holder.owner,
                holder.epoch
            ),
        },
        None => outln!("  not held yet: no instance has run it"),
    }
    print_parked(engine).await
}

async fn rebuild(engine: &dyn Operate) -> anyhow::Result<()> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} rebuilding [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let report = engine
        .rebuild(&|done, head| {
            bar.set_length(head);
            bar.set_position(done);
        })
        .await?;
    bar.finish_and_clear();
    outln!(
        "rebuilt {}: {} events into generation {}, now serving from position {}",
        engine.name(),
        report.events,
        report.generation,
        report.position
    );
    Ok(())
}

async fn retry(engine: &dyn Operate, position: u64) -> anyhow::Result<()> {
    let outcome = engine.retry_parked(position).await?;
    audit(engine.name(), "retry", position, &outcome);
    match outcome {
        RetryOutcome::Applied => {
            outln!("position {position}: applied, no longer parked");
            Ok(())
        }
        RetryOutcome::StillFails(error) => {
            anyhow::bail!("position {position} still fails and stays parked: {error}")
        }
    }
}

async fn skip(engine: &dyn Operate, position: u64) -> anyhow::Result<()> {
    engine.skip_parked(position).await?;
    tracing::warn!(projection = engine.name(), position, by = %operator(), "parked event skipped: it will never be applied");
    outln!("position {position}: skipped, no longer parked");
    Ok(())
}

async fn print_parked(engine: &dyn Operate) -> anyhow::Result<()> {
    let parked = engine.parked().await?;
    outln!("parked events of {}: {}", engine.name(), parked.len());
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
fn audit(projection: &str, action: &str, position: u64, outcome: &RetryOutcome) {
    tracing::warn!(projection, action, position, by = %operator(), ?outcome, "parked event operated on");
}

/// Who ran the command, as the operating system names them.
fn operator() -> String {
    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
}
