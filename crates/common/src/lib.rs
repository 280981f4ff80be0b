//! What every part of the `orders` service shares: typed configuration (every setting a flag and
//! an environment variable, documented by `--help`), tracing set-up, and shared error types.

pub mod config;
pub mod errors;
pub mod telemetry;

pub use config::{DatabaseBackend, DatabaseConfig, LogFormat, ServerConfig, TelemetryConfig};
pub use errors::ConfigError;
