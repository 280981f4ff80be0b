//! The console's charts: samples of the service's own metrics, taken every few seconds and kept
//! for the last minutes, so that the console needs no Prometheus.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_parse::{Scrape, Value};
use tokio::sync::watch;

use store::Store;

/// How often a sample is taken.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(2);

/// How many samples are kept: ten minutes' worth.
const KEPT: usize = 300;

/// The metrics a chart is drawn from, as of one moment (counters are totals since start).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// When it was taken.
    pub at: DateTime<Utc>,
    /// `commands_total`, all commands and outcomes.
    pub commands: f64,
    /// `command_conflicts_total`.
    pub conflicts: f64,
    /// `cache_requests_total{result="hit"}`.
    pub cache_hits: f64,
    /// `cache_requests_total`, hits and misses.
    pub cache_lookups: f64,
    /// `command_duration_seconds` buckets summed over commands: (upper bound, count).
    pub latency_buckets: Vec<(f64, f64)>,
    /// Database connections in use.
    pub pool_in_use: f64,
    /// Database connections open (in use and idle).
    pub pool_open: f64,
}

/// One point of each chart, between two samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// The later sample's time.
    pub at: DateTime<Utc>,
    /// Commands per second.
    pub command_rate: f64,
    /// 99th percentile of the interval's command latencies, in milliseconds (`None` without
    /// commands).
    pub p99_ms: Option<f64>,
    /// Conflicts per second.
    pub conflict_rate: f64,
    /// Cache hits ÷ lookups (`None` without lookups).
    pub cache_hit_ratio: Option<f64>,
    /// Connections in use ÷ open.
    pub pool_use: f64,
}

/// Renders the process's metrics as Prometheus text (what `/metrics` serves).
pub type MetricsText = Arc<dyn Fn() -> String + Send + Sync>;

/// The samples of the last minutes, shared by the sampler and the pages.
#[derive(Debug, Clone, Default)]
pub struct HealthSamples {
    samples: Arc<Mutex<VecDeque<Sample>>>,
}

