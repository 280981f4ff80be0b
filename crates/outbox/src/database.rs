//! The relay's own rows in the store's database: its checkpoint and its lease. The feed itself
//! (events, the head, commit times, wake-ups) comes through the store's `Feed` port.

use store::{Db, with_reader};

use crate::lease::Lease;
use crate::position::unsigned;

/// Where the relay keeps its checkpoint and finds out about new events: the event store's own
/// database. On PostgreSQL the lease is a session advisory lock on a dedicated connection, so
/// several service instances take turns; on SQLite one process owns the file, so the relay needs
/// no lock.
#[derive(Debug, Clone)]
pub struct RelayDb(Db);

impl RelayDb {
    /// The relay's rows in `db` (the store's database).
    pub fn new(db: Db) -> Self {
        Self(db)
    }
}

impl RelayDb {
    /// Takes the relay lease for `name` if nobody else holds it.
    /// `instance` names the holder on its lease connection.
    pub async fn try_lease(
        &self,
        name: &str,
        instance: Option<&str>,
    ) -> sqlx::Result<Option<Lease>> {
        match &self.0 {
            Db::Postgres(pool) => Lease::try_postgres(pool, name, instance).await,
            Db::Sqlite { writer, .. } => Lease::sqlite(writer, name).await.map(Some),
        }
    }

    /// The relay's stored checkpoint (0 when it never ran), read without taking the lease.
    pub async fn checkpoint(&self, name: &str) -> sqlx::Result<u64> {
        let position: Option<i64> = with_reader!(&self.0, pool => {
            sqlx::query_scalar("SELECT position FROM projections WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await?
        });
        unsigned(position.unwrap_or(0))
    }

    /// Who holds relay `name`'s lease now: on PostgreSQL the `application_name` of the session
    /// holding its advisory lock, with the relay's prefix removed (the instance's name, or
    /// `""` for a holder that gave none); `None` when nobody does. SQLite has one process per
    /// file and no lock to look at: `None`.
    pub async fn holder(&self, name: &str) -> sqlx::Result<Option<String>> {
        let Db::Postgres(pool) = &self.0 else {
            return Ok(None);
        };
        // A bigint advisory lock shows in pg_locks as its high half (classid) and its low half
        // (objid), with objsubid 1.
        let application: Option<String> = sqlx::query_scalar(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended($1, 0)
             LIMIT 1",
        )
        .bind(crate::lease::advisory_lock_name(name))
        .fetch_optional(pool)
        .await?;
        Ok(application.map(|app| {
            app.strip_prefix(crate::lease::APPLICATION_NAME)
                .unwrap_or(&app)
                .trim()
                .to_owned()
        }))
    }
}
