//! Which server a connection goes to: libpq's multi-host URLs and `target_session_attrs`, which
//! sqlx does not have.
//!
//! `postgres://user@h1:5432,h2:5433,h3:5434/orders?target_session_attrs=read-write` names three
//! servers; a connection tries them in turn, starting with the one that answered last, and keeps
//! the first whose role fits (checked once, when it connects: one round trip per connection,
//! none per statement). Everything else in the URL is sqlx's to parse, once per host.
//!
//! [`Servers`] is the store's one owner of "where is the primary": the command path's
//! connections, the background pool (whose connect options it moves), the feed listener and the
//! relay's lease connection all follow it. A watcher checks the primary's role every
//! [`WATCH_INTERVAL`] and moves everything to the server that accepts writes after a failover.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, PgPool};
use tokio::sync::Notify;

/// How long one server may take to accept a connection and answer the role check before the
/// next one is tried. Loopback and LAN servers answer in milliseconds; a dead host's SYN gets no
/// answer at all, and waiting longer only delays the failover.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How often the watcher asks the server in use whether it still accepts writes. A failover
/// takes Patroni about ten seconds (docs/adr/0020); a second more to notice it is small, and the
/// command path notices sooner on its own (a failed connection scans the list at once).
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// libpq's `target_session_attrs`: what a server must be for a connection to stay on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionAttrs {
    /// Any server that accepts the connection (no check).
    Any,
    /// One whose sessions may write: not a standby, transactions not read-only by default.
    ReadWrite,
    /// One whose sessions are read-only (a standby, or `default_transaction_read_only`).
    ReadOnly,
    /// A server that is not in recovery.
    Primary,
    /// A server in recovery (a hot standby).
    Standby,
    /// A standby if one answers, else any server.
    PreferStandby,
}

impl SessionAttrs {
    /// The name libpq uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::ReadWrite => "read-write",
            Self::ReadOnly => "read-only",
            Self::Primary => "primary",
            Self::Standby => "standby",
            Self::PreferStandby => "prefer-standby",
        }
    }

    fn accepts(self, role: Role) -> bool {
        match self {
            Self::Any | Self::PreferStandby => true,
            Self::ReadWrite => !role.in_recovery && !role.read_only,
            Self::ReadOnly => role.in_recovery || role.read_only,
            Self::Primary => !role.in_recovery,
            Self::Standby => role.in_recovery,
        }
    }
}

impl FromStr for SessionAttrs {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        [
            Self::Any,
            Self::ReadWrite,
            Self::ReadOnly,
            Self::Primary,
            Self::Standby,
            Self::PreferStandby,
        ]
        .into_iter()
        .find(|attrs| attrs.as_str() == value)
        .ok_or_else(|| {
            format!(
                "target_session_attrs={value} is not one of any, read-write, read-only, primary, \
                 standby, prefer-standby"
            )
        })
    }
}

/// What a server said it is, when asked at connect time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    /// `pg_is_in_recovery()`: a standby replaying another server's WAL.
    pub in_recovery: bool,
    /// `transaction_read_only` of this session.
    pub read_only: bool,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match (self.in_recovery, self.read_only) {
            (true, _) => "standby",
            (false, false) => "primary",
            (false, true) => "primary, read-only sessions",
        })
    }
}

/// One statement, one round trip: the role of the server a connection reached.
const ROLE_SQL: &str =
    "SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'";

/// Asks the server behind `connection` what it is.
pub async fn role_of(connection: &mut PgConnection) -> sqlx::Result<Role> {
    let (in_recovery, read_only): (bool, bool) =
        sqlx::query_as(ROLE_SQL).fetch_one(connection).await?;
    Ok(Role {
        in_recovery,
        read_only,
    })
}

/// Checks that `connection`'s server has the role `attrs` (no round trip for `any`).
async fn check_as(connection: &mut PgConnection, attrs: SessionAttrs) -> sqlx::Result<()> {
    if attrs == SessionAttrs::Any {
        return Ok(());
    }
    let role = role_of(connection).await?;
    if attrs.accepts(role) {
        Ok(())
    } else {
        Err(sqlx::Error::Configuration(
            format!(
                "the server is a {role}, and target_session_attrs={} asks for another",
                attrs.as_str()
            )
            .into(),
        ))
    }
}

