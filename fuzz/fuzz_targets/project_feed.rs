//! Projecting the global feed: `order_views::batch::fold_batch` (decode, fold into the
//! order read model, park what does not apply) on an arbitrary feed of stored events, compared
//! with the order aggregate folded from the same events.
//!
//! Input: one stored event per line, `<order> <event_type> <schema_version> <payload JSON>`, where
//! `<order>` (0 to 255) picks the stream. Checks that nothing panics and the batch accounts for
//! every event. When every stream is one the domain could have written (each event exactly what
//! the aggregate decides for the matching command), also checks that nothing is parked, that each
//! order's row agrees with its aggregate, that each aggregate's snapshot round-trips, and that the
//! status counts and daily revenue are exactly those orders' contribution.
#![no_main]

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, TimeDelta};
use domain::{
    Aggregate, CancelOrder, ChangeShippingAddress, ConfirmOrder, CreateOrder, DeliverOrder,
    OrderAggregate, OrderCommand,
    OrderEvent, OrderStatus, ShipOrder,
};
use event_store::RecordedEvent;
use libfuzzer_sys::fuzz_target;
use order_views::OrderView;
use order_views::OnError;
use order_views::batch::fold_batch;
use serde_json::Value;
use uuid::Uuid;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let feed = parse_feed(text);
    let writes = fold_batch(&feed, HashMap::new(), 0, OnError::Park);
    assert!(writes.applied.stopped.is_none(), "parking never stops");
    assert_eq!(writes.applied.events, feed.len(), "an event was not accounted for");
    assert_eq!(writes.applied.last_position, feed.len() as u64);

    let mut streams: BTreeMap<Uuid, Vec<&RecordedEvent>> = BTreeMap::new();
    for recorded in &feed {
        streams
            .entry(recorded.aggregate_id)
            .or_default()
            .push(recorded);
    }
    let Some(orders) = streams
        .iter()
        .map(|(&id, events)| Some((id, lawful_state(id, events)?)))
        .collect::<Option<BTreeMap<_, _>>>()
    else {
        return;
    };
    assert!(
        writes.applied.parked.is_empty(),
        "parked {:?}",
        writes.applied.parked
    );
    assert_eq!(writes.rows.len(), orders.len());
    let mut status_counts = BTreeMap::new();
    let mut revenue = BTreeMap::<(NaiveDate, String), (i64, i128)>::new();
    for (id, order) in &orders {
        assert_snapshot_round_trips(order);
        let row = writes
            .rows
            .iter()
            .find(|row| row.order_id == *id)
            .unwrap_or_else(|| panic!("no row for order {id}"));
        assert_row_agrees(row, order, streams[id].len() as u64);
        *status_counts.entry(row.status.clone()).or_insert(0) += 1;
        if let Some(confirmed_at) = row.confirmed_at
            && order.status() != OrderStatus::Cancelled
        {
            let day = revenue
                .entry((confirmed_at.date_naive(), row.currency.clone()))
                .or_default();
            day.0 += 1;
            day.1 += i128::from(row.total_minor);
        }
    }
    assert_eq!(writes.summary.status_counts, status_counts);
    // Orders placed since the total cap (domain::MAX_ORDER_TOTAL_MINOR) cannot overflow a day's
    // revenue; stored events from before it can, and the fold then saturates instead of
    // panicking: only sums that fit are compared exactly.
    for (key, (orders, total)) in &revenue {
        let folded = writes.summary.revenue.get(key).copied().unwrap_or_default();
        assert_eq!(folded.0, *orders, "orders of {key:?}");
        if let Ok(total) = i64::try_from(*total) {
            assert_eq!(folded.1, total, "revenue of {key:?}");
        }
    }
    for (key, folded) in &writes.summary.revenue {
        assert!(revenue.contains_key(key) || *folded == (0, 0), "revenue of {key:?} from nowhere");
    }
});

/// The feed the lines describe, in order: positions from 1, versions from 1 in each stream, six
/// hours apart.
fn parse_feed(text: &str) -> Vec<RecordedEvent> {
    let mut versions = HashMap::<Uuid, u64>::new();
    text.lines()
        .filter_map(parse_line)
        .enumerate()
        .map(|(index, (stream, event_type, schema_version, payload))| {
            let aggregate_id = stream_id(stream);
            let version = versions.entry(aggregate_id).or_default();
            *version += 1;
            let position = index as u64 + 1;
            RecordedEvent {
                event_id: Uuid::from_u128(u128::from(position)),
                aggregate_id,
                aggregate_type: OrderAggregate::TYPE.to_owned(),
                version: *version,
                position: Some(position),
                event_type: event_type.to_owned(),
                schema_version,
                payload,
                metadata: Value::Null,
                recorded_at: DateTime::UNIX_EPOCH + TimeDelta::hours(6 * index as i64),
            }
        })
        .collect()
}

