//! `customer_keys`: one row per customer, owner of the wrapped data keys and of the record that
//! a customer was forgotten. The same table on both backends.

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use store::{Db, with_reader, with_writer};

/// A customer's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredKey {
    /// The data key, wrapped under the master key `master_key_id`.
    Active {
        /// Nonce and ciphertext of the data key.
        wrapped: Vec<u8>,
        /// Fingerprint of the master key that wrapped it.
        master_key_id: String,
    },
    /// The key was destroyed: the customer's personal data can no longer be read.
    Forgotten(Forgetting),
}

/// When a customer was forgotten, and by whom (a token subject; no personal data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forgetting {
    /// When the key was destroyed.
    pub at: DateTime<Utc>,
    /// The subject of the staff token (or `cli`) that asked.
    pub by: String,
}

/// The table, in the service's database. On SQLite, writes go through the single writer, reads
/// through the readers.
#[derive(Debug, Clone)]
pub struct KeyTable(Db);

/// Insert a key unless the customer has a row; either way the statement writes nothing else.
const INSERT: &str =
    "INSERT INTO customer_keys (customer_id, wrapped_key, master_key_id, created_at)
    VALUES ($1, $2, $3, $4) ON CONFLICT (customer_id) DO NOTHING";

const SELECT: &str = "SELECT wrapped_key, master_key_id, forgotten_at, forgotten_by FROM customer_keys WHERE customer_id = $1";

/// Destroy the key (or record a customer never seen); the first forgetting's time and author
/// stay.
const FORGET: &str = "INSERT INTO customer_keys (customer_id, wrapped_key, master_key_id, created_at, forgotten_at, forgotten_by)
    VALUES ($1, NULL, NULL, $2, $2, $3)
    ON CONFLICT (customer_id) DO UPDATE SET wrapped_key = NULL, master_key_id = NULL,
        forgotten_at = COALESCE(customer_keys.forgotten_at, excluded.forgotten_at),
        forgotten_by = COALESCE(customer_keys.forgotten_by, excluded.forgotten_by)";

const ACTIVE: &str = "SELECT customer_id, wrapped_key, master_key_id FROM customer_keys
    WHERE wrapped_key IS NOT NULL ORDER BY customer_id";

/// The forgettings since a time, for other instances to drop the keys they cached (an index
/// range scan on `customer_keys_forgotten`, migration 0006).
const FORGOTTEN_SINCE: &str = "SELECT customer_id FROM customer_keys WHERE forgotten_at > $1
    ORDER BY forgotten_at LIMIT 10000";

const REWRAP: &str = "UPDATE customer_keys SET wrapped_key = $2, master_key_id = $3
    WHERE customer_id = $1 AND wrapped_key IS NOT NULL";

impl KeyTable {
    /// The table in `db` (created by the migrations).
    pub fn new(db: Db) -> Self {
        Self(db)
    }

    /// The customers forgotten after `since` (by the forgetting instance's clock).
    pub async fn forgotten_since(&self, since: DateTime<Utc>) -> sqlx::Result<Vec<Uuid>> {
        with_reader!(&self.0, pool => {
            sqlx::query_scalar(FORGOTTEN_SINCE).bind(since).fetch_all(pool).await
        })
    }

    /// Stores `wrapped` as `customer_id`'s key unless the customer has a row, and returns the row
    /// as it then is (another instance's key, or a forgetting, wins over `wrapped`).
    pub async fn insert_if_absent(
        &self,
        customer_id: Uuid,
        wrapped: &[u8],
        master_key_id: &str,
    ) -> sqlx::Result<StoredKey> {
        let now = Utc::now();
        let inserted = with_writer!(&self.0, pool => {
            sqlx::query(INSERT)
                .bind(customer_id)
                .bind(wrapped)
                .bind(master_key_id)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if inserted == 1 {
            return Ok(active(wrapped, master_key_id));
        }
        // Someone else's row: read it (from the writer on SQLite, which has just seen it).
        self.get_from_writer(customer_id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    /// `customer_id`'s row, if any.
    pub async fn get(&self, customer_id: Uuid) -> sqlx::Result<Option<StoredKey>> {
        with_reader!(&self.0, pool => {
            Ok(read(sqlx::query(SELECT).bind(customer_id).fetch_optional(pool).await?))
        })
    }

    /// Destroys `customer_id`'s key. Idempotent: the first forgetting's time and author are kept
    /// and returned.
    pub async fn forget(&self, customer_id: Uuid, by: &str) -> sqlx::Result<Forgetting> {
        let now = Utc::now();
        with_writer!(&self.0, pool => {
            sqlx::query(FORGET)
                .bind(customer_id)
                .bind(now)
                .bind(by)
                .execute(pool)
                .await?
                .rows_affected()
        });
        match self.get_from_writer(customer_id).await? {
            Some(StoredKey::Forgotten(forgetting)) => Ok(forgetting),
            _ => Err(sqlx::Error::RowNotFound),
        }
    }

    /// Like [`Self::get`], read through the SQLite writer (which has just written it).
    async fn get_from_writer(&self, customer_id: Uuid) -> sqlx::Result<Option<StoredKey>> {
        with_writer!(&self.0, pool => {
            Ok(read(sqlx::query(SELECT).bind(customer_id).fetch_optional(pool).await?))
        })
    }

    /// Every customer with a live key: `(customer, wrapped key, master key id)`.
    pub async fn active(&self) -> sqlx::Result<Vec<(Uuid, Vec<u8>, String)>> {
        // From the writer on SQLite: a rotation reads these and rewraps them in one go.
        let rows: Vec<(Uuid, Vec<u8>, Option<String>)> = with_writer!(&self.0, pool => {
            sqlx::query_as(ACTIVE).fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(|(customer, wrapped, master)| (customer, wrapped, master.unwrap_or_default()))
            .collect())
    }

    /// Replaces the wrapped keys of `rows` in one transaction: all or none (master key rotation).
    pub async fn rewrap_all(
        &self,
        rows: &[(Uuid, Vec<u8>)],
        master_key_id: &str,
    ) -> sqlx::Result<()> {
        with_writer!(&self.0, pool => {
            let mut tx = pool.begin().await?;
            for (customer, wrapped) in rows {
                sqlx::query(REWRAP)
                    .bind(customer)
                    .bind(wrapped)
                    .bind(master_key_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        })
    }
}

fn active(wrapped: &[u8], master_key_id: &str) -> StoredKey {
    StoredKey::Active {
        wrapped: wrapped.to_vec(),
        master_key_id: master_key_id.to_owned(),
    }
}

/// A row of [`SELECT`] on either backend.
fn read<R>(row: Option<R>) -> Option<StoredKey>
where
    R: Row,
    for<'r> Option<Vec<u8>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<DateTime<Utc>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    let row = row?;
    let wrapped: Option<Vec<u8>> = row.try_get(0).ok()?;
    let master_key_id: Option<String> = row.try_get(1).ok()?;
    let forgotten_at: Option<DateTime<Utc>> = row.try_get(2).ok()?;
    let forgotten_by: Option<String> = row.try_get(3).ok()?;
    Some(match (wrapped, forgotten_at) {
        (Some(wrapped), None) => StoredKey::Active {
            wrapped,
            master_key_id: master_key_id.unwrap_or_default(),
        },
        (_, at) => StoredKey::Forgotten(Forgetting {
            at: at.unwrap_or_default(),
            by: forgotten_by.unwrap_or_default(),
        }),
    })
}