/// The servers a URL names, each with its own connect options, and the role they must have.
#[derive(Debug, Clone)]
pub struct ServerList {
    servers: Vec<(String, PgConnectOptions)>,
    attrs: SessionAttrs,
}

impl ServerList {
    /// Parses a `postgres://` URL with one or several `host:port` entries. Without
    /// `target_session_attrs` the list asks for `default` (the store: `read-write`, since it
    /// writes). Every other parameter is sqlx's and applies to every host.
    pub fn parse(url: &str, default: SessionAttrs) -> sqlx::Result<Self> {
        let invalid = |why: String| sqlx::Error::Configuration(why.into());
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("a PostgreSQL URL starts with postgres://".to_owned()))?;
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((userinfo, hosts)) => (format!("{userinfo}@"), hosts),
            None => (String::new(), authority),
        };
        let (tail, attrs) = take_session_attrs(tail)?;
        let attrs = attrs.unwrap_or(default);
        let servers = hosts
            .split(',')
            .map(|host| {
                let options: PgConnectOptions = format!("{scheme}://{userinfo}{host}{tail}")
                    .parse()
                    .map_err(|error| invalid(format!("host {host:?}: {error}")))?;
                Ok((label(&options), options))
            })
            .collect::<sqlx::Result<Vec<_>>>()?;
        Ok(Self { servers, attrs })
    }

    /// One server given by its options, with the role `attrs`.
    pub fn single(options: PgConnectOptions, attrs: SessionAttrs) -> Self {
        Self {
            servers: vec![(label(&options), options)],
            attrs,
        }
    }

    /// Applies `change` to every server's options (settings sent when connecting, a name).
    pub fn map_options(mut self, change: impl Fn(PgConnectOptions) -> PgConnectOptions) -> Self {
        for (_, options) in &mut self.servers {
            *options = change(options.clone());
        }
        self
    }

    /// Every session read-only (`default_transaction_read_only`), for tools that only inspect:
    /// `read-write` then means a primary (its sessions are read-only by this choice).
    pub fn read_only_sessions(self) -> Self {
        let mut list = self.map_options(|o| o.options([("default_transaction_read_only", "on")]));
        if list.attrs == SessionAttrs::ReadWrite {
            list.attrs = SessionAttrs::Primary;
        }
        list
    }

    /// The role a server must have.
    pub fn attrs(&self) -> SessionAttrs {
        self.attrs
    }

    /// `host:port` of every server, in the URL's order.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.servers.iter().map(|(label, _)| label.as_str())
    }

    /// The connect options of every server, in the URL's order.
    pub fn options(&self) -> impl Iterator<Item = &PgConnectOptions> {
        self.servers.iter().map(|(_, options)| options)
    }

    fn len(&self) -> usize {
        self.servers.len()
    }
}

/// `host:port` of `options` (the socket directory for a Unix socket).
fn label(options: &PgConnectOptions) -> String {
    format!("{}:{}", options.get_host(), options.get_port())
}

/// `tail` (path and query) without its `target_session_attrs` parameter, and that parameter.
fn take_session_attrs(tail: &str) -> sqlx::Result<(String, Option<SessionAttrs>)> {
    let Some((path, query)) = tail.split_once('?') else {
        return Ok((tail.to_owned(), None));
    };
    let mut attrs = None;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("target_session_attrs", value)) => {
                attrs = Some(
                    value
                        .parse()
                        .map_err(|why: String| sqlx::Error::Configuration(why.into()))?,
                );
            }
            _ => kept.push(pair),
        }
    }
    let tail = if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    };
    Ok((tail, attrs))
}

/// The server in use and the way to every server: the store's one owner of "where is the
/// primary". Cheap to share (`Arc`).
#[derive(Debug)]
pub struct Servers {
    list: ServerList,
    /// Index of the server connections try first: the last one that fitted.
    current: AtomicUsize,
    /// Whether the last check of `current` found it fitting.
    healthy: AtomicBool,
    /// The pool whose connect options follow `current`.
    pool: OnceLock<PgPool>,
    /// Set when something found the server in use gone or unfit; wakes the watcher.
    suspect: Arc<Notify>,
}

impl Servers {
    /// Over `list`, starting with its first server.
    pub fn new(list: ServerList) -> Arc<Self> {
        let servers = Arc::new(Self {
            list,
            current: AtomicUsize::new(0),
            healthy: AtomicBool::new(false),
            pool: OnceLock::new(),
            suspect: Arc::new(Notify::new()),
        });
        servers.publish_current(0);
        servers
    }

