//! The command path's own connections: pooled, but never pinged.
//!
//! sqlx's pool sends a `Sync` round trip when a connection is taken (unless switched off) and
//! always again when it is given back. On a path whose whole cost is one or two statements that
//! was about a third of the round trips per command, so commands (loads and appends) use this
//! pool instead: a deadpool whose recycling does nothing. A connection that failed with anything
//! but a database error (an I/O or protocol error) is taken out of the pool and closed; sqlx
//! itself drains a connection whose query was abandoned half-way before its next query.

use std::sync::Arc;
use std::time::Duration;

use deadpool::managed::{self, Metrics, RecycleResult};
use event_store::EventStoreError;
use sqlx::postgres::PgConnection;

use crate::servers::{Servers, means_server_changed};

/// A connection on loan from [`CommandConnections`].
pub(crate) type Connection = managed::Object<Manager>;

/// Opens connections to the server in use (or the next one that fits, see [`Servers`]);
/// recycles them without a round trip.
#[derive(Debug)]
pub(crate) struct Manager {
    servers: Arc<Servers>,
}

impl managed::Manager for Manager {
    type Type = PgConnection;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<PgConnection, sqlx::Error> {
        // Every statement on these connections is prepared once and reaches its rows by index
        // probes whatever the parameters, so planning it again per execution (what PostgreSQL
        // does for array parameters, whose custom plans look cheaper) only costs CPU: measured,
        // planning took three times as long as running a load. One generic plan per statement
        // also means no plan can change with table statistics.
        self.servers
            .connect_adjusted(|options| {
                options.options([
                    ("plan_cache_mode", "force_generic_plan"),
                    JIT_OFF,
                    NO_STATEMENT_TIMEOUT,
                ])
            })
            .await
    }

    async fn recycle(&self, _: &mut PgConnection, _: &Metrics) -> RecycleResult<sqlx::Error> {
        Ok(())
    }
}

/// No JIT compilation of queries, on every connection the store opens. Without table statistics
/// (autovacuum off, a freshly loaded table) the planner's row estimates grow with the table, and
/// past `jit_above_cost` PostgreSQL compiles each query before running it. Measured on a never
/// analysed store of 430 000 events: a command's load took 52 ms, 18 of them emitting JIT code,
/// for a plan of index probes that ran in a fraction of a millisecond (`command-uncached` fell
/// to 0.06 of raw inserts at 16 workers). The store's queries are all short index probes: JIT
/// never pays for them.
pub(crate) const JIT_OFF: (&str, &str) = ("jit", "off");

/// No statement timeout on the store's connections, whatever the role or database sets: a timeout
/// that fires while a commit waits for the synchronous standby does not undo the commit, it only
/// stops the wait, and PostgreSQL then reports success for a commit that may be on one server
/// only (docs/adr/0020). The store bounds its waits on the client side instead.
pub(crate) const NO_STATEMENT_TIMEOUT: (&str, &str) = ("statement_timeout", "0");

/// The pool of command connections.
#[derive(Debug, Clone)]
pub(crate) struct CommandConnections {
    pool: managed::Pool<Manager>,
}

impl CommandConnections {
    /// Up to `max` connections opened on demand; waiting for one gives up after `wait`.
    pub(crate) fn new(servers: Arc<Servers>, max: usize, wait: Duration) -> Self {
        let pool = managed::Pool::builder(Manager { servers })
            .max_size(max.max(1))
            // The most recently used connection first: under light load one connection stays
            // hot (its prepared statements ready) and the others stay idle.
            .queue_mode(deadpool::managed::QueueMode::Lifo)
            .wait_timeout(Some(wait))
            .create_timeout(Some(wait))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .expect("a pool with a runtime and timeouts always builds");
        Self { pool }
    }

    /// A connection, opening one if none is idle and the pool is not full.
    pub(crate) async fn get(&self) -> Result<Connection, EventStoreError> {
        self.pool.get().await.map_err(|error| {
            tracing::warn!(%error, "no database connection for a command");
            EventStoreError::unavailable(std::io::Error::other(format!(
                "no database connection: {error}"
            )))
        })
    }

    /// Closes every idle connection (they are opened again on demand).
    pub(crate) fn close_idle(&self) {
        self.pool.retain(|_, _| false);
    }

    /// Connections (in use, idle).
    pub(crate) fn usage(&self) -> (usize, usize) {
        let status = self.pool.status();
        (
            status.size.saturating_sub(status.available),
            status.available,
        )
    }
}

/// Gives `connection` back unless `error` says the connection itself is broken, or that its
/// server no longer accepts writes (a demoted primary: the next connection goes elsewhere).
pub(crate) fn release_after(connection: Connection, error: Option<&sqlx::Error>) {
    if error.is_some_and(|e| e.as_database_error().is_none() || means_server_changed(e)) {
        drop(managed::Object::take(connection));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code

    use std::time::Duration;

    use sqlx::postgres::PgConnectOptions;

    use crate::{PostgresEventStore, PostgresOptions};

    /// Both kinds of connection the store opens run without JIT (and commands with generic
    /// plans), whatever the server's defaults.
    #[tokio::test]
    async fn no_connection_of_the_store_compiles_queries() {
        let database = test_support::postgres::fresh_database().await;
        let options: PgConnectOptions = database.url().parse().unwrap();
        let servers = crate::Servers::new(crate::ServerList::single(
            options,
            crate::SessionAttrs::ReadWrite,
        ));
        let commands = super::CommandConnections::new(servers, 1, Duration::from_secs(5));
        let mut command = commands.get().await.unwrap();
        let settings: (String, String) =
            sqlx::query_as("SELECT current_setting('jit'), current_setting('plan_cache_mode')")
                .fetch_one(&mut *command)
                .await
                .unwrap();
        assert_eq!(
            settings,
            ("off".to_owned(), "force_generic_plan".to_owned())
        );
        let store = PostgresEventStore::connect(database.url(), PostgresOptions::default())
            .await
            .unwrap();
        let jit: String = sqlx::query_scalar("SELECT current_setting('jit')")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(jit, "off");
    }
}
