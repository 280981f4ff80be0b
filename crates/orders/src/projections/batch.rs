//! What a projection batch does, independent of the database: decode, fold, collect the writes.

use std::collections::HashMap;

use domain::{DomainEvent, OrderEvent};
use event_store::RecordedEvent;
use uuid::Uuid;

use super::view::{OrderView, SummaryDelta, apply};

/// An event the projection could not apply, to be parked with its error.
#[derive(Debug, Clone)]
pub struct Parked {
    /// Its global position.
    pub position: u64,
    /// Its id.
    pub event_id: Uuid,
    /// Why it could not be applied.
    pub error: String,
}

/// What a projection does with an event it cannot apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OnError {
    /// Park it (with its error, visible in `orders projections status`) and go on.
    #[default]
    Park,
    /// Stop at it: nothing after it is applied until it can be (after a fix and a restart).
    Stop,
}

/// The writes a batch makes.
#[derive(Debug, Default)]
pub struct BatchWrites {
    /// Rows to upsert, one per changed order.
    pub rows: Vec<OrderView>,
    /// Summary changes.
    pub summary: SummaryDelta,
    /// Events that could not be applied.
    pub parked: Vec<Parked>,
    /// Position of the last event of the batch (the new checkpoint).
    pub last_position: u64,
    /// Events handled (applied, skipped or parked); the checkpoint moves past exactly these.
    pub events: usize,
    /// The event the projection stopped at, under [`OnError::Stop`].
    pub stopped: Option<Parked>,
}

/// Folds `events` (in feed order, after checkpoint `after`) onto the current rows of the orders
/// they touch.
pub fn fold_batch(
    events: &[RecordedEvent],
    mut rows: HashMap<Uuid, OrderView>,
    after: u64,
    on_error: OnError,
) -> BatchWrites {
    let mut writes = BatchWrites {
        last_position: after,
        ..Default::default()
    };
    let mut changed = Vec::new();
    for recorded in events {
        let position = recorded.position.unwrap_or(writes.last_position);
        if recorded.aggregate_type != "Order" {
            writes.events += 1;
            writes.last_position = position;
            continue;
        }
        let decoded = OrderEvent::from_stored(
            &recorded.event_type,
            recorded.schema_version,
            recorded.payload.clone(),
        )
        .map_err(|e| e.to_string());
        let failed = |error: String| Parked {
            position,
            event_id: recorded.event_id,
            error,
        };
        let event = match decoded {
            Ok(event) => event,
            Err(error) => {
                if on_error == OnError::Stop {
                    writes.stopped = Some(failed(error));
                    break;
                }
                writes.parked.push(failed(error));
                writes.events += 1;
                writes.last_position = position;
                continue;
            }
        };
        let correlation_id = recorded
            .metadata
            .get("correlation_id")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        tracing::debug!(correlation_id, order_id = %recorded.aggregate_id, version = recorded.version, event_type = %recorded.event_type, position = writes.last_position, "projecting event");
        let current = rows.remove(&recorded.aggregate_id);
        let keep = current.clone();
        match apply(current, recorded, &event, &mut writes.summary) {
            Ok(row) => {
                if !changed.contains(&recorded.aggregate_id) {
                    changed.push(recorded.aggregate_id);
                }
                rows.insert(recorded.aggregate_id, row);
            }
            Err(error) => {
                if let Some(row) = keep {
                    rows.insert(recorded.aggregate_id, row);
                }
                if on_error == OnError::Stop {
                    writes.stopped = Some(failed(error));
                    break;
                }
                writes.parked.push(failed(error));
            }
        }
        writes.events += 1;
        writes.last_position = position;
    }
    writes.summary.compact();
    writes.rows = changed
        .into_iter()
        .filter_map(|id| rows.remove(&id))
        .collect();
    writes
}

/// The distinct order ids a batch touches.
pub fn order_ids(events: &[RecordedEvent]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = events
        .iter()
        .filter(|e| e.aggregate_type == "Order")
        .map(|e| e.aggregate_id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use domain::testing::fixtures;
    use domain::{DomainEvent, OrderEvent};

    use super::*;

    fn recorded(
        aggregate_id: Uuid,
        version: u64,
        position: u64,
        event_type: &str,
        payload: serde_json::Value,
    ) -> RecordedEvent {
        RecordedEvent {
            event_id: Uuid::now_v7(),
            aggregate_id,
            aggregate_type: "Order".into(),
            version,
            position: Some(position),
            event_type: event_type.into(),
            schema_version: 1,
            payload,
            metadata: serde_json::json!({}),
            recorded_at: chrono::Utc::now(),
        }
    }

    fn feed() -> Vec<RecordedEvent> {
        let created = fixtures::order_created();
        let (good, bad) = (Uuid::now_v7(), Uuid::now_v7());
        let confirmed: OrderEvent = fixtures::order_confirmed();
        vec![
            recorded(good, 1, 11, created.event_type(), created.to_payload()),
            recorded(bad, 1, 12, "OrderTeleported", serde_json::json!({})),
            recorded(good, 2, 13, confirmed.event_type(), confirmed.to_payload()),
        ]
    }

    #[test]
    fn park_skips_the_bad_event_and_applies_the_rest() {
        let writes = fold_batch(&feed(), HashMap::new(), 10, OnError::Park);
        assert_eq!((writes.events, writes.last_position), (3, 13));
        assert_eq!(writes.parked.len(), 1);
        assert_eq!(writes.rows.len(), 1);
        assert_eq!(writes.rows[0].status, "confirmed");
    }

    #[test]
    fn stop_halts_before_the_bad_event() {
        let writes = fold_batch(&feed(), HashMap::new(), 10, OnError::Stop);
        assert_eq!((writes.events, writes.last_position), (1, 11));
        assert!(writes.parked.is_empty());
        assert_eq!(writes.stopped.map(|s| s.position), Some(12));
        assert_eq!(writes.rows[0].status, "created");
    }
}
