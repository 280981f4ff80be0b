//! Cache-aside for orders in Redis, coherent by version.
//!
//! An entry holds an order's rendered state at a stream version. Reads check the stream's current
//! version (one index probe) and use the entry only if it is at exactly that version, so a stale
//! entry is never served. Writes go through a Lua compare-and-set that never replaces a newer
//! version with an older one, so a slow request cannot put old data back. Redis being down or
//! slow costs at most [`CacheConfig::timeout`] per call; the service answers from the database.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use uuid::Uuid;

/// Sets the entry only when it is absent or older than the given version.
const PUT_IF_NEWER: &str = r"
local current = redis.call('HGET', KEYS[1], 'version')
if current and tonumber(current) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'body', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

/// Cache settings.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Prefix of every key (several deployments or test runs can share one Redis).
    pub prefix: String,
    /// Longest wait for Redis before falling back to the database.
    pub timeout: Duration,
    /// How long an unused entry lives.
    pub ttl: Duration,
}

/// The order cache.
#[derive(Clone)]
pub struct OrderCache {
    connection: ConnectionManager,
    config: CacheConfig,
    put_if_newer: redis::Script,
}

impl OrderCache {
    /// Connects to `url`. Fails if Redis cannot be reached at start-up (a configured cache that is
    /// missing is a deployment mistake); later outages only degrade to the database.
    pub async fn connect(url: &str, config: CacheConfig) -> anyhow::Result<Self> {
        let shown = common::config::redact_password(url);
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("REDIS_URL {shown} is not a Redis URL: {e}"))?;
        // One plain connection first, for an error that says what went wrong: the connection
        // manager below retries a refused password until the timeout, which would read as
        // "did not answer".
        match tokio::time::timeout(
            Duration::from_secs(5),
            client.get_multiplexed_async_connection(),
        )
        .await
        {
            Err(_) => anyhow::bail!("Redis at {shown} did not answer within 5 s"),
            Ok(Err(error)) if error.kind() == redis::ErrorKind::AuthenticationFailed => {
                anyhow::bail!(
                    "Redis at {shown} refused the credentials: check the user and password in REDIS_URL"
                )
            }
            Ok(Err(error)) => anyhow::bail!("cannot connect to Redis at {shown}: {error}"),
            Ok(Ok(_)) => {}
        }
        // `config.timeout` bounds every call. The client's own defaults (a 500 ms response
        // timeout, 1 s to connect) would otherwise cap it silently, so a longer `--cache-timeout`
        // had no effect and a loaded machine failed calls that `config.timeout` allows.
        let manager = ConnectionManagerConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(config.timeout.max(Duration::from_secs(1))));
        let connection = tokio::time::timeout(
            Duration::from_secs(5),
            ConnectionManager::new_with_config(client, manager),
        )
        .await
        .map_err(|_| anyhow::anyhow!("Redis at {shown} did not answer within 5 s"))?
        .map_err(|e| anyhow::anyhow!("cannot connect to Redis at {shown}: {e}"))?;
        Ok(Self {
            connection,
            config,
            put_if_newer: redis::Script::new(PUT_IF_NEWER),
        })
    }

    fn key(&self, id: Uuid) -> String {
        format!("{}order:{id}", self.config.prefix)
    }

    /// The cached body of order `id` if it is at exactly `version`.
    pub async fn get(&self, id: Uuid, version: u64) -> Option<String> {
        let mut connection = self.connection.clone();
        let key = self.key(id);
        let read = async move {
            let (cached_version, body): (Option<u64>, Option<String>) = redis::cmd("HMGET")
                .arg(&key)
                .arg("version")
                .arg("body")
                .query_async(&mut connection)
                .await?;
            Ok::<_, redis::RedisError>(cached_version.zip(body))
        };
        match tokio::time::timeout(self.config.timeout, read).await {
            Ok(Ok(Some((cached, body)))) if cached == version => {
                metrics::counter!("cache_requests_total", "result" => "hit").increment(1);
                Some(body)
            }
            Ok(Ok(_)) => {
                metrics::counter!("cache_requests_total", "result" => "miss").increment(1);
                None
            }
            Ok(Err(error)) => failure("get", &error.to_string()),
            Err(_) => failure("get", "timed out"),
        }
    }

    /// Stores `body` as order `id` at `version`, unless a newer version is cached.
    pub async fn put(&self, id: Uuid, version: u64, body: &str) {
        let mut connection = self.connection.clone();
        let mut invocation = self.put_if_newer.key(self.key(id));
        invocation
            .arg(version)
            .arg(body)
            .arg(self.config.ttl.as_millis() as u64);
        let write = async move { invocation.invoke_async::<i64>(&mut connection).await };
        match tokio::time::timeout(self.config.timeout, write).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                failure::<()>("put", &error.to_string());
            }
            Err(_) => {
                failure::<()>("put", "timed out");
            }
        }
    }
}

fn failure<T>(operation: &'static str, error: &str) -> Option<T> {
    tracing::warn!(
        operation,
        error,
        "Redis cache unavailable; using the database"
    );
    metrics::counter!("cache_failures_total", "operation" => operation).increment(1);
    None
}
