//! `webhook_endpoints`: what each endpoint is (URL, filter, secret, state) and how its
//! deliveries go (the last attempt, since when it fails). Its checkpoint and lease live in its
//! `projections` row ([`checkpoint_name`]), written only by the fenced worker, [`replay`] and
//! [`EndpointTable::delete`]. One statement per operation, written once for both backends.
//!
//! [`replay`]: EndpointTable::replay

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use uuid::Uuid;

use store::{Db, SqlId, with_reader, with_writer};

/// The name of an endpoint's row in `projections`: its checkpoint and lease.
pub fn checkpoint_name(id: Uuid) -> String {
    format!("webhook:{id}")
}

/// Whether an endpoint receives deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointState {
    /// Deliveries go out.
    Active,
    /// Paused by staff; the checkpoint waits where it is.
    Paused,
    /// Paused by the service: an event was refused for longer than the retry period. Resuming
    /// tries that event again.
    Failing,
}

impl EndpointState {
    /// Its stored (and wire) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Failing => "failing",
        }
    }

    fn parse(text: &str) -> sqlx::Result<Self> {
        match text {
            "active" => Ok(Self::Active),
            "paused" => Ok(Self::Paused),
            "failing" => Ok(Self::Failing),
            other => Err(sqlx::Error::Decode(
                format!("unknown webhook endpoint state {other:?}").into(),
            )),
        }
    }
}

/// Which events an endpoint receives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only these event types; `None`: every type.
    pub event_types: Option<Vec<String>>,
    /// Only this customer's orders (and its `CustomerForgotten`); `None`: every customer's.
    pub customer_id: Option<Uuid>,
}

impl Filter {
    /// Whether an event of `event_type` passes the type filter.
    pub fn wants_type(&self, event_type: &str) -> bool {
        self.event_types
            .as_ref()
            .is_none_or(|types| types.iter().any(|t| t == event_type))
    }
}

/// The last delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// When it ended.
    pub at: DateTime<Utc>,
    /// The receiver's status code; `None` when no response came (refused, timed out, blocked).
    pub status: Option<u16>,
    /// Why it failed (or `None` for a 2xx): the error, or the start of the response body.
    pub error: Option<String>,
}

/// How an endpoint's deliveries go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Health {
    /// Events acknowledged with a 2xx.
    pub delivered: u64,
    /// The last 2xx.
    pub last_success_at: Option<DateTime<Utc>>,
    /// The first failed attempt at the event it is stuck on; `None` when it is not failing.
    pub failing_since: Option<DateTime<Utc>>,
    /// Failed attempts at that event.
    pub attempts: u64,
    /// When it tries again.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The last attempt.
    pub last_attempt: Option<Attempt>,
}

/// An endpoint as stored.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Its id.
    pub id: Uuid,
    /// Where deliveries go.
    pub url: String,
    /// Free text for people.
    pub description: String,
    /// Which events it receives.
    pub filter: Filter,
    /// Whether deliveries go out.
    pub state: EndpointState,
    /// The signing secret, wrapped under the master key.
    pub secret: Vec<u8>,
    /// The previous secret during a rotation, and until when it signs too.
    pub previous_secret: Option<(Vec<u8>, DateTime<Utc>)>,
    /// The master key that wrapped them.
    pub master_key_id: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// Who registered it (a token subject).
    pub created_by: String,
    /// How its deliveries go.
    pub health: Health,
}

/// A new endpoint.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    /// Its id.
    pub id: Uuid,
    /// Where deliveries go (checked by the outbound policy).
    pub url: String,
    /// Free text for people.
    pub description: String,
    /// Which events it receives.
    pub filter: Filter,
    /// The wrapped signing secret.
    pub secret: Vec<u8>,
    /// The master key that wrapped it.
    pub master_key_id: String,
    /// Who registers it.
    pub created_by: String,
    /// The feed position it starts after (the head at registration).
    pub after: u64,
}

#[derive(sqlx::FromRow)]
struct Row {
    endpoint_id: SqlId,
    url: String,
    description: String,
    event_types: Option<Json<Vec<String>>>,
    customer_id: Option<SqlId>,
    state: String,
    secret: Vec<u8>,
    previous_secret: Option<Vec<u8>>,
    previous_until: Option<DateTime<Utc>>,
    master_key_id: String,
    created_at: DateTime<Utc>,
    created_by: String,
    delivered: i64,
    last_success_at: Option<DateTime<Utc>>,
    failing_since: Option<DateTime<Utc>>,
    attempts: i64,
    next_attempt_at: Option<DateTime<Utc>>,
    last_attempt_at: Option<DateTime<Utc>>,
    last_status: Option<i32>,
    last_error: Option<String>,
}

impl TryFrom<Row> for Endpoint {
    type Error = sqlx::Error;

