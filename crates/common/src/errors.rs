//! Error types shared across crates.

/// A setting that cannot be used as given. The message names the setting and what would work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `DATABASE_URL` names a database this service cannot use.
    #[error(
        "DATABASE_URL {0:?} is not supported: use postgres://user@host:port/db, sqlite://path/to/file.db, or leave it unset for the embedded SQLite file in --data-dir"
    )]
    UnsupportedDatabaseUrl(String),
    /// The data directory cannot be created or written.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Trace export was asked for but is not available.
    #[error("cannot export traces to {endpoint}: {reason}")]
    Otel {
        /// The configured endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// The log filter does not parse.
    #[error(
        "log filter {filter:?} is not valid ({reason}); examples: info, orders=debug,sqlx=warn"
    )]
    LogFilter {
        /// The filter as given.
        filter: String,
        /// The parser's complaint.
        reason: String,
    },
}
