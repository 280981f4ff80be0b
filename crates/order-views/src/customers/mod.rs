//! The per-customer summary: how many orders a customer has in each status, what it spent per
//! currency, and when it ordered first and last. A second read model on the engine: this file is
//! its pure fold; `schema.rs` its tables (and what makes it a [`crate::projection::PerOrderModel`]),
//! `postgres.rs` and `sqlite.rs` the batch write each backend does its own way, `model.rs` its
//! query.

pub mod model;
pub mod postgres;
pub mod schema;
pub mod sqlite;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use domain::{OrderEvent, OrderStatus};
use event_store::RecordedEvent;
use read_model::{Applied, OnError};

use uuid::Uuid;

pub use self::schema::CustomerTables;
use crate::batch::{OrderRow, fold_orders};

/// Name of the summary's projection (its checkpoint row).
pub const CUSTOMERS_PROJECTION: &str = "customer-summaries";

/// The customer summary as a projection.
#[derive(Debug, Clone, Copy, Default)]
pub struct CustomerProjection;

/// What the summary keeps of one order.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrderLine {
    /// The order.
    #[sqlx(try_from = "store::SqlId")]
    pub order_id: Uuid,
    /// Its customer.
    #[sqlx(try_from = "store::SqlId")]
    pub customer_id: Uuid,
    /// Its status.
    pub status: String,
    /// Its currency.
    pub currency: String,
    /// Its total, minor units.
    pub total_minor: i64,
    /// Whether its total counts as spent (confirmed and not cancelled).
    pub spent: bool,
    /// The stream version the line reflects.
    #[sqlx(try_from = "i64")]
    pub version: u64,
}

impl OrderRow for OrderLine {
    fn order_id(&self) -> Uuid {
        self.order_id
    }
}

/// One customer's changes in a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerChange {
    /// New orders.
    pub orders: i64,
    /// Earliest creation among them.
    pub first_order_at: Option<DateTime<Utc>>,
    /// Latest creation among them.
    pub last_order_at: Option<DateTime<Utc>>,
    /// Orders per status (+1 entering, −1 leaving).
    pub by_status: BTreeMap<String, i64>,
    /// Per currency: (orders, total minor units) spent.
    pub spend: BTreeMap<String, (i64, i64)>,
}

impl CustomerChange {
    fn created(&mut self, at: DateTime<Utc>) {
        self.orders += 1;
        self.first_order_at = Some(self.first_order_at.map_or(at, |t| t.min(at)));
        self.last_order_at = Some(self.last_order_at.map_or(at, |t| t.max(at)));
    }

    fn status(&mut self, status: &str, delta: i64) {
        *self.by_status.entry(status.to_owned()).or_default() += delta;
    }

    fn spend(&mut self, currency: &str, orders: i64, total: i64) {
        let entry = self.spend.entry(currency.to_owned()).or_default();
        entry.0 = entry.0.saturating_add(orders);
        entry.1 = entry.1.saturating_add(total);
    }

    /// Drops entries that cancelled out.
    fn compact(&mut self) {
        self.by_status.retain(|_, n| *n != 0);
        self.spend.retain(|_, (n, t)| *n != 0 || *t != 0);
    }
}

/// What `event` does to its order's line and its customer. Fails (changing nothing) when the
/// event does not follow the line.
pub fn apply(
    line: Option<&OrderLine>,
    recorded: &RecordedEvent,
    event: &OrderEvent,
    changes: &mut HashMap<Uuid, CustomerChange>,
) -> Result<OrderLine, String> {
    if let Some(line) = line
        && recorded.version != line.version + 1
    {
        return Err(format!(
            "version {} follows version {} of order {}",
            recorded.version, line.version, line.order_id
        ));
    }
    let (line, event) = match (line, event) {
        (None, OrderEvent::Created(created)) => {
            if recorded.version != 1 {
                return Err(format!("OrderCreated at version {}", recorded.version));
            }
            let change = changes.entry(created.customer_id).or_default();
            change.created(recorded.recorded_at);
            change.status(OrderStatus::Created.as_str(), 1);
            return Ok(OrderLine {
                order_id: recorded.aggregate_id,
                customer_id: created.customer_id,
                status: OrderStatus::Created.as_str().to_owned(),
                currency: created.currency.as_str().to_owned(),
                total_minor: created.total.amount_minor(),
                spent: false,
                version: recorded.version,
            });
        }
        (None, _) => return Err("an event before the order was created".into()),
        (Some(_), OrderEvent::Created(_)) => return Err("a second OrderCreated".into()),
        (Some(line), event) => (line, event),
    };
    let mut next = line.clone();
    let change = changes.entry(line.customer_id).or_default();
    match event {
        OrderEvent::Created(_) | OrderEvent::ShippingAddressChanged(_) => {} // nothing to count
        OrderEvent::Confirmed(_) => {
            next.status = OrderStatus::Confirmed.as_str().into();
            next.spent = true;
            change.spend(&line.currency, 1, line.total_minor);
        }
        OrderEvent::Cancelled(_) => {
            next.status = OrderStatus::Cancelled.as_str().into();
            if line.spent {
                next.spent = false;
                change.spend(&line.currency, -1, line.total_minor.saturating_neg());
            }
        }
        OrderEvent::Shipped(_) => next.status = OrderStatus::Shipped.as_str().into(),
        OrderEvent::Delivered(_) => next.status = OrderStatus::Delivered.as_str().into(),
    }
    change.status(&line.status, -1);
    change.status(&next.status, 1);
    next.version = recorded.version;
    Ok(next)
}

