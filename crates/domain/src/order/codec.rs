//! [`DomainEvent`] for [`OrderEvent`]: stored names, schema versions and upcasting.
//!
//! To change a payload's shape: bump its `*_V` constant, add one step to [`upcast_step`] that
//! rewrites a payload of the old version into the next one (the chain runs every step from the
//! stored version to the current one), add the new version's golden fixture under
//! `crates/domain/fixtures/events/` (the test names the file and its content; never edit an old
//! one), and accept the new insta snapshot. ADR 0017 has the rules.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::events::OrderEvent;
use crate::event::{DomainEvent, EventDecodeError};

/// The stored name of [`OrderEvent::Created`]: the one event that names the order's customer.
pub const CREATED: &str = "OrderCreated";
const CONFIRMED: &str = "OrderConfirmed";
const CANCELLED: &str = "OrderCancelled";
const SHIPPED: &str = "OrderShipped";
const DELIVERED: &str = "OrderDelivered";
const ADDRESS_CHANGED: &str = "ShippingAddressChanged";

/// The stored name of every order event, in lifecycle order.
pub const ORDER_EVENT_TYPES: [&str; 6] = [
    CREATED,
    ADDRESS_CHANGED,
    CONFIRMED,
    SHIPPED,
    DELIVERED,
    CANCELLED,
];

/// Current schema version of each order event.
const CREATED_V: u32 = 2;
const CONFIRMED_V: u32 = 1;
const CANCELLED_V: u32 = 1;
const SHIPPED_V: u32 = 1;
const DELIVERED_V: u32 = 1;
const ADDRESS_CHANGED_V: u32 = 1;

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Created(_) => CREATED,
            Self::Confirmed(_) => CONFIRMED,
            Self::Cancelled(_) => CANCELLED,
            Self::Shipped(_) => SHIPPED,
            Self::Delivered(_) => DELIVERED,
            Self::ShippingAddressChanged(_) => ADDRESS_CHANGED,
        }
    }

    fn schema_version(&self) -> u32 {
        match self {
            Self::Created(_) => CREATED_V,
            Self::Confirmed(_) => CONFIRMED_V,
            Self::Cancelled(_) => CANCELLED_V,
            Self::Shipped(_) => SHIPPED_V,
            Self::Delivered(_) => DELIVERED_V,
            Self::ShippingAddressChanged(_) => ADDRESS_CHANGED_V,
        }
    }

    fn to_payload(&self) -> Value {
        match self {
            Self::Created(e) => to_json(e),
            Self::Confirmed(e) => to_json(e),
            Self::Cancelled(e) => to_json(e),
            Self::Shipped(e) => to_json(e),
            Self::Delivered(e) => to_json(e),
            Self::ShippingAddressChanged(e) => to_json(e),
        }
    }

    fn from_stored(
        event_type: &str,
        schema_version: u32,
        payload: Value,
    ) -> Result<Self, EventDecodeError> {
        let unknown = || EventDecodeError::UnknownType {
            event_type: event_type.to_owned(),
        };
        let latest = latest_version(event_type).ok_or_else(unknown)?;
        if schema_version == 0 || schema_version > latest {
            return Err(EventDecodeError::UnsupportedVersion {
                event_type: event_type.to_owned(),
                schema_version,
                latest,
            });
        }
        let payload = upcast(event_type, schema_version, latest, payload);
        let decode = Decoder {
            event_type,
            schema_version,
        };
        match event_type {
            CREATED => decode.payload(payload).map(Self::Created),
            CONFIRMED => decode.payload(payload).map(Self::Confirmed),
            CANCELLED => decode.payload(payload).map(Self::Cancelled),
            SHIPPED => decode.payload(payload).map(Self::Shipped),
            DELIVERED => decode.payload(payload).map(Self::Delivered),
            ADDRESS_CHANGED => decode.payload(payload).map(Self::ShippingAddressChanged),
            _ => Err(unknown()),
        }
    }
}

/// The newest schema version of `event_type`, or `None` if the type is unknown.
fn latest_version(event_type: &str) -> Option<u32> {
    Some(match event_type {
        CREATED => CREATED_V,
        CONFIRMED => CONFIRMED_V,
        CANCELLED => CANCELLED_V,
        SHIPPED => SHIPPED_V,
        DELIVERED => DELIVERED_V,
        ADDRESS_CHANGED => ADDRESS_CHANGED_V,
        _ => return None,
    })
}

/// Rewrites a payload stored at `version` into the shape of `latest`, one step at a time.
fn upcast(event_type: &str, version: u32, latest: u32, payload: Value) -> Value {
    (version..latest).fold(payload, |payload, from| {
        upcast_step(event_type, from, payload)
    })
}

/// One link of the chain: a payload of `event_type` at version `from`, in the shape of
/// `from + 1`. Steps only add or rename fields; a payload that is not an object is passed on
/// unchanged for the decoder to refuse.
fn upcast_step(event_type: &str, from: u32, payload: Value) -> Value {
    let Value::Object(mut fields) = payload else {
        return payload;
    };
    // v1 → v2 of OrderCreated: addresses and contacts came in. An order placed before has
    // neither. (Add a step per further version here, as `(type, from)` arms.)
    if (event_type, from) == (CREATED, 1) {
        fields.insert("shipping_address".to_owned(), Value::Null);
        fields.insert("contact".to_owned(), Value::Null);
    }
    Value::Object(fields)
}

struct Decoder<'a> {
    event_type: &'a str,
    schema_version: u32,
}

impl Decoder<'_> {
    fn payload<T: DeserializeOwned>(&self, payload: Value) -> Result<T, EventDecodeError> {
        serde_json::from_value(payload).map_err(|source| EventDecodeError::InvalidPayload {
            event_type: self.event_type.to_owned(),
            schema_version: self.schema_version,
            source,
        })
    }
}

fn to_json(payload: &impl Serialize) -> Value {
    // Order payloads hold only strings, integers, arrays and string-keyed structs, which
    // serde_json always serializes.
    serde_json::to_value(payload).expect("order event payloads always serialize to JSON")
}
