//! Error codes, kinds and messages are part of the API.

use crate::ErrorKind;
use crate::order::{OrderError, OrderStatus};
use crate::testing::fixtures::{currency, eur};

fn transition(command: &'static str, status: OrderStatus) -> OrderError {
    OrderError::InvalidTransition { command, status }
}

#[test]
fn every_error_has_a_stable_code_and_kind() {
    let cases = [
        (OrderError::NoItems, "no-items", ErrorKind::Validation),
        (
            OrderError::TooManyItems { count: 101 },
            "too-many-items",
            ErrorKind::Validation,
        ),
        (
            OrderError::InvalidQuantity { quantity: 0 },
            "invalid-quantity",
            ErrorKind::Validation,
        ),
        (
            OrderError::InvalidSku {
                sku: String::new(),
                problem: "it is empty",
            },
            "invalid-sku",
            ErrorKind::Validation,
        ),
        (
            OrderError::InvalidCurrency { code: "eur".into() },
            "invalid-currency",
            ErrorKind::Validation,
        ),
        (
            OrderError::NegativePrice {
                sku: "A".into(),
                amount_minor: -1,
            },
            "negative-price",
            ErrorKind::Validation,
        ),
        (
            OrderError::CurrencyMismatch {
                expected: eur(),
                found: currency("USD"),
            },
            "currency-mismatch",
            ErrorKind::Validation,
        ),
        (
            OrderError::DuplicateSku { sku: "A".into() },
            "duplicate-sku",
            ErrorKind::Validation,
        ),
        (
            OrderError::AmountOverflow,
            "amount-overflow",
            ErrorKind::Validation,
        ),
        (
            OrderError::InvalidCancellationReason {
                problem: "is empty",
            },
            "invalid-cancellation-reason",
            ErrorKind::Validation,
        ),
        (
            OrderError::InvalidShippingDetails {
                field: "carrier",
                problem: "x".into(),
            },
            "invalid-shipping-details",
            ErrorKind::Validation,
        ),
        (
            OrderError::OrderNotFound,
            "order-not-found",
            ErrorKind::NotFound,
        ),
        (
            OrderError::AlreadyExists,
            "order-already-exists",
            ErrorKind::StateConflict,
        ),
        (
            transition("ship", OrderStatus::Created),
            "invalid-transition",
            ErrorKind::StateConflict,
        ),
    ];
    for (error, code, kind) in cases {
        assert_eq!((error.code(), error.kind()), (code, kind), "{error:?}");
    }
}

#[test]
fn a_rejected_transition_says_what_to_do_instead() {
    let messages = [
        (
            transition("ship", OrderStatus::Created),
            "cannot ship an order that is created; confirm it first",
        ),
        (
            transition("deliver", OrderStatus::Confirmed),
            "cannot deliver an order that is confirmed; ship it first",
        ),
        (
            transition("cancel", OrderStatus::Shipped),
            "cannot cancel an order that is shipped; request a return instead",
        ),
        (
            transition("confirm", OrderStatus::Cancelled),
            "cannot confirm an order that is cancelled; a cancelled order is final",
        ),
        (
            transition("cancel", OrderStatus::Delivered),
            "cannot cancel an order that is delivered; a delivered order is final",
        ),
        (
            transition("confirm", OrderStatus::Confirmed),
            "cannot confirm an order that is confirmed; it is already confirmed",
        ),
        (
            transition("ship", OrderStatus::Shipped),
            "cannot ship an order that is shipped; it has already shipped",
        ),
        (
            transition("create", OrderStatus::Created),
            "cannot create an order that is created; this transition is not allowed",
        ),
    ];
    for (error, message) in messages {
        assert_eq!(error.to_string(), message);
    }
}

#[test]
fn validation_messages_say_what_is_allowed() {
    assert_eq!(
        OrderError::InvalidQuantity { quantity: 0 }.to_string(),
        "quantity must be between 1 and 10000, got 0"
    );
    assert_eq!(
        OrderError::CurrencyMismatch {
            expected: eur(),
            found: currency("USD")
        }
        .to_string(),
        "amount is in USD but the order is in EUR; all items must use the order currency"
    );
}
