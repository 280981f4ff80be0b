//! Every lifecycle transition, allowed and rejected.

use crate::Personal;
use crate::order::{
    CancelOrder, ConfirmOrder, DeliverOrder, OrderAggregate, OrderCancelled, OrderCommand,
    OrderError, OrderEvent, OrderShipped, OrderStatus, ShipOrder,
};
use crate::testing::AggregateTest;
use crate::testing::fixtures::*;

type OrderTest = AggregateTest<OrderAggregate>;

fn ship_with_dhl() -> ShipOrder {
    ShipOrder {
        carrier: Some(" DHL ".to_owned()),
        tracking_number: Some("JD014600003828".to_owned()),
    }
}

fn cancel(reason: &str) -> CancelOrder {
    CancelOrder {
        reason: reason.to_owned(),
    }
}

fn transition(command: &'static str, status: OrderStatus) -> OrderError {
    OrderError::InvalidTransition { command, status }
}

#[test]
fn creating_an_order_emits_order_created_with_the_computed_total() {
    let order = OrderTest::given_no_previous_events()
        .when(create_order())
        .then_expect(vec![order_created()]);
    assert_eq!(order.status(), OrderStatus::Created);
    assert_eq!(order.id(), Some(ORDER_ID));
    assert_eq!(order.customer_id(), Some(CUSTOMER_ID));
    assert_eq!(order.items(), items().as_slice());
    assert_eq!(order.total().map(|t| t.amount_minor()), Some(2_699));
}

#[test]
fn creating_an_order_twice_is_rejected() {
    OrderTest::given(vec![order_created()])
        .when(create_order())
        .then_expect_error(OrderError::AlreadyExists);
}

#[test]
fn creating_over_a_cancelled_order_is_rejected() {
    OrderTest::given(vec![order_created(), order_cancelled()])
        .when(create_order())
        .then_expect_error(OrderError::AlreadyExists);
}

#[test]
fn confirming_a_created_order_emits_order_confirmed() {
    let order = OrderTest::given(vec![order_created()])
        .when(ConfirmOrder)
        .then_expect(vec![order_confirmed()]);
    assert_eq!(order.status(), OrderStatus::Confirmed);
}

#[test]
fn confirming_twice_is_rejected() {
    OrderTest::given(vec![order_created(), order_confirmed()])
        .when(ConfirmOrder)
        .then_expect_error(transition("confirm", OrderStatus::Confirmed));
}

#[test]
fn confirming_a_cancelled_order_is_rejected() {
    OrderTest::given(vec![order_created(), order_cancelled()])
        .when(ConfirmOrder)
        .then_expect_error(transition("confirm", OrderStatus::Cancelled));
}

#[test]
fn confirming_a_shipped_order_is_rejected() {
    OrderTest::given(vec![order_created(), order_confirmed(), order_shipped()])
        .when(ConfirmOrder)
        .then_expect_error(transition("confirm", OrderStatus::Shipped));
}

#[test]
fn cancelling_a_created_order_records_the_trimmed_reason() {
    let order = OrderTest::given(vec![order_created()])
        .when(cancel("  out of stock \n"))
        .then_expect(vec![OrderEvent::Cancelled(OrderCancelled {
            reason: Personal::Plain("out of stock".to_owned()),
        })]);
    assert_eq!(order.status(), OrderStatus::Cancelled);
    assert_eq!(
        order.cancellation_reason(),
        Some(&Personal::Plain("out of stock".to_owned()))
    );
}

#[test]
fn cancelling_a_confirmed_order_is_allowed() {
    OrderTest::given(vec![order_created(), order_confirmed()])
        .when(cancel("customer changed their mind"))
        .then_expect(vec![order_cancelled()]);
}

#[test]
fn cancelling_a_shipped_order_is_rejected() {
    OrderTest::given(vec![order_created(), order_confirmed(), order_shipped()])
        .when(cancel("too late"))
        .then_expect_error(transition("cancel", OrderStatus::Shipped));
}

#[test]
fn cancelling_a_delivered_order_is_rejected() {
    let delivered = vec![
        order_created(),
        order_confirmed(),
        order_shipped(),
        order_delivered(),
    ];
    OrderTest::given(delivered)
        .when(cancel("too late"))
        .then_expect_error(transition("cancel", OrderStatus::Delivered));
}

#[test]
fn cancelling_a_cancelled_order_is_rejected() {
    OrderTest::given(vec![order_created(), order_cancelled()])
        .when(cancel("again"))
        .then_expect_error(transition("cancel", OrderStatus::Cancelled));
}

#[test]
fn shipping_a_confirmed_order_records_the_trimmed_carrier_details() {
    let order = OrderTest::given(vec![order_created(), order_confirmed()])
        .when(ship_with_dhl())
        .then_expect(vec![order_shipped()]);
    assert_eq!(order.status(), OrderStatus::Shipped);
    assert_eq!(order.carrier(), Some("DHL"));
    assert_eq!(order.tracking_number(), Some("JD014600003828"));
}

