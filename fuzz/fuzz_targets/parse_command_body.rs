//! Request bodies becoming commands: the bytes of a `POST /orders[/{id}/...]` body through the
//! service's JSON parsing (`orders::http::parse_json`, `parse_optional_json`) into its DTOs, the
//! value objects (currency, SKU, quantity, price) and the order's decision.
//!
//! Input: `<create|cancel|ship|confirm|deliver>\n<body>`. Checks that nothing panics, that a bad
//! body is a 400 or 422 problem and a rejected command a validation error (422), and that an
//! accepted command's event obeys the limits it was checked against and round-trips through the
//! stored form.
#![no_main]

use domain::{
    Aggregate, CancelOrder, CreateOrder, DomainEvent, ErrorKind, MAX_CANCELLATION_REASON_LEN,
    MAX_CARRIER_LEN, MAX_ITEMS, MAX_ORDER_TOTAL_MINOR, MAX_TRACKING_NUMBER_LEN, OrderAggregate, OrderCommand, OrderError,
    OrderEvent, ShipOrder,
};
use libfuzzer_sys::fuzz_target;
use orders::http::{
    CancelOrderRequest, CreateOrderRequest, Problem, ShipOrderRequest, parse_json,
    parse_optional_json,
};
use orders_fuzz::fixtures::{CUSTOMER_ID, ORDER_ID, confirmed_order, created_order};
use orders_fuzz::input::split_line;

fuzz_target!(|data: &[u8]| {
    let Some((endpoint, body)) = split_line(data) else {
        return;
    };
    match endpoint {
        "create" => create(body),
        "cancel" => cancel(body),
        "ship" => ship(body),
        "confirm" | "deliver" => {
            // These bodies are read (for the idempotency fingerprint) but carry nothing.
            let _ = bad_body_is_a_problem(parse_optional_json::<serde_json::Value>(body));
        }
        _ => {}
    }
});

fn create(body: &[u8]) {
    let Some(request) = bad_body_is_a_problem(parse_json::<CreateOrderRequest>(body)) else {
        return;
    };
    // Staff name the customer; a customer's own id is used when they omit it.
    let customer_id = request.customer_id.unwrap_or(CUSTOMER_ID);
    let decided = request.items().and_then(|(currency, items)| {
        let (shipping_address, contact) = request.personal()?;
        let create = CreateOrder {
            order_id: ORDER_ID,
            customer_id,
            currency,
            items,
            shipping_address,
            contact,
        };
        OrderAggregate::default().decide(&OrderCommand::Create(create))
    });
    let event = match decided {
        Ok(events) => only_event(events),
        Err(OrderError::AmountOverflow) => {
            assert!(
                exact_total(&request) > i128::from(MAX_ORDER_TOTAL_MINOR),
                "spurious overflow"
            );
            return;
        }
        Err(error) => return is_a_validation_error(&error),
    };
    let OrderEvent::Created(created) = &event else {
        panic!("a creation decided {event:?}");
    };
    assert!((1..=MAX_ITEMS).contains(&created.items.len()));
    assert_eq!(created.items.len(), request.items.len());
    assert_eq!(created.currency.as_str(), request.currency);
    assert_eq!(created.customer_id, customer_id);
    assert_eq!(
        i128::from(created.total.amount_minor()),
        exact_total(&request),
        "the total is not the sum of the lines"
    );
    assert!(created.total.amount_minor() <= MAX_ORDER_TOTAL_MINOR);
    for (item, line) in created.items.iter().zip(&request.items) {
        assert_eq!(item.sku().as_str(), line.sku);
        assert_eq!(item.quantity().value(), line.quantity);
        assert_eq!(item.unit_price().amount_minor(), line.unit_price);
        assert!(line.unit_price >= 0, "a negative price was accepted");
    }
    assert_stored_form_round_trips(&event);
}

fn cancel(body: &[u8]) {
    let Some(request) = bad_body_is_a_problem(parse_json::<CancelOrderRequest>(body)) else {
        return;
    };
    let command = OrderCommand::Cancel(CancelOrder {
        reason: request.reason.clone(),
    });
    let event = match created_order().decide(&command) {
        Ok(events) => only_event(events),
        Err(error) => return is_a_validation_error(&error),
    };
    let OrderEvent::Cancelled(cancelled) = &event else {
        panic!("a cancellation decided {event:?}");
    };
    let reason = cancelled.reason.plain().expect("decide emits personal values plain");
    assert_eq!(reason, request.reason.trim());
    assert!(!reason.is_empty());
    assert!(reason.chars().count() <= MAX_CANCELLATION_REASON_LEN);
    assert!(!reason.chars().any(char::is_control));
    assert_stored_form_round_trips(&event);
}

fn ship(body: &[u8]) {
    let Some(request) = bad_body_is_a_problem(parse_optional_json::<ShipOrderRequest>(body)) else {
        return;
    };
    let command = OrderCommand::Ship(ShipOrder {
        carrier: request.carrier.clone(),
        tracking_number: request.tracking_number.clone(),
    });
    let event = match confirmed_order().decide(&command) {
        Ok(events) => only_event(events),
        Err(error) => return is_a_validation_error(&error),
    };
    let OrderEvent::Shipped(shipped) = &event else {
        panic!("a shipment decided {event:?}");
    };
    assert_shipping_text(
        request.carrier.as_deref(),
        shipped.carrier.as_deref(),
        MAX_CARRIER_LEN,
    );
    assert_shipping_text(
        request.tracking_number.as_deref(),
        shipped.tracking_number.as_deref(),
        MAX_TRACKING_NUMBER_LEN,
    );
    assert_stored_form_round_trips(&event);
}

/// A body that does not parse is a problem with status 400 (not JSON) or 422 (not the schema).
fn bad_body_is_a_problem<T>(parsed: Result<T, Problem>) -> Option<T> {
    match parsed {
        Ok(value) => Some(value),
        Err(problem) => {
            assert!(
                matches!(problem.status, 400 | 422),
                "a bad body gave {problem:?}"
            );
            None
        }
    }
}

/// The commands under test are decided against an order in the right status, so only the
/// command's own input can be wrong.
fn is_a_validation_error(error: &OrderError) {
    assert_eq!(error.kind(), ErrorKind::Validation, "{error:?}");
}

fn only_event(events: Vec<OrderEvent>) -> OrderEvent {
    let [event]: [OrderEvent; 1] = events
        .try_into()
        .unwrap_or_else(|events| panic!("one command decided {events:?}"));
    event
}

/// The order total computed without overflow: the sum of quantity × unit price.
fn exact_total(request: &CreateOrderRequest) -> i128 {
    request
        .items
        .iter()
        .map(|line| i128::from(line.quantity) * i128::from(line.unit_price))
        .sum()
}

/// An accepted shipping field is the request's, trimmed, non-blank, short and printable.
fn assert_shipping_text(requested: Option<&str>, stored: Option<&str>, max_chars: usize) {
    assert_eq!(requested.map(str::trim), stored);
    if let Some(stored) = stored {
        assert!(!stored.is_empty());
        assert!(stored.chars().count() <= max_chars);
        assert!(!stored.chars().any(char::is_control));
    }
}

/// What the handler would store decodes back to the same event.
fn assert_stored_form_round_trips(event: &OrderEvent) {
    let decoded = OrderEvent::from_stored(
        event.event_type(),
        event.schema_version(),
        event.to_payload(),
    );
    assert_eq!(
        decoded.ok().as_ref(),
        Some(event),
        "the decided event does not decode"
    );
}
