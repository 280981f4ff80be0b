//! Typed configuration. Each struct is a `clap::Args` group the binary flattens into its commands,
//! so every field is both a `--flag` and an environment variable, and `--help` lists them all.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::ConfigError;

/// Where events are stored. `Debug` redacts the URL's password.
#[derive(Clone, Args)]
pub struct DatabaseConfig {
    /// PostgreSQL (`postgres://…`) or SQLite (`sqlite://…`) URL. Unset: the embedded SQLite file
    /// `orders.db` in the data directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Directory for the embedded database and the generated token secret.
    #[arg(long, env = "ORDERS_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Maximum pooled database connections (PostgreSQL) or read connections (SQLite).
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub max_connections: u32,

    /// PostgreSQL: let concurrent commands share statements and commits (group commit and group
    /// loads). `false` sends every load and append on its own (ADR 0010).
    #[arg(long, env = "DATABASE_GROUP_COMMIT", default_value_t = true, action = clap::ArgAction::Set)]
    pub group_commit: bool,
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field(
                "database_url",
                &self.database_url.as_deref().map(redact_password),
            )
            .field("data_dir", &self.data_dir)
            .field("max_connections", &self.max_connections)
            .field("group_commit", &self.group_commit)
            .finish()
    }
}

/// The database a [`DatabaseConfig`] selects. `Debug` and `Display` never show a password.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseBackend {
    /// A PostgreSQL server.
    Postgres {
        /// Connection URL.
        url: String,
    },
    /// An SQLite file.
    Sqlite {
        /// Connection URL (`sqlite://…`).
        url: String,
    },
}

impl fmt::Display for DatabaseBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Postgres { url } => write!(f, "PostgreSQL {}", redact_password(url)),
            Self::Sqlite { url } => write!(f, "embedded SQLite {url}"),
        }
    }
}

impl fmt::Debug for DatabaseBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, url) = match self {
            Self::Postgres { url } => ("Postgres", redact_password(url)),
            Self::Sqlite { url } => ("Sqlite", url.clone()),
        };
        f.debug_struct(name).field("url", &url).finish()
    }
}

impl DatabaseConfig {
    /// The backend these settings select.
    pub fn backend(&self) -> Result<DatabaseBackend, ConfigError> {
        match self.database_url.as_deref().map(str::trim) {
            None | Some("") => {
                let file = self.data_dir.join("orders.db");
                Ok(DatabaseBackend::Sqlite {
                    url: format!("sqlite://{}", file.display()),
                })
            }
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(DatabaseBackend::Postgres {
                    url: url.to_owned(),
                })
            }
            Some(url) if url.starts_with("sqlite:") => Ok(DatabaseBackend::Sqlite {
                url: url.to_owned(),
            }),
            Some(other) => Err(ConfigError::UnsupportedDatabaseUrl(redact_password(other))),
        }
    }

    /// Creates the data directory if it does not exist.
    pub fn ensure_data_dir(&self) -> Result<(), ConfigError> {
        std::fs::create_dir_all(&self.data_dir).map_err(|source| ConfigError::DataDir {
            path: self.data_dir.display().to_string(),
            source,
        })
    }
}

/// `url` with any password replaced by `***`, safe to log.
///
/// Covers the password of the user-info part (`scheme://user:password@host`), a `password` query
/// parameter (`…?password=…`, which PostgreSQL URLs accept) and the `password=…` pair of a
/// key/value connection string (`host=db password=…`).
///
/// A password is often written without percent-encoding, so it may itself contain `@`, `/`, `?`
/// or `#`. The user-info therefore ends at the *last* `@` of the URL, not at the first `@` nor at
/// the first `/`: every character between the first `:` of the user-info and that `@` is
/// redacted. A URL whose query contains an `@` may be redacted more than needed, never less.
pub fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return redact_password_pairs(url, char::is_whitespace);
    };
    let (credentials, host) = match rest.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _password)) => (format!("{user}:***@"), host),
            None => (format!("{credentials}@"), host),
        },
        None => (String::new(), rest),
    };
    let host = match host.split_once('?') {
        Some((path, query)) => {
            format!(
                "{path}?{}",
                redact_password_pairs(query, |c| c == '&' || c == '#')
            )
        }
        None => host.to_owned(),
    };
    format!("{scheme}://{credentials}{host}")
}

