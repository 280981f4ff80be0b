//! Tracing set-up: an env-filter, text or JSON lines on stderr.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::{ConfigError, LogFormat, TelemetryConfig};

/// Installs the global subscriber. Call once, first thing in `main`.
pub fn init(config: &TelemetryConfig) -> Result<(), ConfigError> {
    let filter = EnvFilter::try_new(&config.log_filter).map_err(|e| ConfigError::LogFilter {
        filter: config.log_filter.clone(),
        reason: e.to_string(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::NONE);
    // A second init (tests) keeps the first subscriber; that is fine.
    let _ = match config.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    Ok(())
}
