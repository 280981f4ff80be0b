//! The given/when/then harness must fail when its expectation is not met, and order statuses
//! must say which are final: both are what other tests rely on.

use crate::order::{ConfirmOrder, OrderAggregate, OrderError, OrderStatus};
use crate::testing::AggregateTest;
use crate::testing::fixtures::*;

type OrderTest = AggregateTest<OrderAggregate>;

#[test]
#[should_panic(expected = "but the command emitted")]
fn then_expect_error_fails_when_the_command_succeeds() {
    OrderTest::given(vec![order_created()])
        .when(ConfirmOrder)
        .then_expect_error(OrderError::OrderNotFound);
}

#[test]
#[should_panic(expected = "the command failed with another error")]
fn then_expect_error_fails_on_another_error() {
    OrderTest::given_no_previous_events()
        .when(ConfirmOrder)
        .then_expect_error(OrderError::AlreadyExists);
}

#[test]
fn then_expect_error_passes_on_the_expected_error() {
    OrderTest::given_no_previous_events()
        .when(ConfirmOrder)
        .then_expect_error(OrderError::OrderNotFound);
}

#[test]
#[should_panic(expected = "but the command emitted")]
fn then_expect_error_matching_fails_when_the_command_succeeds() {
    OrderTest::given(vec![order_created()])
        .when(ConfirmOrder)
        .then_expect_error_matching(|_| true);
}

#[test]
#[should_panic(expected = "unexpected error")]
fn then_expect_error_matching_fails_when_the_error_does_not_match() {
    OrderTest::given_no_previous_events()
        .when(ConfirmOrder)
        .then_expect_error_matching(|e| matches!(e, OrderError::AlreadyExists));
}

#[test]
#[should_panic(expected = "but the command failed")]
fn then_expect_fails_when_the_command_fails() {
    OrderTest::given_no_previous_events()
        .when(ConfirmOrder)
        .then_expect(vec![order_confirmed()]);
}

#[test]
#[should_panic(expected = "the command emitted unexpected events")]
fn then_expect_fails_on_other_events() {
    OrderTest::given(vec![order_created()])
        .when(ConfirmOrder)
        .then_expect(vec![]);
}

#[test]
fn only_delivered_and_cancelled_are_final() {
    use OrderStatus::*;
    for (status, is_final) in [
        (NotCreated, false),
        (Created, false),
        (Confirmed, false),
        (Shipped, false),
        (Delivered, true),
        (Cancelled, true),
    ] {
        assert_eq!(status.is_final(), is_final, "{status}");
    }
}
