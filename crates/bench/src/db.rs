//! The throw-away benchmark database: creation, the baseline table, clean-up.

use std::time::Duration;

use anyhow::Context;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};
use uuid::Uuid;

/// A benchmark database on a server, dropped by [`BenchDatabase::drop_database`].
#[derive(Debug, Clone)]
pub struct BenchDatabase {
    /// Admin URL of the server (the database to connect to for `CREATE`/`DROP DATABASE`).
    pub server_url: String,
    /// Name of the benchmark database, `orders_bench_<uuid>`.
    pub name: String,
    /// URL of the benchmark database.
    pub url: String,
}

impl BenchDatabase {
    /// Creates `orders_bench_<uuid v7, simple>` on the server at `server_url`.
    pub async fn create(server_url: &str) -> anyhow::Result<Self> {
        let mut admin = admin_connection(server_url).await?;
        let name = format!("orders_bench_{}", Uuid::now_v7().simple());
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .with_context(|| {
                format!("cannot create database {name} (may this user CREATE DATABASE?)")
            })?;
        // Closing is courtesy; the server ends the session either way.
        let _ = admin.close().await;
        Ok(Self {
            server_url: server_url.to_owned(),
            url: test_support::postgres::replace_database(server_url, &name),
            name,
        })
    }

    /// Drops the database, ending any session still connected to it.
    pub async fn drop_database(&self) -> anyhow::Result<()> {
        let mut admin = admin_connection(&self.server_url).await?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut admin)
        .await
        .with_context(|| format!("cannot drop database {}", self.name))?;
        let _ = admin.close().await;
        Ok(())
    }

    /// Drops the database unless `keep` (`--keep-database`), reporting either on stderr.
    pub async fn finish(&self, keep: bool) {
        if keep {
            eprintln!("keeping database {} (--keep-database)", self.name);
        } else if let Err(error) = self.drop_database().await {
            eprintln!("warning: {error:#}");
        } else {
            eprintln!("dropped database {}", self.name);
        }
    }
}

/// Runs `work` until it ends or Ctrl-C arrives, so a benchmark always reaches its clean-up.
pub async fn interruptible<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::select! {
        outcome = work => outcome,
        signal = tokio::signal::ctrl_c() => match signal {
            Ok(()) => Err(anyhow::anyhow!("interrupted")),
            Err(error) => Err(anyhow::Error::new(error).context("cannot listen for Ctrl-C")),
        },
    }
}

async fn admin_connection(server_url: &str) -> anyhow::Result<PgConnection> {
    PgConnection::connect(server_url).await.with_context(|| {
        format!(
            "PostgreSQL is not reachable at {server_url}. Start it \
             (this machine: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start; \
             Docker: docker compose up -d postgres) or pass --server-url / TEST_DATABASE_URL"
        )
    })
}

/// Creates `raw_events`, a copy of `events` with the same columns, defaults, identity, checks and
/// indexes, so a raw insert pays for the same storage work as an append.
pub async fn create_raw_table(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::raw_sql("CREATE TABLE raw_events (LIKE events INCLUDING ALL)")
        .execute(pool)
        .await
        .context("cannot create raw_events")?;
    Ok(())
}

/// Opens `connections` pool connections at once, so no case pays for connecting.
pub async fn warm_pool(pool: &PgPool, connections: usize) -> anyhow::Result<()> {
    let mut held = Vec::with_capacity(connections);
    for _ in 0..connections {
        held.push(
            pool.acquire()
                .await
                .context("cannot open a pool connection")?,
        );
    }
    for conn in &mut held {
        sqlx::query("SELECT 1")
            .execute(&mut **conn)
            .await
            .context("warm-up query failed")?;
    }
    Ok(())
}

/// Events the sequencer has not numbered yet.
pub async fn unsequenced(pool: &PgPool) -> anyhow::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM feed_queue")
        .fetch_one(pool)
        .await
        .context("cannot count unsequenced events")
}

/// Waits (at most `limit`) until the sequencer has numbered every event, so the sequencing work of
/// one case does not run during the next one. Returns how long it waited.
pub async fn settle(pool: &PgPool, limit: Duration) -> anyhow::Result<Duration> {
    let start = tokio::time::Instant::now();
    loop {
        if unsequenced(pool).await? == 0 {
            return Ok(start.elapsed());
        }
        anyhow::ensure!(
            start.elapsed() < limit,
            "the sequencer did not catch up within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (at most `limit`) until every event is numbered and the `orders` projection's checkpoint
/// has reached the feed head, so a running service has no read-side work left from one case when
/// the next starts. Returns how long it waited.
pub async fn settle_projection(pool: &PgPool, limit: Duration) -> anyhow::Result<Duration> {
    let start = tokio::time::Instant::now();
    loop {
        let (queued, head, checkpoint): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM feed_queue),
                    (SELECT COALESCE(MAX(position), 0) FROM event_positions),
                    COALESCE((SELECT position FROM projections WHERE name = 'orders'), 0)",
        )
        .fetch_one(pool)
        .await
        .context("cannot read the feed and projection state")?;
        if queued == 0 && checkpoint >= head {
            return Ok(start.elapsed());
        }
        anyhow::ensure!(
            start.elapsed() < limit,
            "the read model did not catch up within {limit:?} ({queued} unsequenced, checkpoint {checkpoint} of {head})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
