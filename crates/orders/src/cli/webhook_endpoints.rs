//! `orders webhooks …`: the webhook endpoints and how their deliveries go, for an operator at
//! the database (the API manages them: `POST /webhooks`, `PATCH /webhooks/{id}`, …).

use clap::Subcommand;
use store::Store;
use webhooks::{EndpointReader, EndpointStatus};

use super::projections::DatabaseArgs;

/// The `webhooks` subcommands.
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Each endpoint: state, checkpoint, lag, deliveries and the last attempt (why it fails).
    List(DatabaseArgs),
}

/// Runs a `webhooks` subcommand.
pub async fn run(command: WebhooksCommand) -> anyhow::Result<()> {
    match command {
        WebhooksCommand::List(args) => {
            let store = Store::open_existing(&args.database).await?;
            let all = EndpointReader::new(&store).list().await?;
            if all.is_empty() {
                outln!("no webhook endpoints (register one with POST /webhooks)");
            }
            for status in &all {
                outln!("{}", describe(status));
            }
            Ok(())
        }
    }
}

/// One endpoint in a few lines.
fn describe(status: &EndpointStatus) -> String {
    let endpoint = &status.endpoint;
    let health = &endpoint.health;
    let position = status.checkpoint.as_ref().map_or(0, |c| c.position);
    let holder = status
        .checkpoint
        .as_ref()
        .and_then(|c| c.holder.as_ref())
        .filter(|h| h.expires_in.is_some())
        .map_or_else(|| "none".to_owned(), |h| h.owner.clone());
    let mut text = format!(
        "{id} {state} {url}\n  checkpoint {position}, lag {lag}, delivered {delivered}, delivering instance {holder}",
        id = endpoint.id,
        state = endpoint.state.as_str(),
        url = endpoint.url,
        lag = status.lag(),
        delivered = health.delivered,
    );
    if let Some(since) = health.failing_since {
        text.push_str(&format!(
            "\n  failing since {} ({} attempts)",
            since.to_rfc3339(),
            health.attempts
        ));
    }
    if let Some(attempt) = &health.last_attempt {
        let status = attempt
            .status
            .map_or_else(|| "no answer".to_owned(), |s| format!("HTTP {s}"));
        text.push_str(&format!(
            "\n  last attempt {}: {status}{}",
            attempt.at.to_rfc3339(),
            attempt
                .error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        ));
    }
    text
}
