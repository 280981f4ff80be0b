//! `console_links`: the login links that were used, so that each works once, on every instance.
//! The same table on both backends.

use super::session::{ConsoleAuthError, Link};
use store::{Db, with_writer};

/// The table, in the service's database (on SQLite, through the single writer).
#[derive(Debug, Clone)]
pub struct LinkTable(Db);

/// A link is recorded when it is used; a second use finds the row and changes nothing.
const USE: &str = "INSERT INTO console_links (link_id, subject, used_at, expires_at)
    VALUES ($1, $2, $3, $4) ON CONFLICT (link_id) DO NOTHING";

/// Rows of links that have expired can never be presented again: they go.
const PURGE: &str = "DELETE FROM console_links WHERE expires_at < $1";

impl LinkTable {
    /// The table in `db` (created by the migrations).
    pub fn new(db: Db) -> Self {
        Self(db)
    }

    /// Records that `link` was used now; [`ConsoleAuthError::Used`] if it was before.
    pub async fn use_once(&self, link: &Link) -> Result<(), UseError> {
        let now = i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap_or(i64::MAX);
        let expires = i64::try_from(link.expires_at).unwrap_or(i64::MAX);
        let id = link.id.to_string();
        let inserted = with_writer!(&self.0, pool => {
            sqlx::query(PURGE).bind(now).execute(pool).await?;
            sqlx::query(USE)
                .bind(&id)
                .bind(&link.subject)
                .bind(now)
                .bind(expires)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if inserted == 1 {
            Ok(())
        } else {
            Err(UseError::Refused(ConsoleAuthError::Used))
        }
    }
}

/// Why a link could not be used.
#[derive(Debug, thiserror::Error)]
pub enum UseError {
    /// Used before.
    #[error(transparent)]
    Refused(#[from] ConsoleAuthError),
    /// The database did not answer.
    #[error("recording the link's use failed: {0}")]
    Database(#[from] sqlx::Error),
}
