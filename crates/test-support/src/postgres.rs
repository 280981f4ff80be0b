//! Fresh PostgreSQL databases for tests.
//!
//! The server is `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`). Each
//! call creates a new database named `orders_test_<uuid>`, so concurrent runs never collide.
//!
//! Clean-up: a [`TestDatabase`] drops its database when it goes out of scope. Every database is
//! also labelled with the process that created it (a comment: host, pid, process start time), and
//! each new database first drops those whose creator on this host has exited: the test ended or
//! crashed (nextest runs each test in its own process). Unlabelled ones (older code, another
//! host) are dropped after two hours.

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use uuid::Uuid;

/// The server tests use when `TEST_DATABASE_URL` is not set.
pub const DEFAULT_SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The admin URL of the test server.
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_SERVER_URL.to_owned())
}

/// A test database that is dropped (`WITH (FORCE)`: open connections are ended) when this value
/// is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    name: String,
    server: String,
}

impl TestDatabase {
    /// Its connection URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop may run inside a runtime, which cannot block on itself: a thread of its own.
        let (server, name) = (self.server.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&server).await.ok()?;
                let dropped = drop_database(&mut admin, &name).await;
                let _ = admin.close().await;
                dropped.then_some(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("test-support: could not drop test database {}", self.name);
        }
    }
}

/// Creates an empty database that is dropped with the returned value. Panics, with instructions,
/// when PostgreSQL is not reachable: a test that needs PostgreSQL must not pass without it.
pub async fn fresh_database() -> TestDatabase {
    let server = server_url();
    let name = create_database(&server).await;
    TestDatabase {
        url: replace_database(&server, &name),
        name,
        server,
    }
}

/// Creates an empty database and returns its URL. Panics, with instructions, when PostgreSQL is
/// not reachable: a test that needs PostgreSQL must not pass without it. The database is dropped
/// by a later call once this process has exited; prefer [`fresh_database`], dropped at once.
pub async fn fresh_database_url() -> String {
    let server = server_url();
    let name = create_database(&server).await;
    replace_database(&server, &name)
}

async fn create_database(server: &str) -> String {
    let mut admin = match PgConnection::connect(server).await {
        Ok(conn) => conn,
        Err(error) => panic!(
            "\n\nPostgreSQL is not reachable at {server}: {error}\n\
             These tests need a real PostgreSQL. Start one:\n\
             \x20 - this machine: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n\
             \x20 - with Docker:  docker compose up -d postgres\n\
             or point TEST_DATABASE_URL at a server where this user may CREATE DATABASE.\n"
        ),
    };
    drop_stale_databases(&mut admin).await;
    let name = format!("orders_test_{}", Uuid::now_v7().simple());
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name} on {server}: {e}"));
    if let Some(owner) = Owner::current() {
        // The label only helps clean-up; a database without one is dropped after two hours.
        let _ = sqlx::raw_sql(AssertSqlSafe(format!(
            "COMMENT ON DATABASE {name} IS '{}'",
            owner.label()
        )))
        .execute(&mut admin)
        .await;
    }
    let _ = admin.close().await;
    name
}

async fn drop_database(admin: &mut PgConnection, name: &str) -> bool {
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut *admin)
    .await
    .is_ok()
}

/// Unlabelled test databases older than this are left over from earlier runs and dropped.
const STALE_AFTER_SECS: u64 = 2 * 60 * 60;

/// The process that created a database: host, pid and the process's start time (clock ticks
/// since boot, so a reused pid is not mistaken for the creator).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Owner {
    host: String,
    pid: u32,
    start: u64,
}

impl Owner {
    const PREFIX: &'static str = "orders-test-owner";

    fn current() -> Option<Self> {
        let pid = std::process::id();
        Some(Self {
            host: hostname()?,
            pid,
            start: process_start(pid)?,
        })
    }

    fn label(&self) -> String {
        format!("{} {} {} {}", Self::PREFIX, self.host, self.pid, self.start)
    }

    fn parse(label: &str) -> Option<Self> {
        let mut parts = label.split(' ');
        if parts.next()? != Self::PREFIX {
            return None;
        }
        let owner = Self {
            host: parts.next()?.to_owned(),
            pid: parts.next()?.parse().ok()?,
            start: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(owner)
    }

    /// Whether this owner is known to have exited: it ran on this host and no process with its
    /// pid and start time exists. `false` when that cannot be told (another host).
    fn has_exited(&self) -> bool {
        hostname().as_deref() == Some(self.host.as_str())
            && process_start(self.pid) != Some(self.start)
    }
}

/// This machine's name, with only characters safe inside an SQL string literal.
fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_'))
    .then(|| name.to_owned())
}

