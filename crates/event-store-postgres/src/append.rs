//! The append: one statement that checks and writes, and the slow path that explains a refusal.

use event_store::retry::{StoredEventRef, classify_existing};
use event_store::{AppendRequest, AppendResult, EventStoreError, ExpectedVersion};
use sqlx::Row;
use sqlx::postgres::PgConnection;
use uuid::Uuid;

use crate::errors::{UniqueViolation, append_failed, unavailable, unique_violation};
use crate::rows::unsigned;

/// How often an `Any`/`StreamExists` append retries after losing a race for the next version.
/// Such appends hold the stream's advisory lock ([`STREAM_LOCK_SQL`]), so they never race each
/// other; they can lose only to a fixed-expectation writer, which never retries.
const RACE_RETRIES: usize = 20;

/// Serializes loose-expectation writers of one stream until their transaction ends. The text key
/// is namespaced so it cannot meet another advisory lock of this database (the relay's lease uses
/// the same hashing of its own name).
const STREAM_LOCK_SQL: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('orders.event-store.stream:' || $1::text, 0))";

/// Whether an append with `expected` computes its version from what it finds (`Any`,
/// `StreamExists`) rather than naming it. Such appends take turns on the stream's lock and are
/// never batched by group commit: unlocked, 32 of them on one stream could make one lose every
/// retry (seen in CI), and a caller with no expectation must not be refused.
pub(crate) fn takes_turns(expected: ExpectedVersion) -> bool {
    matches!(
        expected,
        ExpectedVersion::Any | ExpectedVersion::StreamExists
    )
}

/// Reads the stream version, checks it lies in `[$3, $4]`, then inserts the events, their entries
/// in the sequencer's queue and the idempotency record, only if it does. A single statement is
/// atomic on its own.
pub(crate) const APPEND_SQL: &str = r#"
WITH current_version AS (
    SELECT COALESCE(MAX(version), 0) AS v FROM events WHERE aggregate_id = $1
), accepted AS (
    SELECT v FROM current_version WHERE v BETWEEN $3 AND $4
), idempotency AS (
    INSERT INTO idempotency_keys (scope, key, request_hash, response)
    SELECT $10, $11, $12, $13 FROM accepted WHERE $10::text IS NOT NULL
    RETURNING 1
), inserted AS (
    INSERT INTO events (event_id, aggregate_id, aggregate_type, version, event_type,
                        schema_version, payload, metadata)
    SELECT e.event_id, $1, $2, accepted.v + e.ord, e.event_type, e.schema_version, e.payload, e.metadata
    FROM accepted,
         UNNEST($5::uuid[], $6::text[], $7::int4[], $8::jsonb[], $9::jsonb[])
             WITH ORDINALITY AS e(event_id, event_type, schema_version, payload, metadata, ord)
    ORDER BY e.ord -- seq (and so feed order) follows version order within the batch
    RETURNING seq
), queued AS (
    INSERT INTO feed_queue (seq) SELECT seq FROM inserted
)
SELECT (SELECT v FROM current_version) AS current_version,
       (SELECT COUNT(*) FROM inserted) AS inserted
"#;

/// The inclusive range of current versions an expectation accepts.
pub(crate) fn accepted_range(expected: ExpectedVersion) -> (i64, i64) {
    match expected {
        ExpectedVersion::Any => (0, i64::MAX),
        ExpectedVersion::NoStream => (0, 0),
        ExpectedVersion::StreamExists => (1, i64::MAX),
        ExpectedVersion::Exact(v) => {
            let v = i64::try_from(v).unwrap_or(-1); // beyond BIGINT: can never match
            (v, v)
        }
    }
}

