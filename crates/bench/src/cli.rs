//! Command-line flags of `store-bench`.

use std::time::Duration;

use clap::Parser;

/// Measures PostgreSQL event store appends against raw inserts of the same rows.
#[derive(Debug, Clone, Parser)]
#[command(name = "store-bench", version, about)]
pub struct Args {
    /// Admin URL of the PostgreSQL server; the benchmark creates (and drops) its own database there.
    #[arg(long, env = "TEST_DATABASE_URL", hide_env_values = true, default_value = test_support::postgres::DEFAULT_SERVER_URL)]
    pub server_url: String,

    /// Wall-clock length of each case (e.g. `5s`, `1500ms`, `1m`), warm-up included.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Start of each case that is run but not measured (connections warm, statements prepared).
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    pub warmup: Duration,

    /// Upper bound on calls per case, so a case ends even if the clock misbehaves.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_ops: u64,

    /// Numbers of concurrent writers, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub concurrency: Vec<usize>,

    /// Events per call, comma-separated (1 and 100: `append-1`/`raw-1`, `append-100`/`raw-100`).
    #[arg(long, value_delimiter = ',', default_value = "1,100")]
    pub batch: Vec<usize>,

    /// Calls per stream before a writer starts a new stream (50 events at batch size 1).
    #[arg(long, default_value_t = 50)]
    pub calls_per_stream: u64,

    /// Repeats of the whole matrix; the report shows each case's median.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,

    /// Also writes every measurement and the summary to this JSON file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,

    /// Keeps the benchmark database instead of dropping it (for inspection afterwards).
    #[arg(long)]
    pub keep_database: bool,
}

impl Args {
    /// Checks what clap cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.concurrency.is_empty(), "--concurrency needs a value");
        anyhow::ensure!(
            self.concurrency.iter().all(|&c| c > 0),
            "--concurrency values must be positive"
        );
        anyhow::ensure!(
            self.batch
                .iter()
                .all(|&b| (1..=event_store::MAX_EVENTS_PER_APPEND).contains(&b)),
            "--batch values must lie in 1..={}",
            event_store::MAX_EVENTS_PER_APPEND
        );
        anyhow::ensure!(self.rounds > 0, "--rounds must be positive");
        anyhow::ensure!(
            self.calls_per_stream > 0,
            "--calls-per-stream must be positive"
        );
        anyhow::ensure!(
            self.warmup < self.duration,
            "--warmup ({:?}) must be shorter than --duration ({:?})",
            self.warmup,
            self.duration
        );
        Ok(())
    }

    /// The highest concurrency asked for.
    pub fn max_concurrency(&self) -> usize {
        self.concurrency.iter().copied().max().unwrap_or(1)
    }
}

/// Parses `250ms`, `5s`, `1.5s`, `2m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 5s, 500ms or 1m"))?;
    let seconds = match unit.trim() {
        "" | "s" | "sec" | "secs" => value,
        "ms" => value / 1_000.0,
        "m" | "min" | "mins" => value * 60.0,
        other => return Err(format!("unknown duration unit {other:?} (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn default_flags_are_valid() {
        let args = Args::parse_from(["store-bench"]);
        assert_eq!(args.concurrency, vec![1, 16, 64]);
        assert_eq!(args.max_concurrency(), 64);
        assert!(args.validate().is_ok());
    }
}