/// The start time of process `pid` (field 22 of `/proc/<pid>/stat`), if it exists.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: skip past it.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// Drops `orders_test_<uuid v7>` databases whose creator process has exited, and unlabelled
/// ones created more than two hours ago. Younger unlabelled ones may belong to a run in
/// progress.
async fn drop_stale_databases(admin: &mut PgConnection) {
    let Ok(databases) = sqlx::query_as::<_, (String, Option<String>)>(
        "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database \
         WHERE datname LIKE 'orders\\_test\\_%'",
    )
    .fetch_all(&mut *admin)
    .await
    else {
        return;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for (name, label) in databases {
        let stale = match label.as_deref().and_then(Owner::parse) {
            Some(owner) => owner.has_exited(),
            None => name
                .strip_prefix("orders_test_")
                .and_then(|id| Uuid::parse_str(id).ok())
                .and_then(|id| id.get_timestamp())
                .map(|ts| ts.to_unix().0)
                .is_some_and(|secs| now.saturating_sub(secs) > STALE_AFTER_SECS),
        };
        if stale {
            drop_database(admin, &name).await;
        }
    }
}

/// `url` with its database name replaced by `database`.
pub fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let prefix = match base.rfind('/') {
        Some(slash) if base[..slash].ends_with('/') => base, // no path: "postgres://host"
        Some(slash) => &base[..slash],
        None => base,
    };
    let mut out = format!("{}/{database}", prefix.trim_end_matches('/'));
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is the failure report

    use super::*;

    async fn admin() -> PgConnection {
        PgConnection::connect(&server_url()).await.unwrap()
    }

    async fn exists(name: &str) -> bool {
        let mut admin = admin().await;
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)",
        )
        .bind(name)
        .fetch_one(&mut admin)
        .await
        .unwrap()
    }

    /// A labelled database as another process would have left it.
    async fn database_owned_by(owner: &Owner) -> String {
        let name = format!("orders_test_{}", Uuid::now_v7().simple());
        let mut admin = admin().await;
        for statement in [
            format!("CREATE DATABASE {name}"),
            format!("COMMENT ON DATABASE {name} IS '{}'", owner.label()),
        ] {
            sqlx::raw_sql(AssertSqlSafe(statement))
                .execute(&mut admin)
                .await
                .unwrap();
        }
        name
    }

    /// A process that has exited: its pid, and a start time no live process has.
    fn exited_owner() -> Owner {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        Owner {
            pid,
            ..Owner::current().unwrap()
        }
    }

    #[tokio::test]
    async fn a_test_database_is_dropped_with_its_guard_even_with_connections_open() {
        let database = fresh_database().await;
        let name = database.name().to_owned();
        let mut open = PgConnection::connect(database.url()).await.unwrap();
        sqlx::query("SELECT 1").execute(&mut open).await.unwrap();
        assert!(exists(&name).await);
        drop(database);
        assert!(!exists(&name).await, "{name} is still there");
    }

    #[tokio::test]
    async fn databases_of_exited_processes_are_dropped_and_live_ones_kept() {
        let dead = database_owned_by(&exited_owner()).await;
        let live = database_owned_by(&Owner::current().unwrap()).await;
        let elsewhere = database_owned_by(&Owner {
            host: "another-host".into(),
            ..exited_owner()
        })
        .await;
        let unlabelled = fresh_database().await;
        {
            let mut admin = admin().await;
            sqlx::raw_sql(AssertSqlSafe(format!(
                "COMMENT ON DATABASE {} IS NULL",
                unlabelled.name()
            )))
            .execute(&mut admin)
            .await
            .unwrap();
        }
        let _next = fresh_database().await; // sweeps first
        assert!(
            !exists(&dead).await,
            "the exited process's database was kept"
        );
        assert!(exists(&live).await, "a live process's database was dropped");
        assert!(
            exists(&elsewhere).await,
            "another host's database was dropped before two hours"
        );
        assert!(
            exists(unlabelled.name()).await,
            "a young unlabelled database was dropped"
        );
        let mut admin = admin().await;
        for name in [&live, &elsewhere] {
            drop_database(&mut admin, name).await;
        }
    }

    #[test]
    fn an_owner_label_round_trips_and_rejects_other_comments() {
        let owner = Owner::current().unwrap();
        assert_eq!(Owner::parse(&owner.label()), Some(owner.clone()));
        assert!(!owner.has_exited());
        assert!(exited_owner().has_exited());
        assert_eq!(Owner::parse("a database for tests"), None);
        assert_eq!(Owner::parse(&format!("{} extra", owner.label())), None);
    }

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            replace_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
    }
}
