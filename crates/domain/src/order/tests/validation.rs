//! Validation rules on commands, through the harness.

use uuid::Uuid;

use crate::Personal;
use crate::order::{
    CancelOrder, CreateOrder, MAX_CANCELLATION_REASON_LEN, MAX_CARRIER_LEN, MAX_ITEMS,
    MAX_ORDER_TOTAL_MINOR, MAX_TRACKING_NUMBER_LEN, OrderAggregate, OrderCancelled, OrderError,
    OrderEvent, OrderItem, ShipOrder,
};
use crate::testing::AggregateTest;
use crate::testing::fixtures::*;

type OrderTest = AggregateTest<OrderAggregate>;

fn create_with(items: Vec<OrderItem>) -> CreateOrder {
    CreateOrder {
        items,
        ..create_order()
    }
}

fn distinct_items(count: usize) -> Vec<OrderItem> {
    (0..count)
        .map(|i| item(Uuid::from_u128(i as u128), &format!("SKU-{i}"), 1, 100))
        .collect()
}

fn ship(carrier: Option<&str>, tracking_number: Option<&str>) -> ShipOrder {
    ShipOrder {
        carrier: carrier.map(str::to_owned),
        tracking_number: tracking_number.map(str::to_owned),
    }
}

#[test]
fn creating_an_order_without_items_is_rejected() {
    OrderTest::given_no_previous_events()
        .when(create_with(vec![]))
        .then_expect_error(OrderError::NoItems);
}

#[test]
fn creating_an_order_with_more_than_the_maximum_items_is_rejected() {
    OrderTest::given_no_previous_events()
        .when(create_with(distinct_items(MAX_ITEMS + 1)))
        .then_expect_error(OrderError::TooManyItems {
            count: MAX_ITEMS + 1,
        });
}

#[test]
fn creating_an_order_with_exactly_the_maximum_items_is_accepted() {
    let order = OrderTest::given_no_previous_events()
        .when(create_with(distinct_items(MAX_ITEMS)))
        .into_result()
        .unwrap();
    assert_eq!(order.len(), 1);
}

#[test]
fn an_item_priced_in_another_currency_is_rejected() {
    let usd_item = OrderItem::new(PEN_ID, "PEN", 1, 100, currency("USD")).unwrap();
    OrderTest::given_no_previous_events()
        .when(create_with(vec![item(BOOK_ID, "BOOK", 1, 100), usd_item]))
        .then_expect_error(OrderError::CurrencyMismatch {
            expected: eur(),
            found: currency("USD"),
        });
}

#[test]
fn a_duplicate_sku_is_rejected_rather_than_merged() {
    OrderTest::given_no_previous_events()
        .when(create_with(vec![
            item(BOOK_ID, "BOOK", 1, 100),
            item(PEN_ID, "BOOK", 2, 100),
        ]))
        .then_expect_error(OrderError::DuplicateSku {
            sku: "BOOK".to_owned(),
        });
}

#[test]
fn a_line_total_that_overflows_is_rejected() {
    OrderTest::given_no_previous_events()
        .when(create_with(vec![item(BOOK_ID, "BOOK", 2, i64::MAX)]))
        .then_expect_error(OrderError::AmountOverflow);
}

#[test]
fn an_order_total_that_overflows_is_rejected() {
    let half = i64::MAX / 2 + 1;
    OrderTest::given_no_previous_events()
        .when(create_with(vec![
            item(BOOK_ID, "A", 1, half),
            item(PEN_ID, "B", 1, half),
        ]))
        .then_expect_error(OrderError::AmountOverflow);
}

#[test]
fn a_free_item_is_accepted() {
    let order = OrderTest::given_no_previous_events()
        .when(create_with(vec![item(BOOK_ID, "GIFT", 1, 0)]))
        .into_result()
        .unwrap();
    let [OrderEvent::Created(created)] = order.as_slice() else {
        panic!("expected one OrderCreated, got {order:?}");
    };
    assert_eq!(created.total.amount_minor(), 0);
}

#[test]
fn an_order_total_of_exactly_the_maximum_is_accepted_and_one_more_is_not() {
    let order = OrderTest::given_no_previous_events()
        .when(create_with(vec![
            item(BOOK_ID, "A", 1, MAX_ORDER_TOTAL_MINOR - 1),
            item(PEN_ID, "B", 1, 1),
        ]))
        .into_result()
        .unwrap();
    let [OrderEvent::Created(created)] = order.as_slice() else {
        panic!("expected one OrderCreated, got {order:?}");
    };
    assert_eq!(created.total.amount_minor(), MAX_ORDER_TOTAL_MINOR);
    OrderTest::given_no_previous_events()
        .when(create_with(vec![
            item(BOOK_ID, "A", 1, MAX_ORDER_TOTAL_MINOR),
            item(PEN_ID, "B", 1, 1),
        ]))
        .then_expect_error(OrderError::AmountOverflow);
    // Two orders at the maximum (the sum a day's revenue makes) are far from i64's end.
    assert!(MAX_ORDER_TOTAL_MINOR.checked_mul(900_000).is_some());
}

