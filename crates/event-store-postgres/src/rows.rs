//! Decoding rows into store types.

use chrono::{DateTime, Utc};
use event_store::{EventStoreError, FeedEvent, RecordedEvent};
use serde_json::value::RawValue;
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use uuid::Uuid;

/// The columns [`recorded_event`] reads from `events e`; the position is looked up by the unique
/// `event_positions.seq`, one index probe per event whatever the table statistics.
pub(crate) const EVENT_COLUMNS: &str = "e.event_id, e.aggregate_id, e.aggregate_type, e.version, \
     (SELECT p.position FROM event_positions p WHERE p.seq = e.seq) AS position, \
     e.event_type, e.schema_version, e.payload, e.metadata, e.recorded_at";

/// [`EVENT_COLUMNS`] for a feed read, whose `feed` rows already carry each position.
pub(crate) const FEED_COLUMNS: &str = "e.event_id, e.aggregate_id, e.aggregate_type, e.version, \
     feed.position, e.event_type, e.schema_version, e.payload, e.metadata, e.recorded_at";

/// A non-negative database integer as `u64`, or a `Corrupt` error naming the column.
pub(crate) fn unsigned(value: i64, column: &str) -> Result<u64, EventStoreError> {
    u64::try_from(value)
        .map_err(|_| EventStoreError::Corrupt(format!("{column} is negative: {value}")))
}

/// A `u64` as a database `BIGINT`.
pub(crate) fn signed(value: u64) -> Result<i64, EventStoreError> {
    i64::try_from(value).map_err(|_| {
        EventStoreError::InvalidAppend(format!("version {value} does not fit a BIGINT"))
    })
}

pub(crate) fn recorded_event(row: &PgRow) -> Result<RecordedEvent, EventStoreError> {
    let corrupt = |e: sqlx::Error| EventStoreError::Corrupt(e.to_string());
    let version: i64 = row.try_get("version").map_err(corrupt)?;
    let position: Option<i64> = row.try_get("position").map_err(corrupt)?;
    let schema_version: i32 = row.try_get("schema_version").map_err(corrupt)?;
    Ok(RecordedEvent {
        event_id: row.try_get::<Uuid, _>("event_id").map_err(corrupt)?,
        aggregate_id: row.try_get::<Uuid, _>("aggregate_id").map_err(corrupt)?,
        aggregate_type: row.try_get("aggregate_type").map_err(corrupt)?,
        version: unsigned(version, "version")?,
        position: position.map(|p| unsigned(p, "position")).transpose()?,
        event_type: row.try_get("event_type").map_err(corrupt)?,
        schema_version: u32::try_from(schema_version)
            .map_err(|_| EventStoreError::Corrupt(format!("schema_version {schema_version}")))?,
        payload: row.try_get("payload").map_err(corrupt)?,
        metadata: row.try_get("metadata").map_err(corrupt)?,
        recorded_at: row
            .try_get::<DateTime<Utc>, _>("recorded_at")
            .map_err(corrupt)?,
    })
}

/// A feed row as [`FeedEvent`]: JSONB arrives as its text (after a version byte), which is checked
/// and kept, never parsed into a tree.
pub(crate) fn feed_event(row: &PgRow) -> Result<FeedEvent, EventStoreError> {
    let corrupt = |e: sqlx::Error| EventStoreError::Corrupt(e.to_string());
    let version: i64 = row.try_get("version").map_err(corrupt)?;
    let position: i64 = row.try_get("position").map_err(corrupt)?;
    let schema_version: i32 = row.try_get("schema_version").map_err(corrupt)?;
    let json = |column: &str| -> Result<Box<RawValue>, EventStoreError> {
        let Json(raw) = row
            .try_get::<Json<Box<RawValue>>, _>(column)
            .map_err(corrupt)?;
        Ok(raw)
    };
    Ok(FeedEvent {
        event_id: row.try_get::<Uuid, _>("event_id").map_err(corrupt)?,
        aggregate_id: row.try_get::<Uuid, _>("aggregate_id").map_err(corrupt)?,
        aggregate_type: row.try_get("aggregate_type").map_err(corrupt)?,
        version: unsigned(version, "version")?,
        position: unsigned(position, "position")?,
        event_type: row.try_get("event_type").map_err(corrupt)?,
        schema_version: u32::try_from(schema_version)
            .map_err(|_| EventStoreError::Corrupt(format!("schema_version {schema_version}")))?,
        payload: json("payload")?,
        metadata: json("metadata")?,
        recorded_at: row
            .try_get::<DateTime<Utc>, _>("recorded_at")
            .map_err(corrupt)?,
    })
}
