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
    /// Events read.
    pub events: usize,
}

/// Folds `events` (in feed order) onto the current rows of the orders they touch.
pub fn fold_batch(events: &[RecordedEvent], mut rows: HashMap<Uuid, OrderView>) -> BatchWrites {
    let mut writes = BatchWrites {
        events: events.len(),
        ..Default::default()
    };
    let mut changed = Vec::new();
    for recorded in events {
        writes.last_position = recorded.position.unwrap_or(writes.last_position);
        if recorded.aggregate_type != "Order" {
            continue;
        }
        let decoded = OrderEvent::from_stored(
            &recorded.event_type,
            recorded.schema_version,
            recorded.payload.clone(),
        )
        .map_err(|e| e.to_string());
        let mut park = |error: String| {
            writes.parked.push(Parked {
                position: recorded.position.unwrap_or_default(),
                event_id: recorded.event_id,
                error,
            })
        };
        let event = match decoded {
            Ok(event) => event,
            Err(error) => {
                park(error);
                continue;
            }
        };
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
                park(error);
            }
        }
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