    /// The servers and the role they must have.
    pub fn list(&self) -> &ServerList {
        &self.list
    }

    /// The connect options of the server in use (the pool's).
    pub fn current_options(&self) -> PgConnectOptions {
        self.list.servers[self.current_index()].1.clone()
    }

    /// `host:port` of the server in use, if its last check found it fitting.
    pub fn current(&self) -> Option<&str> {
        self.healthy
            .load(Ordering::Relaxed)
            .then(|| self.list.servers[self.current_index()].0.as_str())
    }

    fn current_index(&self) -> usize {
        self.current.load(Ordering::Relaxed) % self.list.len()
    }

    /// Makes `pool` follow the server in use from now on.
    pub(crate) fn follow_with(&self, pool: &PgPool) {
        pool.set_connect_options(self.current_options());
        let _ = self.pool.set(pool.clone());
    }

    /// A connection to a server that fits, trying the one in use first and then the others in
    /// the URL's order. Fails with the last server's error when none fits.
    pub async fn connect(&self) -> sqlx::Result<PgConnection> {
        self.connect_adjusted(|options| options).await
    }

    /// Like [`Self::connect`], with each server's options changed by `adjust` first (settings
    /// that only some of the store's connections carry).
    pub async fn connect_adjusted(
        &self,
        adjust: impl Fn(PgConnectOptions) -> PgConnectOptions,
    ) -> sqlx::Result<PgConnection> {
        // `prefer-standby` is two passes: standbys only, then any server.
        let passes: &[SessionAttrs] = match self.list.attrs {
            SessionAttrs::PreferStandby => &[SessionAttrs::Standby, SessionAttrs::Any],
            SessionAttrs::Standby => &[SessionAttrs::Standby],
            SessionAttrs::Any => &[SessionAttrs::Any],
            SessionAttrs::ReadWrite => &[SessionAttrs::ReadWrite],
            SessionAttrs::ReadOnly => &[SessionAttrs::ReadOnly],
            SessionAttrs::Primary => &[SessionAttrs::Primary],
        };
        let first = self.current_index();
        let mut last_error = None;
        for &attrs in passes {
            for offset in 0..self.list.len() {
                let index = (first + offset) % self.list.len();
                match self.connect_to(index, attrs, &adjust).await {
                    Ok(connection) => {
                        self.settle_on(index);
                        return Ok(connection);
                    }
                    Err(error) => {
                        count_error(&error);
                        tracing::debug!(server = %self.list.servers[index].0, %error, "server skipped");
                        last_error = Some(error);
                    }
                }
            }
        }
        self.healthy.store(false, Ordering::Relaxed);
        metrics::gauge!("event_store_primary_reachable").set(0.0);
        Err(last_error.unwrap_or_else(|| {
            sqlx::Error::Configuration("the database URL names no server".into())
        }))
    }

