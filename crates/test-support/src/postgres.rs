//! Fresh PostgreSQL databases for tests.
//!
//! The server is `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`). Each
//! call creates a new database named `orders_test_<uuid>`, so concurrent runs never collide.

use sqlx::{AssertSqlSafe, Connection, PgConnection};
use uuid::Uuid;

/// The server tests use when `TEST_DATABASE_URL` is not set.
pub const DEFAULT_SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The admin URL of the test server.
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_SERVER_URL.to_owned())
}

/// Creates an empty database and returns its URL. Panics, with instructions, when PostgreSQL is
/// not reachable: a test that needs PostgreSQL must not pass without it.
pub async fn fresh_database_url() -> String {
    let server = server_url();
    let mut admin = match PgConnection::connect(&server).await {
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
    let _ = admin.close().await;
    replace_database(&server, &name)
}

/// Test databases older than this are left over from earlier runs and dropped.
const STALE_AFTER_SECS: u64 = 2 * 60 * 60;

/// Drops `orders_test_<uuid v7>` databases created more than two hours ago, so runs do not pile
/// up databases on a developer's server. Younger ones may belong to a run in progress.
async fn drop_stale_databases(admin: &mut PgConnection) {
    let Ok(names) = sqlx::query_scalar::<_, String>(
        "SELECT datname FROM pg_database WHERE datname LIKE 'orders\\_test\\_%'",
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
    for name in names {
        let created = name
            .strip_prefix("orders_test_")
            .and_then(|id| Uuid::parse_str(id).ok())
            .and_then(|id| id.get_timestamp())
            .map(|ts| ts.to_unix().0);
        if created.is_some_and(|secs| now.saturating_sub(secs) > STALE_AFTER_SECS) {
            let _ = sqlx::raw_sql(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut *admin)
            .await;
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
    use super::replace_database;

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
