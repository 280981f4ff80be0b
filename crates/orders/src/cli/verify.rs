//! `orders verify`: deterministic replay verification.
//!
//! Re-folds every stream with the current code (and upcasters) and checks that versions are
//! contiguous and in feed order, that stored snapshots equal the replayed state at their version,
//! and that the read model equals what the events say. Reports every difference; fails if any.

use std::collections::BTreeMap;

use clap::Args;
use common::DatabaseConfig;
use domain::{Aggregate, OrderAggregate, OrderEvent};
use event_store::{EventStore, Feed, RecordedEvent};
use uuid::Uuid;

use order_views::ReadModel;
use order_views::view::{OrderView, SummaryDelta, apply};
use store::Store;

/// Settings of `verify`.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// Database.
    #[command(flatten)]
    pub database: DatabaseConfig,
}

/// What verification found.
#[derive(Debug, Default)]
pub struct Report {
    /// Streams checked.
    pub streams: usize,
    /// Events checked.
    pub events: usize,
    /// Snapshots compared.
    pub snapshots: usize,
    /// Read-model rows compared.
    pub rows: usize,
    /// Every difference, in words.
    pub problems: Vec<String>,
}

/// Runs verification and prints the report; an error when anything differs.
pub async fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let store = Store::open_existing(&args.database).await?;
    let report = verify(&store).await?;
    for problem in &report.problems {
        outln!("DIFF {problem}");
    }
    outln!(
        "verified {} streams, {} events, {} snapshots, {} read-model rows: {} difference(s)",
        report.streams,
        report.events,
        report.snapshots,
        report.rows,
        report.problems.len()
    );
    anyhow::ensure!(
        report.problems.is_empty(),
        "verification found {} difference(s)",
        report.problems.len()
    );
    Ok(())
}

/// Verifies everything in `store`.
pub async fn verify(store: &Store) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let read_model = ReadModel::for_store(store);
    let (generation, checkpoint) = read_model
        .checkpoint()
        .await?
        .map_or((1, 0), |c| (c.generation, c.position));
    let streams = read_feed(store, &mut report).await?;
    let mut summary = SummaryDelta::default();
    for (id, events) in &streams {
        report.streams += 1;
        let versions: Vec<u64> = events.iter().map(|e| e.version).collect();
        if versions != (1..=events.len() as u64).collect::<Vec<_>>() {
            report.problems.push(format!(
                "stream {id}: versions in feed order are {versions:?}, expected 1..={}",
                events.len()
            ));
            continue;
        }
        if events[0].aggregate_type != OrderAggregate::TYPE {
            continue;
        }
        let decoded: Result<Vec<OrderEvent>, String> = events
            .iter()
            .map(crate::commands::decode::<OrderEvent>)
            .collect();
        let decoded = match decoded {
            Ok(decoded) => decoded,
            Err(error) => {
                report.problems.push(format!("stream {id}: {error}"));
                continue;
            }
        };
        check_snapshot(store, *id, &decoded, &mut report).await?;
        let expected = expected_row(events, &decoded, checkpoint, &mut summary);
        let actual = read_model.order(generation, *id).await?;
        if expected.is_some() || actual.is_some() {
            report.rows += 1;
        }
        if expected != actual {
            report.problems.push(format!(
                "read model row of order {id} differs: expected {}, found {}",
                describe(expected.as_ref()),
                describe(actual.as_ref())
            ));
        }
    }
    summary.compact();
    let mut expected_counts: Vec<(String, i64)> = summary.status_counts.into_iter().collect();
    expected_counts.sort();
    let stats = read_model.stats(generation).await?;
    if stats.orders_by_status != expected_counts {
        report.problems.push(format!(
            "orders by status: expected {expected_counts:?}, read model has {:?}",
            stats.orders_by_status
        ));
    }
    Ok(report)
}

async fn read_feed(
    store: &Store,
    report: &mut Report,
) -> anyhow::Result<BTreeMap<Uuid, Vec<RecordedEvent>>> {
    let mut streams: BTreeMap<Uuid, Vec<RecordedEvent>> = BTreeMap::new();
    let mut after = 0;
    loop {
        let page = store.read_all(after, 5_000).await?;
        let Some(last) = page.last().and_then(|e| e.position) else {
            break;
        };
        after = last;
        report.events += page.len();
        for event in page {
            streams.entry(event.aggregate_id).or_default().push(event);
        }
    }
    Ok(streams)
}

async fn check_snapshot(
    store: &Store,
    id: Uuid,
    events: &[OrderEvent],
    report: &mut Report,
) -> anyhow::Result<()> {
    let Some(snapshot) = store.load_snapshot(id).await? else {
        return Ok(());
    };
    if snapshot.schema_version != OrderAggregate::SNAPSHOT_VERSION {
        return Ok(()); // ignored by loads, so harmless
    }
    report.snapshots += 1;
    let at = usize::try_from(snapshot.version).unwrap_or(usize::MAX);
    if at > events.len() {
        report.problems.push(format!(
            "snapshot of {id} is at version {at}, beyond the stream's {}",
            events.len()
        ));
        return Ok(());
    }
    let replayed = serde_json::to_value(OrderAggregate::replay(&events[..at]))?;
    if replayed != snapshot.state {
        report.problems.push(format!(
            "snapshot of {id} at version {at} differs from the replayed state"
        ));
    }
    Ok(())
}

/// The row the projection should hold for a stream, given the events it has applied.
fn expected_row(
    events: &[RecordedEvent],
    decoded: &[OrderEvent],
    checkpoint: u64,
    summary: &mut SummaryDelta,
) -> Option<OrderView> {
    let mut row = None;
    for (recorded, event) in events.iter().zip(decoded) {
        if recorded.position.unwrap_or(u64::MAX) > checkpoint {
            break;
        }
        match apply(row.clone(), recorded, event, summary) {
            Ok(next) => row = Some(next),
            Err(_) => break, // parked by the projection as well
        }
    }
    row
}

fn describe(row: Option<&OrderView>) -> String {
    row.map_or_else(
        || "no row".to_owned(),
        |r| {
            format!(
                "{} v{} total {} {}",
                r.status, r.version, r.total_minor, r.currency
            )
        },
    )
}