    fn try_from(row: Row) -> sqlx::Result<Self> {
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(Self {
            id: row.endpoint_id.0,
            url: row.url,
            description: row.description,
            filter: Filter {
                event_types: row.event_types.map(|Json(types)| types),
                customer_id: row.customer_id.map(|id| id.0),
            },
            state: EndpointState::parse(&row.state)?,
            secret: row.secret,
            previous_secret: row.previous_secret.zip(row.previous_until),
            master_key_id: row.master_key_id,
            created_at: row.created_at,
            created_by: row.created_by,
            health: Health {
                delivered: count(row.delivered),
                last_success_at: row.last_success_at,
                failing_since: row.failing_since,
                attempts: count(row.attempts),
                next_attempt_at: row.next_attempt_at,
                last_attempt: row.last_attempt_at.map(|at| Attempt {
                    at,
                    status: row.last_status.and_then(|s| u16::try_from(s).ok()),
                    error: row.last_error,
                }),
            },
        })
    }
}

const COLUMNS: &str = "endpoint_id, url, description, event_types, customer_id, state, secret, previous_secret, previous_until, master_key_id, created_at, created_by, delivered, last_success_at, failing_since, attempts, next_attempt_at, last_attempt_at, last_status, last_error";

const INSERT: &str = "INSERT INTO webhook_endpoints (endpoint_id, url, description, event_types, customer_id, state, secret, master_key_id, created_at, created_by)
    VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $8, $9)";

/// The endpoint's checkpoint row, created with it in one transaction.
const INSERT_CHECKPOINT: &str =
    "INSERT INTO projections (name, generation, position) VALUES ($1, 1, $2)";

/// Resuming clears what the failing run left, so the event it was stuck on is tried at once.
const SET_STATE: &str = "UPDATE webhook_endpoints SET state = $2,
        failing_since = CASE WHEN $2 = 'active' THEN NULL ELSE failing_since END,
        attempts = CASE WHEN $2 = 'active' THEN 0 ELSE attempts END,
        next_attempt_at = CASE WHEN $2 = 'active' THEN NULL ELSE next_attempt_at END
    WHERE endpoint_id = $1";

/// A replay moves the checkpoint and revokes the lease (a new epoch, no owner): the holder's
/// next fenced write fails, and whoever takes the lease starts after `position`.
const REPLAY: &str =
    "UPDATE projections SET position = $2, epoch = epoch + 1, owner = NULL, lease_until = NULL
    WHERE name = $1";

const CLEAR_FAILURE: &str =
    "UPDATE webhook_endpoints SET failing_since = NULL, attempts = 0, next_attempt_at = NULL
    WHERE endpoint_id = $1";

const ROTATE: &str = "UPDATE webhook_endpoints SET previous_secret = secret, previous_until = $4, secret = $2, master_key_id = $3
    WHERE endpoint_id = $1";

const REWRAP: &str =
    "UPDATE webhook_endpoints SET secret = $2, previous_secret = $3, master_key_id = $4
    WHERE endpoint_id = $1";

const SUCCEEDED: &str =
    "UPDATE webhook_endpoints SET delivered = delivered + $4, last_success_at = $2,
        failing_since = NULL, attempts = 0, next_attempt_at = NULL,
        last_attempt_at = $2, last_status = $3, last_error = NULL
    WHERE endpoint_id = $1";

const FAILED: &str = "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $2),
        attempts = attempts + 1, next_attempt_at = $3,
        last_attempt_at = $2, last_status = $4, last_error = $5
    WHERE endpoint_id = $1";

/// Only an active endpoint turns failing (a pause or delete by staff wins).
const GIVE_UP: &str = "UPDATE webhook_endpoints SET state = 'failing', next_attempt_at = NULL WHERE endpoint_id = $1 AND state = 'active'";

/// An endpoint's secrets re-wrapped under a new master key: its id, its secret and its previous
/// secret (during a rotation).
pub type Rewrapped = (Uuid, Vec<u8>, Option<Vec<u8>>);

/// The endpoints, in the service's database.
#[derive(Debug, Clone)]
pub struct EndpointTable(Db);

impl EndpointTable {
    /// The table in `db` (created by the migrations).
    pub fn new(db: Db) -> Self {
        Self(db)
    }