fn parse_line(line: &str) -> Option<(u8, &str, u32, Value)> {
    let mut fields = line.splitn(4, ' ');
    let stream = fields.next()?.parse().ok()?;
    let event_type = fields.next()?;
    let schema_version = fields.next()?.parse().ok()?;
    let payload = serde_json::from_str(fields.next()?).ok()?;
    Some((stream, event_type, schema_version, payload))
}

/// Stream `n` is order `0193a1b2-0000-7000-8000-0000000000<n in hex>`.
fn stream_id(n: u8) -> Uuid {
    Uuid::from_u128(0x0193_a1b2_0000_7000_8000_0000_0000_0000 | u128::from(n))
}

/// The order folded from `events`, if the domain could have written them: every event decodes
/// and is exactly what the aggregate decides for the command it records, and the creation names
/// the stream's own id. `None` otherwise.
fn lawful_state(id: Uuid, events: &[&RecordedEvent]) -> Option<OrderAggregate> {
    let mut order = OrderAggregate::default();
    for recorded in events {
        let event = orders::commands::decode::<OrderEvent>(recorded).ok()?;
        if matches!(&event, OrderEvent::Created(created) if created.order_id != id) {
            return None;
        }
        if order.decide(&command_of(&event)?).ok()? != [event.clone()] {
            return None;
        }
        order.evolve(&event);
    }
    Some(order)
}

/// The command whose acceptance `event` records; `None` when it holds a sealed personal value
/// (the plain one it was decided from cannot be known here).
fn command_of(event: &OrderEvent) -> Option<OrderCommand> {
    Some(match event {
        OrderEvent::Created(created) => OrderCommand::Create(CreateOrder {
            order_id: created.order_id,
            customer_id: created.customer_id,
            currency: created.currency.clone(),
            items: created.items.clone(),
            shipping_address: plain(&created.shipping_address)?,
            contact: plain(&created.contact)?,
        }),
        OrderEvent::Confirmed(_) => OrderCommand::Confirm(ConfirmOrder),
        OrderEvent::Cancelled(cancelled) => OrderCommand::Cancel(CancelOrder {
            reason: cancelled.reason.plain()?.clone(),
        }),
        OrderEvent::ShippingAddressChanged(changed) => {
            OrderCommand::ChangeShippingAddress(ChangeShippingAddress {
                shipping_address: changed.shipping_address.plain()?.clone(),
            })
        }
        OrderEvent::Shipped(shipped) => OrderCommand::Ship(ShipOrder {
            carrier: shipped.carrier.clone(),
            tracking_number: shipped.tracking_number.clone(),
        }),
        OrderEvent::Delivered(_) => OrderCommand::Deliver(DeliverOrder),
    })
}

/// An optional personal value as the command held it: `None` (not known) when it is sealed.
fn plain<T: Clone>(value: &Option<domain::Personal<T>>) -> Option<Option<T>> {
    match value {
        None => Some(None),
        Some(personal) => personal.plain().cloned().map(Some),
    }
}

/// The read model's row shows what the aggregate holds.
fn assert_row_agrees(row: &OrderView, order: &OrderAggregate, version: u64) {
    assert_eq!(Some(row.customer_id), order.customer_id());
    assert_eq!(row.status, order.status().as_str());
    assert_eq!(
        Some(row.currency.as_str()),
        order.currency().map(|c| c.as_str())
    );
    assert_eq!(
        Some(row.total_minor),
        order.total().map(|t| t.amount_minor())
    );
    assert_eq!(
        row.cancellation_reason,
        order.cancellation_reason().map(|r| r.stored_text().to_owned())
    );
    assert_eq!(row.carrier.as_deref(), order.carrier());
    assert_eq!(row.tracking_number.as_deref(), order.tracking_number());
    assert_eq!(
        row.items.as_array().map(Vec::len),
        Some(order.items().len())
    );
    assert_eq!(row.version, version);
}

/// A snapshot (the state's JSON) loads back as the same state.
fn assert_snapshot_round_trips(order: &OrderAggregate) {
    let snapshot = serde_json::to_value(order).expect("a state serializes");
    let loaded: OrderAggregate =
        serde_json::from_value(snapshot).expect("a snapshot of a lawful state loads");
    assert_eq!(&loaded, order, "the snapshot changed the state");
}
