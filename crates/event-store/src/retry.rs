//! Telling a retried append from a conflicting one: the rule every backend shares.

use uuid::Uuid;

use crate::{AppendRequest, AppendResult, EventStoreError, Result};

/// Where an event id of the batch is already stored.
#[derive(Debug, Clone, Copy)]
pub struct StoredEventRef {
    /// The id.
    pub event_id: Uuid,
    /// Its stream.
    pub aggregate_id: Uuid,
    /// Its version there.
    pub version: u64,
    /// Its global position, if assigned.
    pub position: Option<u64>,
}

/// Decides what an append whose event ids were (partly) found already stored means.
///
/// - none found: `Ok(None)`, it is a new append;
/// - all found, in this stream, at contiguous versions in batch order: `Ok(Some(result))`, a retry
///   of an earlier append, answered as that append was, with `deduplicated` set;
/// - anything else: [`EventStoreError::DuplicateEvent`].
pub fn classify_existing(
    request: &AppendRequest,
    found: &[StoredEventRef],
) -> Result<Option<AppendResult>> {
    if found.is_empty() {
        return Ok(None);
    }
    let mut versions = Vec::with_capacity(request.events.len());
    for event in &request.events {
        let Some(stored) = found.iter().find(|f| f.event_id == event.event_id) else {
            let first = found[0];
            return Err(EventStoreError::DuplicateEvent {
                event_id: first.event_id,
                detail: format!(
                    "at version {} of stream {} while other events of the batch are not",
                    first.version, first.aggregate_id
                ),
            });
        };
        if stored.aggregate_id != request.aggregate_id {
            return Err(EventStoreError::DuplicateEvent {
                event_id: stored.event_id,
                detail: format!("in another stream ({})", stored.aggregate_id),
            });
        }
        versions.push((stored.version, stored.position));
    }
    let contiguous = versions.windows(2).all(|w| w[1].0 == w[0].0 + 1);
    let (first_version, last) = (versions[0].0, versions[versions.len() - 1]);
    if !contiguous {
        return Err(EventStoreError::DuplicateEvent {
            event_id: request.events[0].event_id,
            detail: "in this stream, but not as one contiguous batch in this order".into(),
        });
    }
    Ok(Some(AppendResult {
        aggregate_id: request.aggregate_id,
        first_version,
        last_version: last.0,
        last_position: last.1,
        deduplicated: true,
    }))
}
