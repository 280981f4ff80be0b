//! [`DomainEvent`] for [`OrderEvent`]: stored names, schema versions and upcasting.
//!
//! To change a payload's shape: bump its `*_V` constant, keep decoding the old version in
//! [`upcast`] by rewriting the old JSON into the new shape, add the new version's golden fixture
//! under `crates/domain/fixtures/events/` (the test names the file and its content; never edit
//! an old one), and accept the new insta snapshot.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::events::OrderEvent;
use crate::event::{DomainEvent, EventDecodeError};

const CREATED: &str = "OrderCreated";
const CONFIRMED: &str = "OrderConfirmed";
const CANCELLED: &str = "OrderCancelled";
const SHIPPED: &str = "OrderShipped";
const DELIVERED: &str = "OrderDelivered";

/// Current schema version of every order event; they may diverge as events evolve.
const CREATED_V: u32 = 1;
const CONFIRMED_V: u32 = 1;
const CANCELLED_V: u32 = 1;
const SHIPPED_V: u32 = 1;
const DELIVERED_V: u32 = 1;

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Created(_) => CREATED,
            Self::Confirmed(_) => CONFIRMED,
            Self::Cancelled(_) => CANCELLED,
            Self::Shipped(_) => SHIPPED,
            Self::Delivered(_) => DELIVERED,
        }
    }

    fn schema_version(&self) -> u32 {
        match self {
            Self::Created(_) => CREATED_V,
            Self::Confirmed(_) => CONFIRMED_V,
            Self::Cancelled(_) => CANCELLED_V,
            Self::Shipped(_) => SHIPPED_V,
            Self::Delivered(_) => DELIVERED_V,
        }
    }

    fn to_payload(&self) -> Value {
        match self {
            Self::Created(e) => to_json(e),
            Self::Confirmed(e) => to_json(e),
            Self::Cancelled(e) => to_json(e),
            Self::Shipped(e) => to_json(e),
            Self::Delivered(e) => to_json(e),
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
        let payload = upcast(event_type, schema_version, payload);
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
        _ => return None,
    })
}

/// Rewrites an old payload into the current shape. Every event is at v1 today, so this is the
/// identity; a v2 of, say, `OrderCancelled` would add
/// `(CANCELLED, 1) => { payload["reason_code"] = json!("other"); payload }`.
fn upcast(_event_type: &str, _schema_version: u32, payload: Value) -> Value {
    payload
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