/// `text` with the value of every `password=` pair replaced by `***`; `ends` tells where a value
/// ends (a value in single quotes ends at the closing quote, `\'` escaping one).
fn redact_password_pairs(text: &str, ends: fn(char) -> bool) -> String {
    const KEY: &str = "password";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = find_key(rest, KEY, ends) {
        let after_key = &rest[found + KEY.len()..];
        let Some(value) = after_key.trim_start().strip_prefix('=') else {
            out.push_str(&rest[..found + KEY.len()]);
            rest = after_key;
            continue;
        };
        let value = value.trim_start_matches([' ', '\t']);
        let value_end = quoted_or_plain_end(value, ends);
        out.push_str(&rest[..found]);
        out.push_str(KEY);
        out.push_str("=***");
        rest = &value[value_end..];
    }
    out.push_str(rest);
    out
}

/// Byte offset of the next `key` (ASCII case-insensitive) that starts a pair: at the start of
/// `text` or right after a separator.
fn find_key(text: &str, key: &str, ends: fn(char) -> bool) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(offset) = lower[from..].find(key) {
        let at = from + offset;
        let starts_pair = text[..at].chars().next_back().is_none_or(ends);
        if starts_pair {
            return Some(at);
        }
        from = at + key.len();
    }
    None
}

/// Where a pair's value ends: after its closing quote if it is quoted, else at the first `ends`
/// character (or the end of `value`). An unterminated quote runs to the end.
fn quoted_or_plain_end(value: &str, ends: fn(char) -> bool) -> usize {
    if let Some(quoted) = value.strip_prefix('\'') {
        let mut escaped = false;
        for (index, c) in quoted.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '\'' => return 1 + index + 1,
                _ => {}
            }
        }
        return value.len();
    }
    value.find(ends).unwrap_or(value.len())
}

/// The HTTP server.
#[derive(Debug, Clone, Args)]
pub struct ServerConfig {
    /// Address to listen on.
    #[arg(long, env = "ORDERS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Requests taking longer are answered 408 (a command carries on to its end).
    #[arg(long, env = "ORDERS_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "ORDERS_BODY_LIMIT", default_value_t = 64 * 1024)]
    pub body_limit: usize,

    /// How long shutdown waits for in-flight requests before exiting anyway.
    #[arg(long, env = "ORDERS_SHUTDOWN_GRACE", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// Longest a client may take to send a request's line and headers; the connection is closed
    /// after it.
    #[arg(long, env = "ORDERS_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// Most HTTP connections open at once; further ones wait (unaccepted) until one closes.
    #[arg(long, env = "ORDERS_MAX_HTTP_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_http_connections: u32,
}

/// Logs.
#[derive(Debug, Clone, Args)]
pub struct TelemetryConfig {
    /// Log filter in `tracing` syntax (e.g. `info`, `orders=debug,sqlx=warn`).
    #[arg(long = "log", env = "RUST_LOG", default_value = "info", global = true)]
    pub log_filter: String,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Export traces to this OTLP/HTTP collector (e.g. `http://127.0.0.1:4318`). Needs a build
    /// with the `otel` feature. Unset: no export.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_ENDPOINT",
        hide_env_values = true,
        global = true
    )]
    pub otlp_endpoint: Option<String>,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable, one line per event.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Parses `250ms`, `30s`, `5m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 250ms, 30s, 5m, 12h or 7d"))?;
    let seconds_per = match unit.trim() {
        "ms" => return Ok(Duration::from_millis(value)),
        "" | "s" => 1,
        "m" => 60,
        "h" => 60 * 60,
        "d" => 24 * 60 * 60,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?}: use ms, s, m, h or d"
            ));
        }
    };
    value
        .checked_mul(seconds_per)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long a duration"))
}

#[cfg(test)]
mod tests;
