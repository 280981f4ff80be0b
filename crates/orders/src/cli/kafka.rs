//! `orders kafka …`: watch the topic the service publishes to.

use clap::Subcommand;
use outbox::cli::ConsumeArgs;

/// The `kafka` subcommands.
#[derive(Debug, Subcommand)]
pub enum KafkaCommand {
    /// Read the topic through a consumer group and print each event; `--check` verifies the
    /// consumer contract (per order, versions 1, 2, 3… after dedupe) and fails on a violation.
    Consume(ConsumeArgs),
}

/// Runs a `kafka` subcommand.
pub async fn run(command: KafkaCommand) -> anyhow::Result<()> {
    match command {
        KafkaCommand::Consume(args) => {
            let mut out = std::io::stdout();
            outbox::cli::consume(&args, &mut out).await.map(|_| ())
        }
    }
}