/// Appends `request` to PostgreSQL on its own (no group commit).
pub(crate) async fn append(
    connection: &mut PgConnection,
    request: &AppendRequest,
) -> Result<AppendResult, EventStoreError> {
    request.validate()?;
    let aggregate_type = &request.events[0].aggregate_type;
    let (low, high) = accepted_range(request.expected);
    let ids: Vec<Uuid> = request.events.iter().map(|e| e.event_id).collect();
    let types: Vec<&str> = request
        .events
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    let schemas: Vec<i32> = request
        .events
        .iter()
        .map(|e| i32::try_from(e.schema_version))
        .collect::<Result<_, _>>()
        .map_err(|_| {
            EventStoreError::InvalidAppend("schema_version does not fit an INTEGER".into())
        })?;
    let payloads: Vec<&serde_json::Value> = request.events.iter().map(|e| &e.payload).collect();
    let metadata: Vec<&serde_json::Value> = request.events.iter().map(|e| &e.metadata).collect();
    let idem = request.idempotency.as_ref();

    let locked = takes_turns(request.expected);
    for _ in 0..RACE_RETRIES {
        let query = sqlx::query(APPEND_SQL)
            .bind(request.aggregate_id)
            .bind(aggregate_type)
            .bind(low)
            .bind(high)
            .bind(&ids)
            .bind(&types)
            .bind(&schemas)
            .bind(&payloads)
            .bind(&metadata)
            .bind(idem.map(|r| r.scope.as_str()))
            .bind(idem.map(|r| r.key.as_str()))
            .bind(idem.map(|r| r.request_hash.as_str()))
            .bind(idem.map(|r| &r.response));
        let outcome = if locked {
            in_turn(connection, request.aggregate_id, query).await
        } else {
            query.fetch_one(&mut *connection).await
        };
        let row = match outcome {
            Ok(row) => row,
            Err(error) => match unique_violation(&error) {
                Some(UniqueViolation::EventId) => {
                    return explain_refusal(connection, request, None).await;
                }
                Some(UniqueViolation::IdempotencyKey) => {
                    let record = idem
                        .map(|r| (r.scope.clone(), r.key.clone()))
                        .unwrap_or_default();
                    return Err(EventStoreError::IdempotencyKeyUsed {
                        scope: record.0,
                        key: record.1,
                    });
                }
                // Another writer committed the version we computed. With a fixed expectation that
                // is a conflict; with a loose one, read the new version and try again.
                Some(UniqueViolation::StreamVersion) => match request.expected {
                    ExpectedVersion::Any | ExpectedVersion::StreamExists => continue,
                    _ => return explain_refusal(connection, request, None).await,
                },
                None => return Err(append_failed(error)),
            },
        };
        let current: i64 = row.try_get("current_version").map_err(unavailable)?;
        let inserted: i64 = row.try_get("inserted").map_err(unavailable)?;
        let current = unsigned(current, "version")?;
        if inserted == 0 {
            return explain_refusal(connection, request, Some(current)).await;
        }
        tracing::debug!(aggregate_id = %request.aggregate_id, events = inserted, from_version = current + 1, "appended");
        return Ok(AppendResult {
            aggregate_id: request.aggregate_id,
            first_version: current + 1,
            last_version: current + unsigned(inserted, "inserted")?,
            last_position: None,
            deduplicated: false,
        });
    }
    Err(EventStoreError::unavailable(std::io::Error::other(
        format!(
            "gave up appending to {} after {RACE_RETRIES} lost races",
            request.aggregate_id
        ),
    )))
}

/// Runs `query` in a transaction that first takes the stream's advisory lock.
async fn in_turn<'q>(
    connection: &mut PgConnection,
    aggregate_id: Uuid,
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
) -> Result<sqlx::postgres::PgRow, sqlx::Error> {
    let mut transaction = sqlx::Connection::begin(&mut *connection).await?;
    sqlx::query(STREAM_LOCK_SQL)
        .bind(aggregate_id)
        .execute(&mut *transaction)
        .await?;
    let row = query.fetch_one(&mut *transaction).await?;
    transaction.commit().await?;
    Ok(row)
}

/// The append wrote nothing: it is either a retry of an earlier append (success), a duplicate
/// event id, or a version conflict.
async fn explain_refusal(
    connection: &mut PgConnection,
    request: &AppendRequest,
    current: Option<u64>,
) -> Result<AppendResult, EventStoreError> {
    let ids: Vec<Uuid> = request.events.iter().map(|e| e.event_id).collect();
    let rows = sqlx::query(
        "SELECT e.event_id, e.aggregate_id, e.version,
                (SELECT p.position FROM event_positions p WHERE p.seq = e.seq) AS position
         FROM events e WHERE e.event_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut *connection)
    .await
    .map_err(unavailable)?;
    let found = rows
        .iter()
        .map(|row| {
            let version: i64 = row.try_get("version").map_err(unavailable)?;
            let position: Option<i64> = row.try_get("position").map_err(unavailable)?;
            Ok(StoredEventRef {
                event_id: row.try_get("event_id").map_err(unavailable)?,
                aggregate_id: row.try_get("aggregate_id").map_err(unavailable)?,
                version: unsigned(version, "version")?,
                position: position.map(|p| unsigned(p, "position")).transpose()?,
            })
        })
        .collect::<Result<Vec<_>, EventStoreError>>()?;
    if let Some(retried) = classify_existing(request, &found)? {
        return Ok(retried);
    }
    let actual = match current {
        Some(version) => version,
        None => current_version(&mut *connection, request.aggregate_id).await?,
    };
    Err(EventStoreError::Conflict {
        aggregate_id: request.aggregate_id,
        expected: request.expected,
        actual,
    })
}

/// Stream `$1`'s version: its last event's, 0 when it has none (the unique index's last entry).
pub(crate) const CURRENT_VERSION_SQL: &str =
    "SELECT COALESCE(MAX(version), 0) FROM events WHERE aggregate_id = $1";

/// The stream's version (0 when it does not exist).
pub(crate) async fn current_version(
    executor: impl sqlx::PgExecutor<'_>,
    aggregate_id: Uuid,
) -> Result<u64, EventStoreError> {
    let version: i64 = sqlx::query_scalar(CURRENT_VERSION_SQL)
        .bind(aggregate_id)
        .fetch_one(executor)
        .await
        .map_err(unavailable)?;
    unsigned(version, "version")
}
