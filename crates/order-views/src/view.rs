//! The order read model as a pure fold: what each event does to an order's row and to the summary.
//! No I/O here; the backends only store what this computes.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use domain::{OrderEvent, OrderStatus};
use event_store::RecordedEvent;
use uuid::Uuid;

/// One row of the order details read model (read from either backend by its derived
/// `FromRow`: ids through `store::SqlId`, a negative stored number is an error).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OrderView {
    /// The order.
    #[sqlx(try_from = "store::SqlId")]
    pub order_id: Uuid,
    /// Its customer.
    #[sqlx(try_from = "store::SqlId")]
    pub customer_id: Uuid,
    /// `created`, `confirmed`, `shipped`, `delivered` or `cancelled`.
    pub status: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Sum of the lines, minor units.
    pub total_minor: i64,
    /// The lines as created: `[{product_id, sku, quantity, unit_price, line_total}]`.
    #[sqlx(json)]
    pub items: serde_json::Value,
    /// Why it was cancelled.
    pub cancellation_reason: Option<String>,
    /// Carrier, once shipped.
    pub carrier: Option<String>,
    /// Tracking number, once shipped.
    pub tracking_number: Option<String>,
    /// When each transition was recorded.
    pub created_at: DateTime<Utc>,
    /// Confirmation time.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// Cancellation time.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Shipping time.
    pub shipped_at: Option<DateTime<Utc>>,
    /// Delivery time.
    pub delivered_at: Option<DateTime<Utc>>,
    /// Stream version the row reflects.
    #[sqlx(try_from = "i64")]
    pub version: u64,
    /// Global position of the last event applied to the row.
    #[sqlx(try_from = "i64")]
    pub last_position: u64,
}

/// Changes to the summary tables caused by a batch, summed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SummaryDelta {
    /// Orders per status.
    pub status_counts: BTreeMap<String, i64>,
    /// (confirmation day, currency) → (orders, total minor units) of confirmed, not cancelled orders.
    pub revenue: BTreeMap<(NaiveDate, String), (i64, i64)>,
}

impl SummaryDelta {
    fn count(&mut self, status: &str, delta: i64) {
        *self.status_counts.entry(status.to_owned()).or_default() += delta;
    }

    fn revenue(&mut self, day: NaiveDate, currency: &str, orders: i64, total: i64) {
        // Saturating: order totals are capped (domain::MAX_ORDER_TOTAL_MINOR), so only events
        // written before the cap could get here, and a wrong sum beats a panicking fold.
        let entry = self.revenue.entry((day, currency.to_owned())).or_default();
        entry.0 = entry.0.saturating_add(orders);
        entry.1 = entry.1.saturating_add(total);
    }

    /// Drops entries that cancelled out.
    pub fn compact(&mut self) {
        self.status_counts.retain(|_, delta| *delta != 0);
        self.revenue
            .retain(|_, (orders, total)| *orders != 0 || *total != 0);
    }
}

/// Applies one event to an order's row (None before its creation), recording summary changes.
///
/// Fails when the event cannot apply to the row: a stream version out of sequence, or an event
/// before the order's creation. Such events are parked (or stop the projection), never guessed at.
pub fn apply(
    row: Option<OrderView>,
    recorded: &RecordedEvent,
    event: &OrderEvent,
    summary: &mut SummaryDelta,
) -> Result<OrderView, String> {
    let at = recorded.recorded_at;
    let position = recorded.position.unwrap_or_default();
    if let Some(row) = &row
        && recorded.version != row.version + 1
    {
        return Err(format!(
            "version {} follows version {} of order {}",
            recorded.version, row.version, row.order_id
        ));
    }
    let mut row = match (row, event) {
        (None, OrderEvent::Created(created)) => {
            if recorded.version != 1 {
                return Err(format!("OrderCreated at version {}", recorded.version));
            }
            summary.count(OrderStatus::Created.as_str(), 1);
            let items = created
                .items
                .iter()
                .map(|item| {
                    serde_json::json!({
                        "product_id": item.product_id(),
                        "sku": item.sku().as_str(),
                        "quantity": item.quantity().value(),
                        "unit_price": item.unit_price().amount_minor(),
                        "line_total": item.line_total().map(|m| m.amount_minor()).unwrap_or_default(),
                    })
                })
                .collect();
            return Ok(OrderView {
                order_id: created.order_id,
                customer_id: created.customer_id,
                status: OrderStatus::Created.as_str().to_owned(),
                currency: created.currency.as_str().to_owned(),
                total_minor: created.total.amount_minor(),
                items: serde_json::Value::Array(items),
                cancellation_reason: None,
                carrier: None,
                tracking_number: None,
                created_at: at,
                confirmed_at: None,
                cancelled_at: None,
                shipped_at: None,
                delivered_at: None,
                version: recorded.version,
                last_position: position,
            });
        }
        (None, other) => {
            return Err(format!(
                "{} before the order was created",
                other_type(other)
            ));
        }
        (Some(_), OrderEvent::Created(_)) => return Err("a second OrderCreated".into()),
        (Some(row), _) => row,
    };
    let before = row.status.clone();
    match event {
        OrderEvent::Created(_) => {} // a creation returned above
        // The list shows no address (the order's own view does); only the version moves.
        OrderEvent::ShippingAddressChanged(_) => {}
        OrderEvent::Confirmed(_) => {
            row.status = OrderStatus::Confirmed.as_str().into();
            row.confirmed_at = Some(at);
            summary.revenue(at.date_naive(), &row.currency, 1, row.total_minor);
        }
        OrderEvent::Cancelled(cancelled) => {
            row.status = OrderStatus::Cancelled.as_str().into();
            row.cancelled_at = Some(at);
            // As stored: sealed (revealed when a response leaves the service).
            row.cancellation_reason = Some(cancelled.reason.stored_text().to_owned());
            if let Some(confirmed_at) = row.confirmed_at {
                summary.revenue(
                    confirmed_at.date_naive(),
                    &row.currency,
                    -1,
                    row.total_minor.saturating_neg(),
                );
            }
        }
        OrderEvent::Shipped(shipped) => {
            row.status = OrderStatus::Shipped.as_str().into();
            row.shipped_at = Some(at);
            row.carrier.clone_from(&shipped.carrier);
            row.tracking_number.clone_from(&shipped.tracking_number);
        }
        OrderEvent::Delivered(_) => {
            row.status = OrderStatus::Delivered.as_str().into();
            row.delivered_at = Some(at);
        }
    }
    summary.count(&before, -1);
    summary.count(&row.status, 1);
    row.version = recorded.version;
    row.last_position = position;
    Ok(row)
}