impl HealthSamples {
    /// Samples `store`'s pool and the process's metrics (`metrics_text`, the Prometheus text the
    /// service serves at `/metrics`) every [`SAMPLE_EVERY`] until `shutdown`.
    pub fn start(
        store: Store,
        metrics_text: MetricsText,
        mut shutdown: watch::Receiver<bool>,
    ) -> Self {
        let samples = Self::default();
        let shared = samples.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            loop {
                tokio::select! {
                    _ = tick.tick() => shared.push(take(&store, &metrics_text)),
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
            }
        });
        samples
    }

    fn push(&self, sample: Sample) {
        let Ok(mut samples) = self.samples.lock() else {
            return;
        };
        if samples.len() == KEPT {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// The charts' points, oldest first.
    pub fn points(&self) -> Vec<Point> {
        let Ok(samples) = self.samples.lock() else {
            return Vec::new();
        };
        samples
            .iter()
            .zip(samples.iter().skip(1))
            .map(|(before, after)| point(before, after))
            .collect()
    }
}

fn take(store: &Store, metrics_text: &MetricsText) -> Sample {
    let (in_use, idle) = store.pool_connections();
    let text = metrics_text();
    let mut sample = parse(&text);
    sample.at = Utc::now();
    sample.pool_in_use = in_use as f64;
    sample.pool_open = (in_use + idle) as f64;
    sample
}

/// The series a sample needs, from Prometheus text.
pub fn parse(text: &str) -> Sample {
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    let Ok(scrape) = Scrape::parse(lines) else {
        return Sample::default();
    };
    let mut sample = Sample::default();
    for series in scrape.samples {
        match (series.metric.as_str(), &series.value) {
            ("commands_total", Value::Counter(v) | Value::Untyped(v)) => sample.commands += v,
            ("command_conflicts_total", Value::Counter(v) | Value::Untyped(v)) => {
                sample.conflicts += v
            }
            ("cache_requests_total", Value::Counter(v) | Value::Untyped(v)) => {
                sample.cache_lookups += v;
                if series.labels.get("result") == Some("hit") {
                    sample.cache_hits += v;
                }
            }
            ("command_duration_seconds", Value::Histogram(buckets)) => {
                for bucket in buckets {
                    match sample
                        .latency_buckets
                        .iter_mut()
                        .find(|(le, _)| *le == bucket.less_than)
                    {
                        Some((_, count)) => *count += bucket.count,
                        None => sample
                            .latency_buckets
                            .push((bucket.less_than, bucket.count)),
                    }
                }
            }
            _ => {}
        }
    }
    sample.latency_buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    sample
}

fn point(before: &Sample, after: &Sample) -> Point {
    let seconds = (after.at - before.at).as_seconds_f64().max(0.001);
    // Counters restart at zero only with the process, which also empties the samples.
    let delta = |a: f64, b: f64| (b - a).max(0.0);
    let lookups = delta(before.cache_lookups, after.cache_lookups);
    Point {
        at: after.at,
        command_rate: delta(before.commands, after.commands) / seconds,
        p99_ms: p99(&before.latency_buckets, &after.latency_buckets).map(|s| s * 1000.0),
        conflict_rate: delta(before.conflicts, after.conflicts) / seconds,
        cache_hit_ratio: (lookups > 0.0)
            .then(|| delta(before.cache_hits, after.cache_hits) / lookups),
        pool_use: if after.pool_open > 0.0 {
            after.pool_in_use / after.pool_open
        } else {
            0.0
        },
    }
}

/// The upper bound of the bucket holding the 99th percentile of the observations between two
/// cumulative histograms (a bucket's bound, as Prometheus' `histogram_quantile` would, without
/// interpolating).
fn p99(before: &[(f64, f64)], after: &[(f64, f64)]) -> Option<f64> {
    let count_before = |le: f64| {
        before
            .iter()
            .find(|(bound, _)| *bound == le)
            .map_or(0.0, |(_, count)| *count)
    };
    let deltas: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, count)| (*le, (count - count_before(*le)).max(0.0)))
        .collect();
    let total = deltas.last().map(|(_, count)| *count)?;
    if total <= 0.0 {
        return None;
    }
    let rank = total * 0.99;
    let (le, _) = deltas.iter().find(|(_, count)| *count >= rank)?;
    // The +Inf bucket says only "slower than the largest bound": show that bound.
    Some(if le.is_finite() {
        *le
    } else {
        deltas
            .iter()
            .rev()
            .map(|(bound, _)| *bound)
            .find(|bound| bound.is_finite())
            .unwrap_or(0.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE commands_total counter
commands_total{command=\"create\",outcome=\"accepted\"} 90
commands_total{command=\"confirm\",outcome=\"conflict\"} 10
# TYPE command_conflicts_total counter
command_conflicts_total 4
# TYPE cache_requests_total counter
cache_requests_total{result=\"hit\"} 30
cache_requests_total{result=\"miss\"} 10
# TYPE command_duration_seconds histogram
command_duration_seconds_bucket{command=\"create\",le=\"0.005\"} 80
command_duration_seconds_bucket{command=\"create\",le=\"0.01\"} 90
command_duration_seconds_bucket{command=\"create\",le=\"+Inf\"} 90
command_duration_seconds_sum{command=\"create\"} 0.3
command_duration_seconds_count{command=\"create\"} 90
command_duration_seconds_bucket{command=\"confirm\",le=\"0.005\"} 0
command_duration_seconds_bucket{command=\"confirm\",le=\"0.01\"} 9
command_duration_seconds_bucket{command=\"confirm\",le=\"+Inf\"} 10
command_duration_seconds_sum{command=\"confirm\"} 0.2
command_duration_seconds_count{command=\"confirm\"} 10
";

    #[test]
    fn a_sample_sums_the_series_over_their_labels() {
        let sample = parse(TEXT);
        assert_eq!(sample.commands, 100.0);
        assert_eq!(sample.conflicts, 4.0);
        assert_eq!((sample.cache_hits, sample.cache_lookups), (30.0, 40.0));
        assert_eq!(
            sample.latency_buckets,
            vec![(0.005, 80.0), (0.01, 99.0), (f64::INFINITY, 100.0)]
        );
    }

    #[test]
    fn a_point_is_the_rates_between_two_samples() {
        let before = Sample {
            at: DateTime::from_timestamp(1_000, 0).unwrap(),
            ..Sample::default()
        };
        let after = Sample {
            at: DateTime::from_timestamp(1_002, 0).unwrap(),
            pool_in_use: 1.0,
            pool_open: 4.0,
            ..parse(TEXT)
        };
        let point = point(&before, &after);
        assert_eq!(point.command_rate, 50.0);
        assert_eq!(point.conflict_rate, 2.0);
        assert_eq!(point.cache_hit_ratio, Some(0.75));
        assert_eq!(point.pool_use, 0.25);
        // 99 of 100 took at most 10 ms; the 100th is in +Inf, past the 99th percentile.
        assert_eq!(point.p99_ms, Some(10.0));
        let idle = super::point(
            &after,
            &Sample {
                at: after.at + chrono::TimeDelta::seconds(2),
                ..after.clone()
            },
        );
        assert_eq!(
            (idle.command_rate, idle.p99_ms, idle.cache_hit_ratio),
            (0.0, None, None)
        );
    }

    #[test]
    fn the_slowest_bucket_reads_as_the_largest_bound() {
        let before = [(0.01, 0.0), (f64::INFINITY, 0.0)];
        let after = [(0.01, 0.0), (f64::INFINITY, 5.0)];
        assert_eq!(p99(&before, &after), Some(0.01));
    }
}