    async fn connect_to(
        &self,
        index: usize,
        attrs: SessionAttrs,
        adjust: &impl Fn(PgConnectOptions) -> PgConnectOptions,
    ) -> sqlx::Result<PgConnection> {
        let attempt = async {
            let mut connection = adjust(self.list.servers[index].1.clone()).connect().await?;
            if let Err(error) = check_as(&mut connection, attrs).await {
                let _ = connection.close().await;
                return Err(error);
            }
            Ok(connection)
        };
        tokio::time::timeout(CONNECT_TIMEOUT, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {CONNECT_TIMEOUT:?}"),
                )))
            })
    }

    /// Checks that `connection`'s server has the role the list asks for (no round trip for
    /// `any` and `prefer-standby`). A misfit is an error that says what the server is.
    pub async fn check(&self, connection: &mut PgConnection) -> sqlx::Result<()> {
        match self.list.attrs {
            SessionAttrs::PreferStandby => Ok(()),
            attrs => check_as(connection, attrs).await,
        }
    }

    /// Every server and what it is now (or why it did not answer), for `orders doctor`.
    pub async fn survey(&self) -> Vec<(String, Result<Role, String>)> {
        let mut roles = Vec::with_capacity(self.list.len());
        for (label, options) in &self.list.servers {
            let asked = async {
                let mut connection = options.connect().await?;
                let role = role_of(&mut connection).await;
                let _ = connection.close().await;
                role
            };
            let role = match tokio::time::timeout(CONNECT_TIMEOUT, asked).await {
                Ok(Ok(role)) => Ok(role),
                Ok(Err(error)) => Err(error.to_string()),
                Err(_) => Err(format!("no answer within {CONNECT_TIMEOUT:?}")),
            };
            roles.push((label.clone(), role));
        }
        roles
    }

    /// Tells the watcher that the server in use failed or no longer fits.
    pub fn suspect(&self) {
        self.suspect.notify_one();
    }

    fn settle_on(&self, index: usize) {
        self.healthy.store(true, Ordering::Relaxed);
        metrics::gauge!("event_store_primary_reachable").set(1.0);
        let before = self.current.swap(index, Ordering::Relaxed) % self.list.len();
        if before == index {
            return;
        }
        tracing::warn!(
            from = %self.list.servers[before].0,
            to = %self.list.servers[index].0,
            "the database server in use changed (failover or switchover)"
        );
        metrics::counter!("event_store_failovers_total").increment(1);
        if let Some(pool) = self.pool.get() {
            pool.set_connect_options(self.current_options());
        }
        self.publish_current(index);
    }

    fn publish_current(&self, index: usize) {
        for (at, (label, _)) in self.list.servers.iter().enumerate() {
            metrics::gauge!("event_store_primary", "server" => label.clone()).set(if at == index {
                1.0
            } else {
                0.0
            });
        }
    }

    /// Asks the server in use for its role every [`WATCH_INTERVAL`] (sooner when
    /// [`Self::suspect`]ed) and moves to the next fitting server when it is gone or unfit.
    pub(crate) fn spawn_watcher(self: &Arc<Self>) -> Watcher {
        let servers = Arc::downgrade(self);
        let suspected = self.suspect.clone();
        Watcher(tokio::spawn(async move {
            let mut connection: Option<PgConnection> = None;
            loop {
                let Some(this) = servers.upgrade() else {
                    return;
                };
                let fits = match connection.as_mut() {
                    Some(open) => matches!(
                        tokio::time::timeout(CONNECT_TIMEOUT, this.check(open)).await,
                        Ok(Ok(()))
                    ),
                    None => false,
                };
                if !fits {
                    connection = this.connect().await.ok();
                }
                drop(this);
                tokio::select! {
                    () = tokio::time::sleep(WATCH_INTERVAL) => {}
                    () = suspected.notified() => {}
                }
            }
        }))
    }
}

/// The watcher task; stops when dropped.
#[derive(Debug)]
pub(crate) struct Watcher(tokio::task::JoinHandle<()>);

