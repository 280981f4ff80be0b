//! What a projection batch does, independent of the database: decode, fold, collect the writes.

use std::collections::HashMap;

use domain::{Aggregate, DomainEvent, OrderAggregate, OrderEvent};
use event_store::RecordedEvent;
use uuid::Uuid;

use read_model::{Applied, OnError, walk};

use super::view::{OrderView, SummaryDelta, apply};

/// The writes a batch makes to the order read model, and what the engine must record.
#[derive(Debug, Default)]
pub struct BatchWrites {
    /// Rows to upsert, one per changed order.
    pub rows: Vec<OrderView>,
    /// Summary changes.
    pub summary: SummaryDelta,
    /// Events handled, parked or stopped at, and the new checkpoint.
    pub applied: Applied,
}

/// Folds each order event of `events` (in feed order, after checkpoint `after`) onto the row of
/// its order, under the engine's error policy: the one fold driver of the service's read models.
/// `rows` holds the current rows of the orders the batch touches; `apply` folds one event onto
/// one row (or none yet) and fails without side effects. Returns the changed rows, in the order
/// the batch first touched them, and what the engine records.
pub fn fold_orders<R: Clone>(
    events: &[RecordedEvent],
    mut rows: HashMap<Uuid, R>,
    after: u64,
    on_error: OnError,
    mut apply: impl FnMut(Option<&R>, &RecordedEvent, &OrderEvent) -> Result<R, String>,
) -> (Vec<R>, Applied) {
    let mut changed = Vec::new();
    let applied = walk(events, after, on_error, |recorded| {
        if recorded.aggregate_type != OrderAggregate::TYPE {
            return Ok(()); // another aggregate's event: nothing to do
        }
        let event = OrderEvent::from_stored(
            &recorded.event_type,
            recorded.schema_version,
            recorded.payload.clone(),
        )
        .map_err(|e| e.to_string())?;
        let correlation_id = recorded
            .metadata
            .get("correlation_id")
            .and_then(|v| v.as_str())
            .unwrap_or("");
        tracing::debug!(correlation_id, order_id = %recorded.aggregate_id, version = recorded.version, event_type = %recorded.event_type, position = ?recorded.position, "projecting event");
        let row = apply(rows.get(&recorded.aggregate_id), recorded, &event)?;
        if !changed.contains(&recorded.aggregate_id) {
            changed.push(recorded.aggregate_id);
        }
        rows.insert(recorded.aggregate_id, row);
        Ok(())
    });
    let rows = changed
        .into_iter()
        .filter_map(|id| rows.remove(&id))
        .collect();
    (rows, applied)
}

/// Folds `events` (in feed order, after checkpoint `after`) onto the current rows of the orders
/// they touch, under the engine's error policy.
pub fn fold_batch(
    events: &[RecordedEvent],
    rows: HashMap<Uuid, OrderView>,
    after: u64,
    on_error: OnError,
) -> BatchWrites {
    let mut summary = SummaryDelta::default();
    // The fold changes the summary only when it succeeds, so a failed event leaves both the row
    // and the summary as they were.
    let (rows, applied) = fold_orders(events, rows, after, on_error, |current, recorded, event| {
        apply(current.cloned(), recorded, event, &mut summary)
    });
    summary.compact();
    BatchWrites {
        rows,
        summary,
        applied,
    }
}

/// A read model's row of one order: what a batch loads for the orders it touches, folds, and
/// writes back.
pub trait OrderRow {
    /// The order the row is about.
    fn order_id(&self) -> Uuid;
}

impl OrderRow for OrderView {
    fn order_id(&self) -> Uuid {
        self.order_id
    }
}

/// `rows` keyed by their order.
pub fn by_order<R: OrderRow>(rows: Vec<R>) -> HashMap<Uuid, R> {
    rows.into_iter().map(|r| (r.order_id(), r)).collect()
}

/// The distinct order ids a batch touches.
pub fn order_ids(events: &[RecordedEvent]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = events
        .iter()
        .filter(|e| e.aggregate_type == OrderAggregate::TYPE)
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
        assert_eq!(
            (writes.applied.events, writes.applied.last_position),
            (3, 13)
        );
        assert_eq!(writes.applied.parked.len(), 1);
        assert_eq!(writes.rows.len(), 1);
        assert_eq!(writes.rows[0].status, "confirmed");
    }

    #[test]
    fn stop_halts_before_the_bad_event() {
        let writes = fold_batch(&feed(), HashMap::new(), 10, OnError::Stop);
        assert_eq!(
            (writes.applied.events, writes.applied.last_position),
            (1, 11)
        );
        assert!(writes.applied.parked.is_empty());
        assert_eq!(writes.applied.stopped.map(|s| s.position), Some(12));
        assert_eq!(writes.rows[0].status, "created");
    }

    #[test]
    fn rows_are_keyed_by_their_order() {
        let created = fixtures::order_created();
        let (a, b) = (Uuid::from_u128(7), Uuid::from_u128(9));
        let created_as = |id: Uuid| {
            let mut payload = created.to_payload();
            payload["order_id"] = serde_json::json!(id);
            payload
        };
        let events = vec![
            recorded(a, 1, 1, created.event_type(), created_as(a)),
            recorded(b, 1, 2, created.event_type(), created_as(b)),
        ];
        let writes = fold_batch(&events, HashMap::new(), 0, OnError::Stop);
        assert!(writes.applied.stopped.is_none(), "{:?}", writes.applied);
        let views = writes.rows;
        let keyed = by_order(views);
        assert_eq!(keyed.len(), 2);
        assert_eq!(keyed.get(&a).map(|v| v.order_id), Some(a));
        assert_eq!(keyed.get(&b).map(|v| v.order_id), Some(b));
        let lines = crate::customers::fold_batch(&events, HashMap::new(), 0, OnError::Stop).lines;
        let keyed = by_order(lines);
        assert_eq!(keyed.get(&a).map(|l| l.order_id), Some(a));
        assert_eq!(keyed.get(&b).map(|l| l.order_id), Some(b));
    }

    #[test]
    fn order_ids_are_the_distinct_orders_of_a_batch_in_order() {
        let created = fixtures::order_created();
        let (a, b) = (Uuid::from_u128(2), Uuid::from_u128(1));
        let mut other = recorded(
            Uuid::from_u128(3),
            1,
            4,
            "CartOpened",
            serde_json::json!({}),
        );
        other.aggregate_type = "Cart".into();
        let events = vec![
            recorded(a, 1, 1, created.event_type(), created.to_payload()),
            recorded(b, 1, 2, created.event_type(), created.to_payload()),
            recorded(a, 2, 3, "OrderConfirmed", serde_json::json!({})),
            other,
        ];
        assert_eq!(order_ids(&events), vec![b, a]);
        assert!(order_ids(&[]).is_empty());
    }
}
