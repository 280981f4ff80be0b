//! The [`DomainEvent`] trait: how an event becomes a stored row and back.

use std::fmt::Debug;

/// A fact emitted by an aggregate, with a stable stored name and a versioned JSON payload.
///
/// The stored form is `(event_type, schema_version, payload)`; the Rust shape of the event may
/// change as long as [`DomainEvent::from_stored`] still reads every version ever written.
pub trait DomainEvent: Debug + Clone + PartialEq + Send + Sync + 'static {
    /// Stable stored name of this event, e.g. "OrderCreated". Never rename.
    fn event_type(&self) -> &'static str;

    /// Current schema version of this event type's payload, starting at 1.
    fn schema_version(&self) -> u32;

    /// JSON of the variant's payload struct only (no enum tag).
    fn to_payload(&self) -> serde_json::Value;

    /// Decodes a stored event. This is where upcasting lives: older schema versions are accepted
    /// and converted to the current shape. Unknown types, future versions and malformed payloads
    /// are errors.
    fn from_stored(
        event_type: &str,
        schema_version: u32,
        payload: serde_json::Value,
    ) -> Result<Self, EventDecodeError>
    where
        Self: Sized;
}

/// A stored event could not be decoded. Always a server-side problem (HTTP 500), never the
/// client's: the details belong in the log, not in a response body.
#[derive(Debug, thiserror::Error)]
pub enum EventDecodeError {
    /// The event type is not known to this build (written by a newer or foreign writer).
    #[error("unknown event type `{event_type}`")]
    UnknownType {
        /// The stored event type.
        event_type: String,
    },
    /// The schema version is outside the range this build can read (typically a newer writer).
    #[error(
        "unsupported schema version {schema_version} of event `{event_type}`; this build reads versions 1 to {latest}"
    )]
    UnsupportedVersion {
        /// The stored event type.
        event_type: String,
        /// The stored schema version.
        schema_version: u32,
        /// The newest version this build understands.
        latest: u32,
    },
    /// The payload does not match the declared type and version, or violates an invariant.
    #[error("invalid payload for event `{event_type}` v{schema_version}: {source}")]
    InvalidPayload {
        /// The stored event type.
        event_type: String,
        /// The stored schema version.
        schema_version: u32,
        /// Why decoding failed.
        #[source]
        source: serde_json::Error,
    },
}