#[test]
fn shipping_without_carrier_details_is_allowed() {
    OrderTest::given(vec![order_created(), order_confirmed()])
        .when(ShipOrder::default())
        .then_expect(vec![OrderEvent::Shipped(OrderShipped::default())]);
}

#[test]
fn shipping_an_unconfirmed_order_is_rejected() {
    OrderTest::given(vec![order_created()])
        .when(ship_with_dhl())
        .then_expect_error(transition("ship", OrderStatus::Created));
}

#[test]
fn shipping_a_shipped_order_is_rejected() {
    OrderTest::given(vec![order_created(), order_confirmed(), order_shipped()])
        .when(ship_with_dhl())
        .then_expect_error(transition("ship", OrderStatus::Shipped));
}

#[test]
fn shipping_a_cancelled_order_is_rejected() {
    OrderTest::given(vec![order_created(), order_confirmed(), order_cancelled()])
        .when(ship_with_dhl())
        .then_expect_error(transition("ship", OrderStatus::Cancelled));
}

#[test]
fn delivering_a_shipped_order_emits_order_delivered() {
    let order = OrderTest::given(vec![order_created(), order_confirmed(), order_shipped()])
        .when(DeliverOrder)
        .then_expect(vec![order_delivered()]);
    assert_eq!(order.status(), OrderStatus::Delivered);
}

#[test]
fn delivering_an_unshipped_order_is_rejected() {
    OrderTest::given(vec![order_created(), order_confirmed()])
        .when(DeliverOrder)
        .then_expect_error(transition("deliver", OrderStatus::Confirmed));
    OrderTest::given(vec![order_created()])
        .when(DeliverOrder)
        .then_expect_error(transition("deliver", OrderStatus::Created));
}

#[test]
fn delivering_a_delivered_order_is_rejected() {
    let delivered = vec![
        order_created(),
        order_confirmed(),
        order_shipped(),
        order_delivered(),
    ];
    OrderTest::given(delivered)
        .when(DeliverOrder)
        .then_expect_error(transition("deliver", OrderStatus::Delivered));
}

#[test]
fn delivering_a_cancelled_order_is_rejected() {
    OrderTest::given(vec![order_created(), order_cancelled()])
        .when(DeliverOrder)
        .then_expect_error(transition("deliver", OrderStatus::Cancelled));
}

#[test]
fn any_command_but_create_on_a_missing_order_is_rejected_as_not_found() {
    let commands: [OrderCommand; 4] = [
        ConfirmOrder.into(),
        cancel("never existed").into(),
        ship_with_dhl().into(),
        DeliverOrder.into(),
    ];
    for command in commands {
        OrderTest::given_no_previous_events()
            .when(command)
            .then_expect_error(OrderError::OrderNotFound);
    }
}

#[test]
fn business_methods_decide_like_the_commands_they_wrap() {
    let mut order = OrderAggregate::default();
    for event in order.create(&create_order()).unwrap() {
        order.apply(&event);
    }
    assert_eq!(order.confirm().unwrap(), vec![order_confirmed()]);
    assert_eq!(
        order.cancel("customer changed their mind").unwrap(),
        vec![order_cancelled()]
    );
    assert_eq!(
        order.deliver(),
        Err(transition("deliver", OrderStatus::Created))
    );
    assert_eq!(
        order.ship(None, None),
        Err(transition("ship", OrderStatus::Created))
    );
}

/// `OrderStatus::next_commands` (the console's buttons) lists exactly the lifecycle commands
/// `decide` accepts in each status.
#[test]
fn the_next_commands_of_each_status_are_the_ones_decide_accepts() {
    use crate::Aggregate;
    let histories = [
        vec![],
        vec![order_created()],
        vec![order_created(), order_confirmed()],
        vec![order_created(), order_confirmed(), order_shipped()],
        vec![
            order_created(),
            order_confirmed(),
            order_shipped(),
            order_delivered(),
        ],
        vec![order_created(), order_cancelled()],
    ];
    for history in histories {
        let order = OrderAggregate::replay(&history);
        let status = order.status();
        for (name, command) in [
            ("confirm", OrderCommand::Confirm(ConfirmOrder)),
            ("cancel", OrderCommand::Cancel(cancel("no longer needed"))),
            ("ship", OrderCommand::Ship(ship_with_dhl())),
            ("deliver", OrderCommand::Deliver(DeliverOrder)),
        ] {
            let listed = status.next_commands().contains(&name);
            let accepted = order.decide(&command).is_ok();
            assert_eq!(listed, accepted, "{name} on a {status} order");
        }
    }
}