    /// Registers `endpoint`, starting after `endpoint.after`.
    pub async fn insert(&self, endpoint: &NewEndpoint) -> sqlx::Result<()> {
        let position = i64::try_from(endpoint.after)
            .map_err(|_| sqlx::Error::Protocol("position beyond BIGINT".into()))?;
        let now = Utc::now();
        with_writer!(&self.0, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(INSERT)
                .bind(SqlId(endpoint.id))
                .bind(&endpoint.url)
                .bind(&endpoint.description)
                .bind(endpoint.filter.event_types.clone().map(Json))
                .bind(endpoint.filter.customer_id.map(SqlId))
                .bind(&endpoint.secret)
                .bind(&endpoint.master_key_id)
                .bind(now)
                .bind(&endpoint.created_by)
                .execute(&mut *tx)
                .await?;
            sqlx::query(INSERT_CHECKPOINT)
                .bind(checkpoint_name(endpoint.id))
                .bind(position)
                .execute(&mut *tx)
                .await?;
            tx.commit().await
        })
    }

    /// Every endpoint, oldest first.
    pub async fn list(&self) -> sqlx::Result<Vec<Endpoint>> {
        let sql =
            format!("SELECT {COLUMNS} FROM webhook_endpoints ORDER BY created_at, endpoint_id");
        let rows: Vec<Row> = with_reader!(&self.0, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await?
        });
        rows.into_iter().map(Endpoint::try_from).collect()
    }

    /// One endpoint (read through the SQLite writer, which sees the latest state: a worker
    /// decides from it).
    pub async fn get(&self, id: Uuid) -> sqlx::Result<Option<Endpoint>> {
        let sql = format!("SELECT {COLUMNS} FROM webhook_endpoints WHERE endpoint_id = $1");
        let row: Option<Row> = with_writer!(&self.0, pool => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(SqlId(id)).fetch_optional(pool).await?
        });
        row.map(Endpoint::try_from).transpose()
    }

    /// Sets the state (pause, resume); whether the endpoint exists.
    pub async fn set_state(&self, id: Uuid, state: EndpointState) -> sqlx::Result<bool> {
        let done = with_writer!(&self.0, pool => {
            sqlx::query(SET_STATE).bind(SqlId(id)).bind(state.as_str()).execute(pool).await?.rows_affected()
        });
        Ok(done == 1)
    }

    /// Removes the endpoint and its checkpoint; whether it existed. Its worker stops at its
    /// next look at the row.
    pub async fn delete(&self, id: Uuid) -> sqlx::Result<bool> {
        with_writer!(&self.0, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query("DELETE FROM webhook_endpoints WHERE endpoint_id = $1")
                .bind(SqlId(id))
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM projections WHERE name = $1")
                .bind(checkpoint_name(id))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Restarts deliveries after `position` (see [`REPLAY`]); whether the endpoint exists.
    pub async fn replay(&self, id: Uuid, position: u64) -> sqlx::Result<bool> {
        let position = i64::try_from(position)
            .map_err(|_| sqlx::Error::Protocol("position beyond BIGINT".into()))?;
        with_writer!(&self.0, pool => {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(REPLAY)
                .bind(checkpoint_name(id))
                .bind(position)
                .execute(&mut *tx)
                .await?;
            sqlx::query(CLEAR_FAILURE).bind(SqlId(id)).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Replaces the secret; the previous one keeps signing until `previous_until`.
    pub async fn rotate(
        &self,
        id: Uuid,
        secret: &[u8],
        master_key_id: &str,
        previous_until: DateTime<Utc>,
    ) -> sqlx::Result<bool> {
        let done = with_writer!(&self.0, pool => {
            sqlx::query(ROTATE)
                .bind(SqlId(id))
                .bind(secret)
                .bind(master_key_id)
                .bind(previous_until)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// Stores secrets re-wrapped under the master key `master_key_id`, in one transaction:
    /// `(endpoint, secret, previous secret)`.
    pub async fn rewrap_all(
        &self,
        rewrapped: &[Rewrapped],
        master_key_id: &str,
    ) -> sqlx::Result<()> {
        with_writer!(&self.0, pool => {
            let mut tx = pool.begin().await?;
            for (id, secret, previous) in rewrapped {
                sqlx::query(REWRAP)
                    .bind(SqlId(*id))
                    .bind(secret)
                    .bind(previous.as_deref())
                    .bind(master_key_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        })
    }

    /// Records `count` acknowledgements, the last with `status`.
    pub async fn succeeded(&self, id: Uuid, count: u64, status: u16) -> sqlx::Result<()> {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        with_writer!(&self.0, pool => {
            sqlx::query(SUCCEEDED)
                .bind(SqlId(id))
                .bind(Utc::now())
                .bind(i32::from(status))
                .bind(count)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Records a failed attempt and when the next one is due.
    pub async fn failed(
        &self,
        id: Uuid,
        attempt: &Attempt,
        next_attempt_at: DateTime<Utc>,
    ) -> sqlx::Result<()> {
        with_writer!(&self.0, pool => {
            sqlx::query(FAILED)
                .bind(SqlId(id))
                .bind(attempt.at)
                .bind(next_attempt_at)
                .bind(attempt.status.map(i32::from))
                .bind(attempt.error.as_deref())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Marks an active endpoint failing (the retry period ran out).
    pub async fn give_up(&self, id: Uuid) -> sqlx::Result<()> {
        with_writer!(&self.0, pool => {
            sqlx::query(GIVE_UP).bind(SqlId(id)).execute(pool).await?.rows_affected()
        });
        Ok(())
    }
}
