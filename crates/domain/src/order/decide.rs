//! The order's business rules. Pure: reads the state and the command, returns events or an error.
//!
//! Order of checks: the command's own input first (422), then existence (404), then the
//! lifecycle transition (409) — the same order an HTTP handler validates a body before loading.

use std::collections::HashSet;

use super::commands::{CancelOrder, CreateOrder, OrderCommand, ShipOrder};
use super::errors::OrderError;
use super::events::{
    OrderCancelled, OrderConfirmed, OrderCreated, OrderDelivered, OrderEvent, OrderShipped,
    ShippingAddressChanged,
};
use super::limits::{
    MAX_CANCELLATION_REASON_LEN, MAX_CARRIER_LEN, MAX_ITEMS, MAX_ORDER_TOTAL_MINOR,
    MAX_TRACKING_NUMBER_LEN,
};
use super::state::OrderAggregate;
use super::status::OrderStatus;
use super::values::Money;
use super::values::text::{TextProblem, checked_text};
use crate::personal::Personal;

/// Decides `command` against `order`.
pub(super) fn decide(
    order: &OrderAggregate,
    command: &OrderCommand,
) -> Result<Vec<OrderEvent>, OrderError> {
    let event = match command {
        OrderCommand::Create(create) => {
            let created = validate_create(create)?;
            if order.status() != OrderStatus::NotCreated {
                return Err(OrderError::AlreadyExists);
            }
            OrderEvent::Created(created)
        }
        OrderCommand::Confirm(_) => {
            require(order, command, &[OrderStatus::Created])?;
            OrderEvent::Confirmed(OrderConfirmed {})
        }
        OrderCommand::Cancel(cancel) => {
            let cancelled = validate_cancel(cancel)?;
            require(
                order,
                command,
                &[OrderStatus::Created, OrderStatus::Confirmed],
            )?;
            OrderEvent::Cancelled(cancelled)
        }
        OrderCommand::Ship(ship) => {
            let shipped = validate_ship(ship)?;
            require(order, command, &[OrderStatus::Confirmed])?;
            if order.shipping_address().is_none() {
                return Err(OrderError::NoShippingAddress);
            }
            OrderEvent::Shipped(shipped)
        }
        OrderCommand::ChangeShippingAddress(change) => {
            require(
                order,
                command,
                &[OrderStatus::Created, OrderStatus::Confirmed],
            )?;
            OrderEvent::ShippingAddressChanged(ShippingAddressChanged {
                shipping_address: Personal::Plain(change.shipping_address.clone()),
            })
        }
        OrderCommand::Deliver(_) => {
            require(order, command, &[OrderStatus::Shipped])?;
            OrderEvent::Delivered(OrderDelivered {})
        }
    };
    Ok(vec![event])
}

/// The order must exist and be in one of `allowed`.
fn require(
    order: &OrderAggregate,
    command: &OrderCommand,
    allowed: &[OrderStatus],
) -> Result<(), OrderError> {
    match order.status() {
        OrderStatus::NotCreated => Err(OrderError::OrderNotFound),
        status if allowed.contains(&status) => Ok(()),
        status => Err(OrderError::InvalidTransition {
            command: command.name(),
            status,
        }),
    }
}

fn validate_create(create: &CreateOrder) -> Result<OrderCreated, OrderError> {
    if create.items.is_empty() {
        return Err(OrderError::NoItems);
    }
    if create.items.len() > MAX_ITEMS {
        return Err(OrderError::TooManyItems {
            count: create.items.len(),
        });
    }
    let mut seen = HashSet::with_capacity(create.items.len());
    let mut total = Money::zero(create.currency.clone());
    for item in &create.items {
        if item.unit_price().currency() != &create.currency {
            return Err(OrderError::CurrencyMismatch {
                expected: create.currency.clone(),
                found: item.unit_price().currency().clone(),
            });
        }
        if !seen.insert(item.sku()) {
            return Err(OrderError::DuplicateSku {
                sku: item.sku().as_str().to_owned(),
            });
        }
        total = total.checked_add(&item.line_total()?)?;
    }
    if total.amount_minor() > MAX_ORDER_TOTAL_MINOR {
        return Err(OrderError::AmountOverflow);
    }
    Ok(OrderCreated {
        order_id: create.order_id,
        customer_id: create.customer_id,
        currency: create.currency.clone(),
        items: create.items.clone(),
        total,
        shipping_address: create.shipping_address.clone().map(Personal::Plain),
        contact: create.contact.clone().map(Personal::Plain),
    })
}

fn validate_cancel(cancel: &CancelOrder) -> Result<OrderCancelled, OrderError> {
    match checked_text(&cancel.reason, MAX_CANCELLATION_REASON_LEN) {
        // A stored personal string with this prefix reads as sealed: plain text must not have it.
        Ok(reason) if reason.starts_with(crate::personal::SEALED_PREFIX) => {
            Err(OrderError::InvalidCancellationReason {
                problem: "starts with `enc:`, which marks encrypted values",
            })
        }
        Ok(reason) => Ok(OrderCancelled {
            reason: Personal::Plain(reason.to_owned()),
        }),
        Err(TextProblem::Blank) => Err(OrderError::InvalidCancellationReason {
            problem: "is empty",
        }),
        Err(TextProblem::TooLong) => Err(OrderError::InvalidCancellationReason {
            problem: "is too long",
        }),
        Err(TextProblem::ControlCharacter) => Err(OrderError::InvalidCancellationReason {
            problem: "contains control characters (such as NUL, a line break or ESC)",
        }),
    }
}

fn validate_ship(ship: &ShipOrder) -> Result<OrderShipped, OrderError> {
    Ok(OrderShipped {
        carrier: shipping_text("carrier", ship.carrier.as_deref(), MAX_CARRIER_LEN)?,
        tracking_number: shipping_text(
            "tracking_number",
            ship.tracking_number.as_deref(),
            MAX_TRACKING_NUMBER_LEN,
        )?,
    })
}

/// Trims an optional shipping field; if present it must be non-blank, short and printable.
fn shipping_text(
    field: &'static str,
    value: Option<&str>,
    max_len: usize,
) -> Result<Option<String>, OrderError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let problem = match checked_text(value, max_len) {
        Ok(value) => return Ok(Some(value.to_owned())),
        Err(TextProblem::Blank) => "must not be blank; omit it if unknown".to_owned(),
        Err(TextProblem::TooLong) => format!("must be at most {max_len} characters"),
        Err(TextProblem::ControlCharacter) => "must not contain control characters".to_owned(),
    };
    Err(OrderError::InvalidShippingDetails { field, problem })
}