impl Drop for Watcher {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Counts a failed connection attempt by kind, for `event_store_connection_errors_total`.
fn count_error(error: &sqlx::Error) {
    let kind = match error {
        sqlx::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => "timeout",
        sqlx::Error::Io(_) => "unreachable",
        sqlx::Error::Configuration(_) => "wrong_role",
        sqlx::Error::Database(_) => "refused",
        sqlx::Error::Tls(_) => "tls",
        _ => "other",
    };
    metrics::counter!("event_store_connection_errors_total", "kind" => kind).increment(1);
}

/// Whether `error` says the connection's server stopped accepting writes (SQLSTATE 25006,
/// read-only transaction: a demoted primary) or the connection itself broke: the server in use
/// may have changed.
pub(crate) fn means_server_changed(error: &sqlx::Error) -> bool {
    match error.as_database_error() {
        Some(db) => db.code().as_deref() == Some("25006"),
        None => matches!(error, sqlx::Error::Io(_) | sqlx::Error::Protocol(_)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code

    use super::*;

    #[test]
    fn several_hosts_share_everything_but_host_and_port() {
        let list = ServerList::parse(
            "postgres://app:secret@h1:5432,h2:5433,[::1]:5434/orders?sslmode=disable&target_session_attrs=read-write&application_name=x",
            SessionAttrs::Any,
        )
        .unwrap();
        assert_eq!(list.attrs(), SessionAttrs::ReadWrite);
        assert_eq!(
            list.labels().collect::<Vec<_>>(),
            ["h1:5432", "h2:5433", "[::1]:5434"]
        );
        for options in list.options() {
            assert_eq!(options.get_username(), "app");
            assert_eq!(options.get_database(), Some("orders"));
            assert_eq!(options.get_application_name(), Some("x"));
        }
    }

    #[test]
    fn without_target_session_attrs_the_default_applies() {
        let list = ServerList::parse(
            "postgres://postgres@127.0.0.1:5432/db",
            SessionAttrs::ReadWrite,
        )
        .unwrap();
        assert_eq!(list.attrs(), SessionAttrs::ReadWrite);
        assert_eq!(list.labels().collect::<Vec<_>>(), ["127.0.0.1:5432"]);
        let any = ServerList::parse(
            "postgresql://h1,h2/db?target_session_attrs=any",
            SessionAttrs::ReadWrite,
        )
        .unwrap();
        assert_eq!(any.attrs(), SessionAttrs::Any);
        assert_eq!(any.labels().collect::<Vec<_>>(), ["h1:5432", "h2:5432"]);
    }

    #[test]
    fn bad_urls_are_refused_with_the_reason() {
        for (url, why) in [
            ("h1:5432/db", "postgres://"),
            (
                "postgres://h1/db?target_session_attrs=writable",
                "read-write",
            ),
            ("postgres://h1:notaport,h2/db", "h1:notaport"),
        ] {
            let error = ServerList::parse(url, SessionAttrs::ReadWrite)
                .unwrap_err()
                .to_string();
            assert!(error.contains(why), "{url}: {error}");
        }
    }

    #[test]
    fn each_attribute_accepts_the_roles_libpq_does() {
        let primary = Role {
            in_recovery: false,
            read_only: false,
        };
        let read_only_primary = Role {
            in_recovery: false,
            read_only: true,
        };
        let standby = Role {
            in_recovery: true,
            read_only: true,
        };
        let table = [
            (SessionAttrs::Any, [true, true, true]),
            (SessionAttrs::ReadWrite, [true, false, false]),
            (SessionAttrs::ReadOnly, [false, true, true]),
            (SessionAttrs::Primary, [true, true, false]),
            (SessionAttrs::Standby, [false, false, true]),
            (SessionAttrs::PreferStandby, [true, true, true]),
        ];
        for (attrs, expected) in table {
            let got = [primary, read_only_primary, standby].map(|role| attrs.accepts(role));
            assert_eq!(got, expected, "{attrs:?}");
            assert_eq!(attrs.as_str().parse::<SessionAttrs>().unwrap(), attrs);
        }
    }

    #[tokio::test]
    async fn a_server_changed_when_writes_are_refused_or_the_connection_broke() {
        assert!(means_server_changed(&sqlx::Error::Io(
            std::io::Error::other("reset")
        )));
        assert!(!means_server_changed(&sqlx::Error::RowNotFound));
        // SQLSTATE 25006 (what a demoted primary answers to a write) against another database
        // error (42P01, no such table), from a real server.
        let database = test_support::postgres::fresh_database().await;
        let mut connection = PgConnection::connect(database.url()).await.unwrap();
        let read_only = sqlx::raw_sql("BEGIN READ ONLY; CREATE TABLE t (x int); COMMIT")
            .execute(&mut connection)
            .await
            .unwrap_err();
        assert!(means_server_changed(&read_only), "{read_only}");
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut connection)
            .await
            .unwrap();
        let missing = sqlx::query("SELECT * FROM no_such_table")
            .execute(&mut connection)
            .await
            .unwrap_err();
        assert!(!means_server_changed(&missing), "{missing}");
    }

    #[test]
    fn roles_read_as_what_they_are() {
        let role = |in_recovery, read_only| Role {
            in_recovery,
            read_only,
        };
        assert_eq!(role(true, true).to_string(), "standby");
        assert_eq!(role(false, false).to_string(), "primary");
        assert_eq!(role(false, true).to_string(), "primary, read-only sessions");
    }

    #[test]
    fn read_only_sessions_still_ask_for_a_primary() {
        let url = "postgres://h1,h2/db";
        let list = ServerList::parse(url, SessionAttrs::ReadWrite)
            .unwrap()
            .read_only_sessions();
        assert_eq!(list.attrs(), SessionAttrs::Primary);
        for options in list.options() {
            assert_eq!(
                options.get_options(),
                Some("-c default_transaction_read_only=on")
            );
        }
        let standby = ServerList::parse(url, SessionAttrs::Standby)
            .unwrap()
            .read_only_sessions();
        assert_eq!(standby.attrs(), SessionAttrs::Standby);
    }
}