/// The writes of one batch.
#[derive(Debug, Default)]
pub struct SummaryWrites {
    /// Order lines to upsert.
    pub lines: Vec<OrderLine>,
    /// Per-customer changes.
    pub changes: BTreeMap<Uuid, CustomerChange>,
    /// What the engine records.
    pub applied: Applied,
}

/// Folds `events` onto `lines` (the current lines of the orders they touch).
pub fn fold_batch(
    events: &[RecordedEvent],
    lines: HashMap<Uuid, OrderLine>,
    after: u64,
    on_error: OnError,
) -> SummaryWrites {
    let mut changes: HashMap<Uuid, CustomerChange> = HashMap::new();
    let (lines, applied) = fold_orders(events, lines, after, on_error, |line, recorded, event| {
        apply(line, recorded, event, &mut changes)
    });
    let changes = changes
        .into_iter()
        .map(|(id, mut change)| {
            change.compact();
            (id, change)
        })
        .collect();
    SummaryWrites {
        lines,
        changes,
        applied,
    }
}

/// One customer's summary as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerSummary {
    /// All its orders.
    pub orders: i64,
    /// When it ordered first.
    pub first_order_at: Option<DateTime<Utc>>,
    /// When it ordered last.
    pub last_order_at: Option<DateTime<Utc>>,
    /// (status, orders), statuses without orders left out.
    pub by_status: Vec<(String, i64)>,
    /// (currency, orders, total minor units) spent.
    pub spend: Vec<(String, i64, i64)>,
}

#[cfg(test)]
mod tests {
    use domain::testing::fixtures;
    use domain::{DomainEvent, OrderEvent};

    use super::*;

    fn recorded(order: Uuid, version: u64, position: u64, event: &OrderEvent) -> RecordedEvent {
        RecordedEvent {
            event_id: Uuid::now_v7(),
            aggregate_id: order,
            aggregate_type: "Order".into(),
            version,
            position: Some(position),
            event_type: event.event_type().into(),
            schema_version: 1,
            payload: event.to_payload(),
            metadata: serde_json::json!({}),
            recorded_at: chrono::Utc::now(),
        }
    }

    /// The fixture's creation, its customer and its total.
    fn created() -> (OrderEvent, Uuid, i64) {
        let created = fixtures::order_created();
        let OrderEvent::Created(c) = &created else {
            unreachable!("the fixture is an OrderCreated")
        };
        let (customer, total) = (c.customer_id, c.total.amount_minor());
        (created, customer, total)
    }

    #[test]
    fn spend_counts_confirmed_orders_until_they_are_cancelled() {
        let (created, customer, total) = created();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let confirmed = fixtures::order_confirmed();
        let cancelled = fixtures::order_cancelled();
        let events = vec![
            recorded(a, 1, 1, &created),
            recorded(b, 1, 2, &created),
            recorded(a, 2, 3, &confirmed),
            recorded(b, 2, 4, &confirmed),
            recorded(b, 3, 5, &cancelled),
        ];
        let writes = fold_batch(&events, HashMap::new(), 0, OnError::Park);
        assert_eq!(
            (writes.applied.events, writes.applied.last_position),
            (5, 5)
        );
        assert!(writes.applied.parked.is_empty());
        let change = &writes.changes[&customer];
        assert_eq!(change.orders, 2);
        assert!(change.first_order_at <= change.last_order_at);
        assert_eq!(
            change.by_status,
            BTreeMap::from([("cancelled".into(), 1), ("confirmed".into(), 1)])
        );
        assert_eq!(change.spend, BTreeMap::from([("EUR".into(), (1, total))]));
        let line_b = writes.lines.iter().find(|l| l.order_id == b).unwrap();
        assert_eq!(
            (line_b.status.as_str(), line_b.spent, line_b.version),
            ("cancelled", false, 3)
        );
    }

