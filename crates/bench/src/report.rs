//! The summary: medians over rounds, the append/raw ratio, the markdown table and the JSON file.

use std::time::Duration;

use serde_json::{Value, json};

use crate::stats::{median, median_duration};
use crate::workload::{Case, CaseResult, Method};

/// One row of the table: a case's medians over all rounds.
#[derive(Debug, Clone)]
pub struct Row {
    /// The case.
    pub case: Case,
    /// Rounds measured.
    pub rounds: usize,
    /// Median events per second.
    pub events_per_sec: f64,
    /// Median calls per second.
    pub calls_per_sec: f64,
    /// Median of the rounds' p50 latencies.
    pub p50: Duration,
    /// Median of the rounds' p99 latencies.
    pub p99: Duration,
    /// For appends: median events/s over the raw median at the same batch size and concurrency.
    pub ratio_vs_raw: Option<f64>,
}

/// Rows for every case in `results`, in first-seen order (raw before its append counterpart).
pub fn summarize(results: &[CaseResult]) -> Vec<Row> {
    let mut cases: Vec<Case> = Vec::new();
    for result in results {
        if !cases.contains(&result.case) {
            cases.push(result.case);
        }
    }
    let row = |case: Case| {
        let runs: Vec<&CaseResult> = results.iter().filter(|r| r.case == case).collect();
        let events: Vec<f64> = runs.iter().map(|r| r.events_per_sec()).collect();
        let calls: Vec<f64> = runs.iter().map(|r| r.calls_per_sec()).collect();
        let p50: Vec<Duration> = runs.iter().map(|r| r.latency.p50).collect();
        let p99: Vec<Duration> = runs.iter().map(|r| r.latency.p99).collect();
        Row {
            case,
            rounds: runs.len(),
            events_per_sec: median(&events),
            calls_per_sec: median(&calls),
            p50: median_duration(&p50),
            p99: median_duration(&p99),
            ratio_vs_raw: None,
        }
    };
    let mut rows: Vec<Row> = cases.into_iter().map(row).collect();
    let raw: Vec<(Case, f64)> = rows
        .iter()
        .filter(|r| r.case.method == Method::Raw)
        .map(|r| (r.case, r.events_per_sec))
        .collect();
    for row in rows.iter_mut().filter(|r| r.case.method == Method::Append) {
        row.ratio_vs_raw = raw
            .iter()
            .find(|(c, _)| c.batch == row.case.batch && c.writers == row.case.writers)
            .filter(|(_, eps)| *eps > 0.0)
            .map(|(_, eps)| row.events_per_sec / eps);
    }
    rows
}

/// `append_eps / raw_eps`, when the raw rate is positive.
pub fn ratio(append: &CaseResult, raw: &CaseResult) -> Option<f64> {
    let raw_eps = raw.events_per_sec();
    (raw_eps > 0.0).then(|| append.events_per_sec() / raw_eps)
}

/// A latency in milliseconds with sensible precision.
pub fn ms(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1_000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// One line for a finished case.
pub fn case_line(result: &CaseResult, ratio: Option<f64>) -> String {
    let mut line = format!(
        "{:<28} {:>10.0} events/s {:>9.0} calls/s  p50 {:>9}  p99 {:>9}  max {:>9}  ({} calls in {:.2}s)",
        result.case.to_string(),
        result.events_per_sec(),
        result.calls_per_sec(),
        ms(result.latency.p50),
        ms(result.latency.p99),
        ms(result.latency.max),
        result.calls,
        result.elapsed.as_secs_f64(),
    );
    if let Some(ratio) = ratio {
        line.push_str(&format!("  ratio vs raw {ratio:.2}"));
    }
    let cost = &result.cost;
    line.push_str(&format!(
        "\n{:<28} server: {:.0} WAL bytes/event, {:.2} write xacts/call",
        "",
        cost.wal_per_event(result.case.batch),
        cost.transactions_per_call(),
    ));
    if let Some(lag) = result.unsequenced_at_end {
        line.push_str(&format!(
            ", {lag} events unsequenced at end, sequencer drained them in {}",
            ms(cost.sequencer_drain)
        ));
    }
    line
}

/// The markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| workload | writers | events/s | calls/s | p50 | p99 | ratio vs raw |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let ratio = row
            .ratio_vs_raw
            .map_or_else(|| "–".to_owned(), |r| format!("{r:.2}"));
        out.push_str(&format!(
            "| {} | {} | {:.0} | {:.0} | {} | {} | {} |\n",
            row.case.workload(),
            row.case.writers,
            row.events_per_sec,
            row.calls_per_sec,
            ms(row.p50),
            ms(row.p99),
            ratio
        ));
    }
    out
}

/// Every run and the summary, as JSON.
pub fn json(results: &[CaseResult], rows: &[Row], settings: Value) -> Value {
    let secs = |d: Duration| d.as_secs_f64();
    json!({
        "settings": settings,
        "summary": rows.iter().map(|r| json!({
            "workload": r.case.workload(),
            "writers": r.case.writers,
            "batch": r.case.batch,
            "rounds": r.rounds,
            "events_per_sec": r.events_per_sec,
            "calls_per_sec": r.calls_per_sec,
            "p50_secs": secs(r.p50),
            "p99_secs": secs(r.p99),
            "ratio_vs_raw": r.ratio_vs_raw,
        })).collect::<Vec<_>>(),
        "runs": results.iter().map(|r| json!({
            "workload": r.case.workload(),
            "writers": r.case.writers,
            "batch": r.case.batch,
            "calls": r.calls,
            "events": r.events,
            "elapsed_secs": secs(r.elapsed),
            "events_per_sec": r.events_per_sec(),
            "calls_per_sec": r.calls_per_sec(),
            "p50_secs": secs(r.latency.p50),
            "p99_secs": secs(r.latency.p99),
            "max_secs": secs(r.latency.max),
            "unsequenced_at_end": r.unsequenced_at_end,
            "sequencer_drain_secs": secs(r.cost.sequencer_drain),
            "total_calls": r.cost.calls,
            "wal_bytes": r.cost.wal_bytes,
            "wal_bytes_per_event": r.cost.wal_per_event(r.case.batch),
            "write_transactions": r.cost.write_transactions,
            "write_transactions_per_call": r.cost.transactions_per_call(),
        })).collect::<Vec<_>>(),
    })
}
