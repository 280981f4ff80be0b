//! Decoding rows into store types.

use chrono::{DateTime, Utc};
use event_store::{EventStoreError, FeedEvent, RecordedEvent};
use serde_json::value::RawValue;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

/// The columns [`recorded_event`] reads, in a `SELECT` list.
pub(crate) const EVENT_COLUMNS: &str = "event_id, aggregate_id, aggregate_type, version, position, \
     event_type, schema_version, payload, metadata, recorded_at";

fn corrupt(error: impl std::fmt::Display) -> EventStoreError {
    EventStoreError::Corrupt(error.to_string())
}

/// A stored UUID (hyphenated text).
pub(crate) fn uuid(row: &SqliteRow, column: &str) -> Result<Uuid, EventStoreError> {
    let text: &str = row.try_get(column).map_err(corrupt)?;
    Uuid::parse_str(text).map_err(corrupt)
}

/// A stored JSON document (text).
pub(crate) fn json(row: &SqliteRow, column: &str) -> Result<serde_json::Value, EventStoreError> {
    let text: &str = row.try_get(column).map_err(corrupt)?;
    serde_json::from_str(text).map_err(corrupt)
}

/// A stored non-negative integer.
pub(crate) fn unsigned(row: &SqliteRow, column: &str) -> Result<u64, EventStoreError> {
    let value: i64 = row.try_get(column).map_err(corrupt)?;
    u64::try_from(value).map_err(|_| corrupt(format!("{column} is negative: {value}")))
}

/// A `u64` as an SQLite integer.
pub(crate) fn signed(value: u64) -> Result<i64, EventStoreError> {
    i64::try_from(value).map_err(|_| {
        EventStoreError::InvalidAppend(format!("{value} does not fit an SQLite integer"))
    })
}

pub(crate) fn recorded_event(row: &SqliteRow) -> Result<RecordedEvent, EventStoreError> {
    let schema_version = unsigned(row, "schema_version")?;
    Ok(RecordedEvent {
        event_id: uuid(row, "event_id")?,
        aggregate_id: uuid(row, "aggregate_id")?,
        aggregate_type: row.try_get("aggregate_type").map_err(corrupt)?,
        version: unsigned(row, "version")?,
        position: Some(unsigned(row, "position")?),
        event_type: row.try_get("event_type").map_err(corrupt)?,
        schema_version: u32::try_from(schema_version).map_err(corrupt)?,
        payload: json(row, "payload")?,
        metadata: json(row, "metadata")?,
        recorded_at: row
            .try_get::<DateTime<Utc>, _>("recorded_at")
            .map_err(corrupt)?,
    })
}

/// A stored JSON document as its text, checked to be JSON but not parsed into a tree.
fn raw_json(row: &SqliteRow, column: &str) -> Result<Box<RawValue>, EventStoreError> {
    let text: String = row.try_get(column).map_err(corrupt)?;
    RawValue::from_string(text).map_err(corrupt)
}

pub(crate) fn feed_event(row: &SqliteRow) -> Result<FeedEvent, EventStoreError> {
    let schema_version = unsigned(row, "schema_version")?;
    Ok(FeedEvent {
        event_id: uuid(row, "event_id")?,
        aggregate_id: uuid(row, "aggregate_id")?,
        aggregate_type: row.try_get("aggregate_type").map_err(corrupt)?,
        version: unsigned(row, "version")?,
        position: unsigned(row, "position")?,
        event_type: row.try_get("event_type").map_err(corrupt)?,
        schema_version: u32::try_from(schema_version).map_err(corrupt)?,
        payload: raw_json(row, "payload")?,
        metadata: raw_json(row, "metadata")?,
        recorded_at: row
            .try_get::<DateTime<Utc>, _>("recorded_at")
            .map_err(corrupt)?,
    })
}

/// Any database error: the store is unavailable (the cause stays attached as the source).
pub(crate) fn unavailable(error: sqlx::Error) -> EventStoreError {
    tracing::warn!(error = %error, "event store query failed");
    EventStoreError::unavailable(error)
}
