//! Properties over random command sequences and random events.

use std::collections::HashSet;

use proptest::prelude::*;
use uuid::Uuid;

use crate::order::{
    CancelOrder, ConfirmOrder, CreateOrder, Currency, DeliverOrder, MAX_ITEMS, Money,
    OrderAggregate, OrderCancelled, OrderCommand, OrderCreated, OrderEvent, OrderItem,
    OrderShipped, OrderStatus, ShipOrder,
};
use crate::testing::fixtures::{address, currency, order_confirmed, order_delivered};
use crate::{Aggregate, DomainEvent, Personal};

fn currencies() -> impl Strategy<Value = Currency> {
    // Mostly EUR so that most orders are valid; sometimes another to hit the mismatch rule.
    prop_oneof![8 => Just("EUR"), 1 => Just("USD"), 1 => Just("JPY")].prop_map(currency)
}

fn prices() -> impl Strategy<Value = i64> {
    prop_oneof![9 => 0..1_000_000i64, 1 => (i64::MAX / 4)..=i64::MAX]
}

fn items() -> impl Strategy<Value = OrderItem> {
    // A tiny SKU alphabet makes duplicate SKUs likely.
    (
        any::<u128>(),
        "[A-C][a-c0-9._-]{0,2}",
        1..=10_000u32,
        prices(),
        currencies(),
    )
        .prop_map(|(id, sku, quantity, price, currency)| {
            OrderItem::new(Uuid::from_u128(id), &sku, quantity, price, currency).unwrap()
        })
}

fn text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        Just(String::new()),
        Just("  ".to_owned()),
        "[ -~]{1,12}"
    ])
}

fn commands() -> impl Strategy<Value = OrderCommand> {
    let create = (
        any::<u128>(),
        any::<u128>(),
        currencies(),
        prop::collection::vec(items(), 0..6),
    )
        .prop_map(|(order_id, customer_id, currency, items)| {
            OrderCommand::Create(CreateOrder {
                order_id: Uuid::from_u128(order_id),
                customer_id: Uuid::from_u128(customer_id),
                currency,
                items,
                shipping_address: Some(address()),
                contact: None,
            })
        });
    prop_oneof![
        2 => create,
        2 => Just(ConfirmOrder.into()),
        1 => prop_oneof![Just(String::new()), "[ a-z]{0,12}"]
            .prop_map(|reason| CancelOrder { reason }.into()),
        2 => (text(), text()).prop_map(|(carrier, tracking_number)| {
            ShipOrder { carrier, tracking_number }.into()
        }),
        2 => Just(DeliverOrder.into()),
    ]
}

fn events() -> impl Strategy<Value = OrderEvent> {
    let created = (
        any::<u128>(),
        any::<u128>(),
        prop::collection::vec(items(), 1..4),
    )
        .prop_filter_map("total overflows", |(order_id, customer_id, items)| {
            // Payload round-trips need not obey order rules, so items may mix currencies here.
            let currency = items[0].unit_price().currency().clone();
            let amount = items.iter().try_fold(0i64, |sum, item| {
                sum.checked_add(item.line_total().ok()?.amount_minor())
            })?;
            Some(OrderEvent::Created(OrderCreated {
                order_id: Uuid::from_u128(order_id),
                customer_id: Uuid::from_u128(customer_id),
                total: Money::new(amount, currency.clone()),
                currency,
                items,
                shipping_address: None,
                contact: None,
            }))
        });
    prop_oneof![
        created,
        Just(order_confirmed()),
        any::<String>().prop_map(|reason| OrderEvent::Cancelled(OrderCancelled {
            reason: Personal::Plain(reason)
        })),
        (any::<Option<String>>(), any::<Option<String>>()).prop_map(
            |(carrier, tracking_number)| {
                OrderEvent::Shipped(OrderShipped {
                    carrier,
                    tracking_number,
                })
            }
        ),
        Just(order_delivered()),
    ]
}

/// Runs `commands`, returning the live state, every emitted event and every status visited.
fn run(commands: &[OrderCommand]) -> (OrderAggregate, Vec<OrderEvent>, Vec<OrderStatus>) {
    let mut order = OrderAggregate::default();
    let (mut emitted, mut statuses) = (Vec::new(), vec![order.status()]);
    for command in commands {
        if let Ok(events) = order.decide(command) {
            assert_eq!(
                events.len(),
                1,
                "every accepted order command emits one event"
            );
            for event in events {
                order.apply(&event);
                emitted.push(event);
                statuses.push(order.status());
            }
        }
    }
    (order, emitted, statuses)
}

fn allowed(from: OrderStatus, to: OrderStatus) -> bool {
    use OrderStatus::*;
    matches!(
        (from, to),
        (NotCreated, Created)
            | (Created, Confirmed | Cancelled)
            | (Confirmed, Shipped | Cancelled)
            | (Shipped, Delivered)
    )
}

fn assert_valid_order(order: &OrderAggregate) {
    if order.status() == OrderStatus::NotCreated {
        assert_eq!(order, &OrderAggregate::default());
        return;
    }
    let currency = order.currency().unwrap();
    assert!((1..=MAX_ITEMS).contains(&order.items().len()));
    let mut skus = HashSet::new();
    let mut sum = Money::zero(currency.clone());
    for item in order.items() {
        assert_eq!(item.unit_price().currency(), currency);
        assert!(item.unit_price().amount_minor() >= 0);
        assert!(skus.insert(item.sku()), "duplicate SKU {}", item.sku());
        sum = sum.checked_add(&item.line_total().unwrap()).unwrap();
    }
    assert_eq!(
        order.total(),
        Some(&sum),
        "total equals the sum of the line totals"
    );
}

proptest! {
    #[test]
    fn replaying_the_emitted_events_reproduces_the_live_state(commands in prop::collection::vec(commands(), 0..12)) {
        let (live, emitted, _) = run(&commands);
        prop_assert_eq!(OrderAggregate::replay(&emitted), live);
    }

    #[test]
    fn no_command_sequence_reaches_an_invalid_state(commands in prop::collection::vec(commands(), 0..12)) {
        let (order, _, statuses) = run(&commands);
        for pair in statuses.windows(2) {
            prop_assert!(allowed(pair[0], pair[1]), "illegal transition {:?}", pair);
        }
        assert_valid_order(&order);
    }

    #[test]
    fn every_event_round_trips_through_its_stored_form(event in events()) {
        let stored = serde_json::to_string(&event.to_payload()).unwrap();
        let payload = serde_json::from_str(&stored).unwrap();
        let decoded = OrderEvent::from_stored(event.event_type(), event.schema_version(), payload);
        prop_assert_eq!(decoded.unwrap(), event);
    }

    #[test]
    fn a_snapshot_round_trips_to_an_equal_state(commands in prop::collection::vec(commands(), 0..12)) {
        let (order, _, _) = run(&commands);
        let snapshot = serde_json::to_string(&order).unwrap();
        prop_assert_eq!(serde_json::from_str::<OrderAggregate>(&snapshot).unwrap(), order);
    }
}