fn other_type(event: &OrderEvent) -> &'static str {
    use domain::DomainEvent;
    event.event_type()
}

#[cfg(test)]
mod tests {
    use domain::testing::fixtures;
    use domain::{DomainEvent, OrderEvent};
    use event_store::RecordedEvent;

    use super::*;

    fn recorded(version: u64, event: &OrderEvent) -> RecordedEvent {
        RecordedEvent {
            event_id: Uuid::now_v7(),
            aggregate_id: Uuid::nil(),
            aggregate_type: "Order".into(),
            version,
            position: Some(100 + version),
            event_type: event.event_type().into(),
            schema_version: 1,
            payload: event.to_payload(),
            metadata: serde_json::json!({}),
            recorded_at: "2026-11-27T10:00:00Z".parse().unwrap(),
        }
    }

    fn fold(events: &[OrderEvent]) -> (OrderView, SummaryDelta) {
        let mut summary = SummaryDelta::default();
        let mut row = None;
        for (i, event) in events.iter().enumerate() {
            row = Some(apply(row, &recorded(i as u64 + 1, event), event, &mut summary).unwrap());
        }
        summary.compact();
        (row.unwrap(), summary)
    }

    #[test]
    fn a_delivered_order_has_every_timestamp_and_counts_once() {
        let (row, summary) = fold(&[
            fixtures::order_created(),
            fixtures::order_confirmed(),
            fixtures::order_shipped(),
            fixtures::order_delivered(),
        ]);
        assert_eq!(
            (row.status.as_str(), row.version, row.last_position),
            ("delivered", 4, 104)
        );
        assert!(
            row.confirmed_at.is_some() && row.shipped_at.is_some() && row.delivered_at.is_some()
        );
        assert_eq!(
            summary.status_counts,
            BTreeMap::from([("delivered".to_owned(), 1)])
        );
        assert_eq!(summary.revenue.values().next(), Some(&(1, row.total_minor)));
    }

    #[test]
    fn cancelling_a_confirmed_order_takes_back_its_revenue() {
        let (row, summary) = fold(&[
            fixtures::order_created(),
            fixtures::order_confirmed(),
            fixtures::order_cancelled(),
        ]);
        assert_eq!(row.status, "cancelled");
        assert!(summary.revenue.is_empty(), "{summary:?}");
        assert_eq!(
            summary.status_counts,
            BTreeMap::from([("cancelled".to_owned(), 1)])
        );
    }

    #[test]
    fn an_event_out_of_sequence_is_refused() {
        let mut summary = SummaryDelta::default();
        let created = fixtures::order_created();
        let row = apply(None, &recorded(1, &created), &created, &mut summary).unwrap();
        let confirmed = fixtures::order_confirmed();
        let order_id = row.order_id;
        assert_eq!(
            apply(
                Some(row.clone()),
                &recorded(3, &confirmed),
                &confirmed,
                &mut summary
            ),
            Err(format!("version 3 follows version 1 of order {order_id}"))
        );
        assert_eq!(
            apply(None, &recorded(1, &confirmed), &confirmed, &mut summary),
            Err("OrderConfirmed before the order was created".to_owned())
        );
        assert_eq!(
            apply(Some(row), &recorded(2, &created), &created, &mut summary),
            Err("a second OrderCreated".to_owned())
        );
        assert_eq!(
            apply(None, &recorded(2, &created), &created, &mut summary),
            Err("OrderCreated at version 2".to_owned())
        );
        // Only the first creation counted: a refused event leaves the summary as it was.
        assert_eq!(
            summary.status_counts,
            BTreeMap::from([("created".to_owned(), 1)])
        );
    }

    #[test]
    fn compact_drops_only_what_cancelled_out() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 27).expect("a date");
        let mut summary = SummaryDelta::default();
        summary.count("created", 1);
        summary.count("created", -1);
        summary.count("shipped", 2);
        summary.revenue(day, "EUR", 0, 5);
        summary.revenue(day, "USD", 1, 0);
        summary.revenue(day, "GBP", 1, 7);
        summary.revenue(day, "GBP", -1, -7);
        summary.compact();
        assert_eq!(
            summary.status_counts,
            BTreeMap::from([("shipped".to_owned(), 2)])
        );
        assert_eq!(
            summary.revenue,
            BTreeMap::from([
                ((day, "EUR".to_owned()), (0, 5)),
                ((day, "USD".to_owned()), (1, 0)),
            ])
        );
    }

    #[test]
    fn revenue_saturates_instead_of_overflowing() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 27).expect("a date");
        let mut summary = SummaryDelta::default();
        summary.revenue(day, "EUR", i64::MAX, i64::MAX);
        summary.revenue(day, "EUR", 1, 1);
        assert_eq!(
            summary.revenue[&(day, "EUR".to_owned())],
            (i64::MAX, i64::MAX)
        );
    }
}
