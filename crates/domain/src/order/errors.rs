//! [`OrderError`]: why an order command was rejected.

use crate::error::ErrorKind;

use super::limits::{
    MAX_CANCELLATION_REASON_LEN, MAX_ITEMS, MAX_ORDER_TOTAL_MINOR, MAX_QUANTITY, MAX_SKU_LEN,
};
use super::status::OrderStatus;
use super::values::Currency;

/// Why an order command was rejected. Messages tell the client what was wrong and what is
/// allowed; [`OrderError::code`] is the stable machine-readable form and [`OrderError::kind`]
/// picks the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// An order was submitted without lines. HTTP: 422.
    #[error("an order needs at least one item")]
    NoItems,
    /// Too many lines. HTTP: 422.
    #[error(
        "an order may have at most {MAX_ITEMS} items, got {count}; split it into several orders"
    )]
    TooManyItems {
        /// Lines submitted.
        count: usize,
    },
    /// Quantity out of range. HTTP: 422.
    #[error("quantity must be between 1 and {MAX_QUANTITY}, got {quantity}")]
    InvalidQuantity {
        /// The rejected quantity.
        quantity: u32,
    },
    /// SKU empty, too long or with characters outside `A-Z a-z 0-9 - _ .`. HTTP: 422.
    #[error(
        "invalid SKU `{sku}`: {problem}; a SKU is 1 to {MAX_SKU_LEN} characters of A-Z, a-z, 0-9, '-', '_' or '.'"
    )]
    InvalidSku {
        /// The rejected SKU (truncated if very long).
        sku: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Not an ISO 4217 currency code (a new order) or not three uppercase letters (stored).
    /// HTTP: 422.
    #[error("invalid currency `{code}`: use an ISO 4217 code in capitals, such as EUR or USD")]
    InvalidCurrency {
        /// The rejected code (truncated if very long).
        code: String,
    },
    /// A unit price below zero. HTTP: 422.
    #[error("unit price of SKU `{sku}` is {amount_minor} minor units; prices must be zero or more")]
    NegativePrice {
        /// The line's SKU.
        sku: String,
        /// The rejected amount.
        amount_minor: i64,
    },
    /// An amount in a different currency than the order. HTTP: 422.
    #[error(
        "amount is in {found} but the order is in {expected}; all items must use the order currency"
    )]
    CurrencyMismatch {
        /// The order's currency.
        expected: Currency,
        /// The offending currency.
        found: Currency,
    },
    /// The same SKU on two lines. HTTP: 422.
    #[error("SKU `{sku}` appears on more than one line; combine them into one line")]
    DuplicateSku {
        /// The repeated SKU.
        sku: String,
    },
    /// The order total is above [`super::MAX_ORDER_TOTAL_MINOR`] (or a line total does not fit
    /// in an `i64`). HTTP: 422.
    #[error(
        "the order total is too large: at most {MAX_ORDER_TOTAL_MINOR} minor units; reduce quantities or prices, or split the order"
    )]
    AmountOverflow,
    /// Cancellation reason empty, too long or with control characters. HTTP: 422.
    #[error(
        "cancellation reason {problem}; give a non-empty reason of at most {MAX_CANCELLATION_REASON_LEN} characters, without control characters"
    )]
    InvalidCancellationReason {
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Carrier or tracking number blank, too long or containing control characters. HTTP: 422.
    #[error("{field} {problem}")]
    InvalidShippingDetails {
        /// `carrier` or `tracking_number`.
        field: &'static str,
        /// What is wrong, and what is allowed.
        problem: String,
    },
    /// A shipping address field blank, too long, with control characters, or (the country) not
    /// an ISO 3166-1 alpha-2 code. HTTP: 422.
    #[error("shipping_address.{field} {problem}")]
    InvalidShippingAddress {
        /// `recipient_name`, `line1`, `line2`, `postal_code`, `city` or `country`.
        field: &'static str,
        /// What is wrong, and what is allowed.
        problem: String,
    },
    /// The contact email or phone is malformed. HTTP: 422.
    #[error("contact.{field} {problem}")]
    InvalidContact {
        /// `email` or `phone`.
        field: &'static str,
        /// What is wrong, and what is allowed.
        problem: String,
    },
    /// Ship on an order without a shipping address (placed before addresses existed, or
    /// without one). HTTP: 409.
    #[error(
        "the order has no shipping address; set one with POST /orders/{{id}}/shipping-address, then ship"
    )]
    NoShippingAddress,
    /// Any command but create on an order that does not exist. HTTP: 404.
    #[error("order does not exist; create it first")]
    OrderNotFound,
    /// Create on an order that already exists. HTTP: 409.
    #[error("order already exists; use a new order id to place another order")]
    AlreadyExists,
    /// A lifecycle transition not allowed from the current status. HTTP: 409.
    #[error("cannot {command} an order that is {status}; {}", transition_hint(.command, *.status))]
    InvalidTransition {
        /// The rejected command's [`super::OrderCommand::name`].
        command: &'static str,
        /// The order's status when the command arrived.
        status: OrderStatus,
    },
}

impl OrderError {
    /// Stable kebab-case machine code, e.g. `invalid-quantity`. Never change an existing one.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoItems => "no-items",
            Self::TooManyItems { .. } => "too-many-items",
            Self::InvalidQuantity { .. } => "invalid-quantity",
            Self::InvalidSku { .. } => "invalid-sku",
            Self::InvalidCurrency { .. } => "invalid-currency",
            Self::NegativePrice { .. } => "negative-price",
            Self::CurrencyMismatch { .. } => "currency-mismatch",
            Self::DuplicateSku { .. } => "duplicate-sku",
            Self::AmountOverflow => "amount-overflow",
            Self::InvalidCancellationReason { .. } => "invalid-cancellation-reason",
            Self::InvalidShippingDetails { .. } => "invalid-shipping-details",
            Self::InvalidShippingAddress { .. } => "invalid-shipping-address",
            Self::InvalidContact { .. } => "invalid-contact",
            Self::NoShippingAddress => "shipping-address-required",
            Self::OrderNotFound => "order-not-found",
            Self::AlreadyExists => "order-already-exists",
            Self::InvalidTransition { .. } => "invalid-transition",
        }
    }

    /// Validation → 422, NotFound → 404, StateConflict → 409.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::OrderNotFound => ErrorKind::NotFound,
            Self::AlreadyExists | Self::InvalidTransition { .. } | Self::NoShippingAddress => {
                ErrorKind::StateConflict
            }
            _ => ErrorKind::Validation,
        }
    }
}

/// What the client can do instead, for a rejected transition.
fn transition_hint(command: &str, status: OrderStatus) -> &'static str {
    match (command, status) {
        (_, OrderStatus::Cancelled) => "a cancelled order is final",
        (_, OrderStatus::Delivered) => "a delivered order is final",
        ("confirm", _) => "it is already confirmed",
        ("cancel", OrderStatus::Shipped) => "request a return instead",
        ("ship", OrderStatus::Created) => "confirm it first",
        ("ship" | "change-address", _) => "it has already shipped",
        ("deliver", OrderStatus::Created | OrderStatus::Confirmed) => "ship it first",
        _ => "this transition is not allowed",
    }
}

/// Shortens user input echoed in an error message so a huge value cannot bloat a response.
pub(crate) fn preview(input: &str) -> String {
    const MAX_PREVIEW_CHARS: usize = MAX_SKU_LEN + 8;
    if input.chars().count() <= MAX_PREVIEW_CHARS {
        input.to_owned()
    } else {
        let mut short: String = input.chars().take(MAX_PREVIEW_CHARS).collect();
        short.push('…');
        short
    }
}