#[test]
fn control_characters_are_refused_in_every_text_field() {
    for control in ["\u{0}", "\u{7}", "\u{1b}", "\r\n", "\t", "\u{7f}", "\u{85}"] {
        let text = format!("late{control}parcel");
        OrderTest::given(vec![order_created()])
            .when(CancelOrder {
                reason: text.clone(),
            })
            .then_expect_error(OrderError::InvalidCancellationReason {
                problem: "contains control characters (such as NUL, a line break or ESC)",
            });
        for (carrier, tracking, field) in [
            (Some(text.as_str()), None, "carrier"),
            (None, Some(text.as_str()), "tracking_number"),
        ] {
            OrderTest::given(vec![order_created(), order_confirmed()])
                .when(ship(carrier, tracking))
                .then_expect_error(OrderError::InvalidShippingDetails {
                    field,
                    problem: "must not contain control characters".to_owned(),
                });
        }
    }
    // Surrounding whitespace is trimmed first, and other scripts are text like any other.
    OrderTest::given(vec![order_created()])
        .when(CancelOrder {
            reason: " \t Lieferung zu spät – 遅延 \n".to_owned(),
        })
        .then_expect(vec![OrderEvent::Cancelled(OrderCancelled {
            reason: Personal::Plain("Lieferung zu spät – 遅延".to_owned()),
        })]);
}

#[test]
fn cancelling_with_a_blank_reason_is_rejected() {
    OrderTest::given(vec![order_created()])
        .when(CancelOrder {
            reason: " \t\n".to_owned(),
        })
        .then_expect_error(OrderError::InvalidCancellationReason {
            problem: "is empty",
        });
}

#[test]
fn cancelling_with_an_overlong_reason_is_rejected() {
    OrderTest::given(vec![order_created()])
        .when(CancelOrder {
            reason: "x".repeat(MAX_CANCELLATION_REASON_LEN + 1),
        })
        .then_expect_error(OrderError::InvalidCancellationReason {
            problem: "is too long",
        });
}

#[test]
fn cancelling_with_a_reason_of_exactly_the_maximum_length_is_accepted() {
    let reason = "é".repeat(MAX_CANCELLATION_REASON_LEN);
    OrderTest::given(vec![order_created()])
        .when(CancelOrder {
            reason: reason.clone(),
        })
        .then_expect(vec![OrderEvent::Cancelled(OrderCancelled {
            reason: Personal::Plain(reason),
        })]);
}

#[test]
fn shipping_with_a_blank_carrier_is_rejected() {
    OrderTest::given(vec![order_created(), order_confirmed()])
        .when(ship(Some("  "), None))
        .then_expect_error_matching(|e| {
            matches!(
                e,
                OrderError::InvalidShippingDetails {
                    field: "carrier",
                    ..
                }
            )
        });
}

#[test]
fn shipping_with_an_overlong_carrier_is_rejected() {
    let carrier = "c".repeat(MAX_CARRIER_LEN + 1);
    OrderTest::given(vec![order_created(), order_confirmed()])
        .when(ship(Some(&carrier), None))
        .then_expect_error_matching(|e| {
            matches!(
                e,
                OrderError::InvalidShippingDetails {
                    field: "carrier",
                    ..
                }
            )
        });
}

#[test]
fn shipping_with_an_overlong_tracking_number_is_rejected() {
    let tracking = "1".repeat(MAX_TRACKING_NUMBER_LEN + 1);
    OrderTest::given(vec![order_created(), order_confirmed()])
        .when(ship(None, Some(&tracking)))
        .then_expect_error(OrderError::InvalidShippingDetails {
            field: "tracking_number",
            problem: format!("must be at most {MAX_TRACKING_NUMBER_LEN} characters"),
        });
}

#[test]
fn shipping_with_control_characters_in_the_tracking_number_is_rejected() {
    OrderTest::given(vec![order_created(), order_confirmed()])
        .when(ship(None, Some("JD01\u{0}46")))
        .then_expect_error_matching(|e| {
            matches!(
                e,
                OrderError::InvalidShippingDetails {
                    field: "tracking_number",
                    ..
                }
            )
        });
}

#[test]
fn invalid_input_is_reported_before_a_missing_order() {
    OrderTest::given_no_previous_events()
        .when(CancelOrder {
            reason: String::new(),
        })
        .then_expect_error_matching(|e| matches!(e, OrderError::InvalidCancellationReason { .. }));
}

#[test]
fn invalid_input_is_reported_before_a_state_conflict() {
    OrderTest::given(vec![order_created()])
        .when(create_with(vec![]))
        .then_expect_error(OrderError::NoItems);
}

#[test]
fn shipping_details_of_exactly_the_maximum_length_are_accepted() {
    let carrier = "c".repeat(MAX_CARRIER_LEN);
    let tracking = "1".repeat(MAX_TRACKING_NUMBER_LEN);
    OrderTest::given(vec![order_created(), order_confirmed()])
        .when(ship(Some(&carrier), Some(&tracking)))
        .then_expect(vec![OrderEvent::Shipped(crate::order::OrderShipped {
            carrier: Some(carrier.clone()),
            tracking_number: Some(tracking.clone()),
        })]);
}
