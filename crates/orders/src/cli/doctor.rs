//! `orders doctor`: check the configuration and every configured service, in plain words.

use std::time::Duration;

use event_store::EventStore;

use super::ServeArgs;
use crate::auth::load_secret;
use store::Store;

/// How long each connectivity check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// One check's verdict.
struct Check {
    name: &'static str,
    result: Result<String, String>,
}

/// Runs every check, prints one line each, and fails if any failed.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut checks = Vec::new();
    let backend = args.database.backend();
    checks.push(Check {
        name: "database setting",
        result: backend
            .as_ref()
            .map(ToString::to_string)
            .map_err(|e| e.to_string()),
    });
    if let Ok(common::DatabaseBackend::Postgres { url }) = &backend {
        checks.push(Check {
            name: "database servers",
            result: servers(url).await,
        });
    }
    if let Some(url) = &args.database_read_url {
        checks.push(Check {
            name: "read standbys",
            result: standbys(url).await,
        });
    }
    if backend.is_ok() {
        checks.push(Check {
            name: "database",
            result: database(&args).await,
        });
    }
    checks.push(Check {
        name: "token secret",
        result: load_secret(args.jwt_secret.as_deref(), &args.database.data_dir)
            .map(|found| match (&args.jwt_secret, found) {
                (Some(_), _) => "ORDERS_JWT_SECRET is set".to_owned(),
                (None, Some(_)) => {
                    format!("generated secret in {}", args.database.data_dir.display())
                }
                (None, None) => format!(
                    "none yet in {}: `orders serve` generates one when it first starts",
                    args.database.data_dir.display()
                ),
            })
            .map_err(|e| format!("{e:#}")),
    });
    checks.push(Check {
        name: "redis",
        result: redis(args.redis_url.as_deref()).await,
    });
    checks.push(Check {
        name: "listen address",
        result: listen(&args).await,
    });

    let mut failed = 0;
    for check in &checks {
        match &check.result {
            Ok(detail) => outln!("ok    {:<16} {detail}", check.name),
            Err(problem) => {
                failed += 1;
                outln!("FAIL  {:<16} {problem}", check.name);
            }
        }
    }
    anyhow::ensure!(failed == 0, "{failed} check(s) failed");
    outln!("all checks passed");
    Ok(())
}

/// Reads only: a missing SQLite file or a database behind this build's schema is reported,
/// never created or migrated (`serve` and `migrate` do that).
async fn database(args: &ServeArgs) -> Result<String, String> {
    if let Ok(common::DatabaseBackend::Sqlite { url }) = args.database.backend()
        && let Ok(options) = url.parse::<sqlx::sqlite::SqliteConnectOptions>()
        && !options.get_filename().exists()
    {
        return Ok(format!(
            "no database yet at {}: `orders serve` creates it",
            options.get_filename().display()
        ));
    }
    let open = tokio::time::timeout(CHECK_TIMEOUT, Store::connect_existing(&args.database)).await;
    let store = match open {
        Err(_) => {
            return Err(format!(
                "no answer within {CHECK_TIMEOUT:?}: is the server running and reachable?"
            ));
        }
        Ok(Err(error)) => return Err(format!("cannot open it: {error:#}")),
        Ok(Ok(store)) => store,
    };
    store
        .ping()
        .await
        .map_err(|e| format!("connected, but a query failed: {e}"))?;
    let pending = store
        .pending_migrations()
        .await
        .map_err(|e| format!("connected, but cannot read its migrations: {e}"))?;
    Ok(match pending.len() {
        0 => format!("{} reachable, migrations applied", store.kind()),
        n => format!(
            "{} reachable; {n} migration(s) not applied yet (`orders serve` or `orders migrate` applies them)",
            store.kind()
        ),
    })
}

/// Every server `DATABASE_URL` names and what it is now; fails when none accepts writes.
async fn servers(url: &str) -> Result<String, String> {
    use event_store_postgres::{ServerList, Servers, SessionAttrs};
    let list = ServerList::parse(url, SessionAttrs::ReadWrite)
        .map_err(|e| format!("DATABASE_URL cannot be read: {e}"))?;
    let attrs = list.attrs();
    let survey = Servers::new(list).survey().await;
    let primaries = survey
        .iter()
        .filter(|(_, role)| matches!(role, Ok(role) if !role.in_recovery))
        .count();
    let lines = survey
        .into_iter()
        .map(|(server, role)| match role {
            Ok(role) => format!("{server} {role}"),
            Err(why) => format!("{server} unreachable ({why})"),
        })
        .collect::<Vec<_>>()
        .join("; ");
    match (primaries, attrs) {
        (0, SessionAttrs::ReadWrite | SessionAttrs::Primary) => Err(format!(
            "no server accepts writes: {lines}. The service waits for a primary (a failover in \
             progress?) and answers 503 until one is back"
        )),
        (2.., _) => Err(format!(
            "{primaries} servers accept writes (split brain?): {lines}"
        )),
        _ => Ok(format!("{lines} (target_session_attrs={})", attrs.as_str())),
    }
}

/// Every host of `DATABASE_READ_URL` must be a reachable standby: a server that is not in
/// recovery never answers queries (the service only reads from standbys).
async fn standbys(url: &str) -> Result<String, String> {
    use event_store_postgres::{ServerList, Servers, SessionAttrs};
    let list = ServerList::parse(url, SessionAttrs::Standby)
        .map_err(|e| format!("DATABASE_READ_URL cannot be read: {e}"))?;
    let survey = Servers::new(list).survey().await;
    let mut problems = Vec::new();
    let lines = survey
        .into_iter()
        .map(|(server, role)| match role {
            Ok(role) if role.in_recovery => format!("{server} {role}"),
            Ok(role) => {
                problems.push(format!(
                    "{server} is not a standby ({role}): it will never answer queries"
                ));
                format!("{server} {role}")
            }
            Err(why) => {
                problems.push(format!(
                    "{server} is unreachable ({why}): the primary answers its share"
                ));
                format!("{server} unreachable")
            }
        })
        .collect::<Vec<_>>()
        .join("; ");
    if problems.is_empty() {
        Ok(lines)
    } else {
        Err(problems.join("; "))
    }
}

async fn redis(url: Option<&str>) -> Result<String, String> {
    let Some(url) = url else {
        return Ok("not configured (REDIS_URL unset): orders are not cached".into());
    };
    let ping = async {
        let client =
            redis::Client::open(url).map_err(|e| format!("REDIS_URL is not valid: {e}"))?;
        let mut connection = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let pong: String = redis::cmd("PING")
            .query_async(&mut connection)
            .await
            .map_err(|e| format!("PING failed: {e}"))?;
        Ok::<_, String>(pong)
    };
    match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
        Ok(Ok(_)) => Ok(format!("{} answers", common::config::redact_password(url))),
        Ok(Err(problem)) => Err(format!(
            "{}: {problem}",
            common::config::redact_password(url)
        )),
        Err(_) => Err(format!(
            "{}: no answer within {CHECK_TIMEOUT:?}",
            common::config::redact_password(url)
        )),
    }
}

async fn listen(args: &ServeArgs) -> Result<String, String> {
    match tokio::net::TcpListener::bind(args.server.listen).await {
        Ok(_) => Ok(format!("{} is free", args.server.listen)),
        Err(e) => Err(format!(
            "cannot listen on {}: {e} (is the service already running? set ORDERS_LISTEN)",
            args.server.listen
        )),
    }
}
