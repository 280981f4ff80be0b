//! The append, inside the single writer's transaction.

use chrono::Utc;
use event_store::retry::{StoredEventRef, classify_existing};
use event_store::{AppendRequest, AppendResult, EventStoreError};
use sqlx::SqliteConnection;

use crate::rows::unavailable;
use crate::rows::{signed, unsigned, uuid};

/// Appends `request` on `conn`, which is inside a write transaction.
pub(crate) async fn append(
    conn: &mut SqliteConnection,
    request: &AppendRequest,
) -> Result<AppendResult, EventStoreError> {
    request.validate()?;
    let aggregate_id = request.aggregate_id.hyphenated().to_string();

    let ids: Vec<String> = request
        .events
        .iter()
        .map(|e| e.event_id.hyphenated().to_string())
        .collect();
    let ids_json =
        serde_json::to_string(&ids).map_err(|e| EventStoreError::InvalidAppend(e.to_string()))?;
    let rows = sqlx::query(
        "SELECT event_id, aggregate_id, version, position FROM events
         WHERE event_id IN (SELECT value FROM json_each(?1))",
    )
    .bind(&ids_json)
    .fetch_all(&mut *conn)
    .await
    .map_err(unavailable)?;
    let found = rows
        .iter()
        .map(|row| {
            Ok(StoredEventRef {
                event_id: uuid(row, "event_id")?,
                aggregate_id: uuid(row, "aggregate_id")?,
                version: unsigned(row, "version")?,
                position: Some(unsigned(row, "position")?),
            })
        })
        .collect::<Result<Vec<_>, EventStoreError>>()?;
    if let Some(retried) = classify_existing(request, &found)? {
        return Ok(retried);
    }

    let current: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM events WHERE aggregate_id = ?1")
            .bind(&aggregate_id)
            .fetch_one(&mut *conn)
            .await
            .map_err(unavailable)?;
    let current =
        u64::try_from(current).map_err(|_| EventStoreError::Corrupt("negative version".into()))?;
    if !request.expected.is_satisfied_by(current) {
        return Err(EventStoreError::Conflict {
            aggregate_id: request.aggregate_id,
            expected: request.expected,
            actual: current,
        });
    }

    let now = Utc::now();
    if let Some(record) = &request.idempotency {
        let taken: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM idempotency_keys WHERE scope = ?1 AND key = ?2")
                .bind(&record.scope)
                .bind(&record.key)
                .fetch_optional(&mut *conn)
                .await
                .map_err(unavailable)?;
        if taken.is_some() {
            return Err(EventStoreError::IdempotencyKeyUsed {
                scope: record.scope.clone(),
                key: record.key.clone(),
            });
        }
        sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, request_hash, response, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .bind(&record.scope)
        .bind(&record.key)
        .bind(&record.request_hash)
        .bind(record.response.to_string())
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(unavailable)?;
    }

    let mut last_position = 0;
    for (offset, (event, id)) in request.events.iter().zip(&ids).enumerate() {
        let row = sqlx::query(
            "INSERT INTO events (event_id, aggregate_id, aggregate_type, version, event_type,
                                 schema_version, payload, metadata, recorded_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             RETURNING position",
        )
        .bind(id)
        .bind(&aggregate_id)
        .bind(&event.aggregate_type)
        .bind(signed(current + offset as u64 + 1)?)
        .bind(&event.event_type)
        .bind(i64::from(event.schema_version))
        .bind(event.payload.to_string())
        .bind(event.metadata.to_string())
        .bind(now)
        .fetch_one(&mut *conn)
        .await
        .map_err(unavailable)?;
        last_position = unsigned(&row, "position")?;
    }
    Ok(AppendResult {
        aggregate_id: request.aggregate_id,
        first_version: current + 1,
        last_version: current + request.events.len() as u64,
        last_position: Some(last_position),
        deduplicated: false,
    })
}
