//! `orders kafka consume`: watch the topic through a consumer group, optionally checking the
//! consumer contract.

use std::io::Write;
use std::time::Duration;

use clap::Args;
use serde_json::json;

use crate::check::{Checker, Verdict};
use crate::config::{DEFAULT_TOPIC, Properties, PropertiesParser};
use crate::consume::{ConsumerOptions, EventConsumer, Received};

/// Settings of `orders kafka consume`.
#[derive(Debug, Clone, Args)]
pub struct ConsumeArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "KAFKA_BROKERS")]
    pub brokers: String,
    /// Topic to read.
    #[arg(long, env = "KAFKA_TOPIC", default_value = DEFAULT_TOPIC)]
    pub topic: String,
    /// Consumer group. A new group reads from the beginning; an existing one resumes.
    #[arg(long, default_value = "orders-kafka-consume")]
    pub group: String,
    /// Stop after this many distinct events (duplicates do not count).
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop when no message arrives for this long.
    #[arg(long, default_value = "30s", value_parser = common::config::parse_duration)]
    pub timeout: Duration,
    /// Check the consumer contract (per order: versions 1, 2, 3… after dedupe, key and headers
    /// match the value); exit non-zero on a violation. Use a new group so it starts at version 1.
    #[arg(long)]
    pub check: bool,
    /// Print one JSON object per message instead of a line of text.
    #[arg(long)]
    pub json: bool,
    /// Extra librdkafka consumer settings, `key=value,key=value`.
    #[arg(long, env = "KAFKA_PROPERTIES", hide_env_values = true, value_parser = PropertiesParser, default_value = "")]
    pub properties: Properties,
}

/// What a `consume` run saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumeSummary {
    /// Distinct events.
    pub events: u64,
    /// Redeliveries skipped.
    pub duplicates: u64,
    /// Contract violations.
    pub problems: usize,
}

/// Consumes until `--count` distinct events or `--timeout` without a message, printing each
/// message to `out`. With `--check`, a violation makes it fail.
pub async fn consume(args: &ConsumeArgs, out: &mut impl Write) -> anyhow::Result<ConsumeSummary> {
    let consumer = EventConsumer::connect(&ConsumerOptions {
        brokers: args.brokers.clone(),
        topic: args.topic.clone(),
        group: args.group.clone(),
        properties: args.properties.clone(),
    })?;
    let mut checker = Checker::new();
    while args.count.is_none_or(|n| checker.new_events() < n) {
        let Some(message) = consumer.next(args.timeout).await? else {
            break;
        };
        let verdict = checker.observe(&message);
        print(out, &message, &verdict, args.json)?;
    }
    let summary = ConsumeSummary {
        events: checker.new_events(),
        duplicates: checker.duplicates(),
        problems: checker.problems().len(),
    };
    eprintln!(
        "{} events, {} duplicates skipped, {} problems",
        summary.events, summary.duplicates, summary.problems
    );
    if args.check {
        if let Some(count) = args.count
            && summary.events < count
        {
            anyhow::bail!(
                "check failed: {} events arrived, expected {count}",
                summary.events
            );
        }
        if summary.problems > 0 {
            anyhow::bail!("check failed:\n  {}", checker.problems().join("\n  "));
        }
    }
    Ok(summary)
}

fn print(
    out: &mut impl Write,
    message: &Received,
    verdict: &Verdict,
    as_json: bool,
) -> std::io::Result<()> {
    let status = match verdict {
        Verdict::New => "new",
        Verdict::Duplicate => "duplicate",
        Verdict::Problem(_) => "problem",
    };
    if as_json {
        let line = json!({
            "partition": message.partition,
            "offset": message.offset,
            "key": message.key,
            "headers": message.headers,
            "status": status,
            "event": message.event.as_ref().ok(),
            "error": message.event.as_ref().err(),
        });
        return writeln!(out, "{line}");
    }
    match (&message.event, verdict) {
        (Ok(event), _) => writeln!(
            out,
            "{}@{:<6} {} v{:<3} {:<20} position {}{}",
            message.partition,
            message.offset,
            event.order_id,
            event.order_version,
            event.event_type,
            event.position,
            match verdict {
                Verdict::New => String::new(),
                Verdict::Duplicate => "  (duplicate, skipped)".into(),
                Verdict::Problem(p) => format!("  PROBLEM: {p}"),
            }
        ),
        (Err(error), _) => writeln!(
            out,
            "{}@{:<6} undecodable: {error}",
            message.partition, message.offset
        ),
    }
}
