//! The `orders` binary. `orders` alone (or `orders serve`) runs the service; see `orders --help`.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = orders::cli::Cli::parse();
    let _telemetry = match common::telemetry::init(&cli.telemetry) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let serves = cli.serves();
    match orders::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        // `orders feed tail | head`: the reader has all it wanted.
        Err(error) if orders::cli::is_broken_pipe(&error) => ExitCode::SUCCESS,
        // Once: the service's in its log (where its operators look), a tool's on stderr.
        Err(error) if serves => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