    #[test]
    fn an_event_that_does_not_follow_changes_nothing_and_is_parked() {
        let created = fixtures::order_created();
        let order = Uuid::now_v7();
        let events = vec![
            recorded(order, 1, 1, &created),
            recorded(order, 3, 2, &fixtures::order_confirmed()),
        ];
        let writes = fold_batch(&events, HashMap::new(), 0, OnError::Park);
        assert_eq!(writes.applied.parked.len(), 1);
        assert_eq!(writes.applied.parked[0].position, 2);
        let change = writes.changes.values().next().unwrap();
        assert_eq!(change.by_status, BTreeMap::from([("created".into(), 1)]));
        assert!(change.spend.is_empty());
    }

    #[test]
    fn first_and_last_order_are_the_earliest_and_latest_creation() {
        let (created, customer, _) = created();
        let at = |s: &str| s.parse::<DateTime<Utc>>().expect("a timestamp");
        let (early, middle, late) = (
            at("2026-11-01T00:00:00Z"),
            at("2026-11-15T00:00:00Z"),
            at("2026-11-30T00:00:00Z"),
        );
        // Out of order in the feed: the summary takes the times, not the feed's order.
        let events: Vec<_> = [middle, late, early]
            .into_iter()
            .enumerate()
            .map(|(i, recorded_at)| RecordedEvent {
                recorded_at,
                ..recorded(Uuid::now_v7(), 1, i as u64 + 1, &created)
            })
            .collect();
        let writes = fold_batch(&events, HashMap::new(), 0, OnError::Park);
        let change = &writes.changes[&customer];
        assert_eq!(
            (change.orders, change.first_order_at, change.last_order_at),
            (3, Some(early), Some(late))
        );
    }

    #[test]
    fn shipping_and_delivering_move_the_status_and_keep_the_spend() {
        let (created, customer, total) = created();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let events = vec![
            recorded(a, 1, 1, &created),
            recorded(a, 2, 2, &fixtures::order_confirmed()),
            recorded(a, 3, 3, &fixtures::order_shipped()),
            recorded(b, 1, 4, &created),
            recorded(b, 2, 5, &fixtures::order_confirmed()),
            recorded(b, 3, 6, &fixtures::order_shipped()),
            recorded(b, 4, 7, &fixtures::order_delivered()),
        ];
        let writes = fold_batch(&events, HashMap::new(), 0, OnError::Park);
        let change = &writes.changes[&customer];
        assert_eq!(
            change.by_status,
            BTreeMap::from([("delivered".into(), 1), ("shipped".into(), 1)])
        );
        assert_eq!(
            change.spend,
            BTreeMap::from([("EUR".into(), (2, 2 * total))])
        );
        let status = |id| {
            let line = writes.lines.iter().find(|l| l.order_id == id).unwrap();
            (line.status.clone(), line.spent, line.version)
        };
        assert_eq!(status(a), ("shipped".to_owned(), true, 3));
        assert_eq!(status(b), ("delivered".to_owned(), true, 4));
    }

    #[test]
    fn events_that_cannot_apply_say_why() {
        let created = fixtures::order_created();
        let confirmed = fixtures::order_confirmed();
        let order = Uuid::now_v7();
        let mut changes = HashMap::new();
        let line = apply(
            None,
            &recorded(order, 1, 1, &created),
            &created,
            &mut changes,
        )
        .expect("a creation applies");
        let cases = [
            (
                Some(&line),
                recorded(order, 3, 2, &confirmed),
                &confirmed,
                format!("version 3 follows version 1 of order {order}"),
            ),
            (
                None,
                recorded(order, 1, 2, &confirmed),
                &confirmed,
                "an event before the order was created".to_owned(),
            ),
            (
                Some(&line),
                recorded(order, 2, 2, &created),
                &created,
                "a second OrderCreated".to_owned(),
            ),
            (
                None,
                recorded(order, 2, 2, &created),
                &created,
                "OrderCreated at version 2".to_owned(),
            ),
        ];
        for (line, recorded, event, why) in cases {
            assert_eq!(apply(line, &recorded, event, &mut changes), Err(why));
        }
        let change = changes.values().next().expect("the creation's change");
        assert_eq!(
            (change.orders, change.by_status.clone()),
            (1, BTreeMap::from([("created".into(), 1)]))
        );
    }

    #[test]
    fn compact_drops_only_what_cancelled_out() {
        let mut change = CustomerChange::default();
        change.status("created", 1);
        change.status("created", -1);
        change.status("shipped", 1);
        change.spend("EUR", 0, 5);
        change.spend("USD", 1, 0);
        change.spend("GBP", 1, 7);
        change.spend("GBP", -1, -7);
        change.spend("SEK", i64::MAX, i64::MAX);
        change.spend("SEK", 1, 1);
        change.compact();
        assert_eq!(change.by_status, BTreeMap::from([("shipped".into(), 1)]));
        assert_eq!(
            change.spend,
            BTreeMap::from([
                ("EUR".into(), (0, 5)),
                ("SEK".into(), (i64::MAX, i64::MAX)),
                ("USD".into(), (1, 0)),
            ])
        );
    }
}
