//! Order-like events and the bookkeeping of the streams a writer owns.

use event_store::{ExpectedVersion, NewEvent};
use serde_json::json;
use uuid::Uuid;

/// The aggregate type every benchmark event has.
pub const AGGREGATE_TYPE: &str = "Order";

const EVENT_TYPES: [&str; 4] = [
    "OrderCreated",
    "OrderLineAdded",
    "OrderConfirmed",
    "OrderShipped",
];

/// One call's worth of events for one stream, and the expectation to append them with.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The stream.
    pub aggregate_id: Uuid,
    /// `NoStream` for a new stream, else `Exact(version before the batch)`.
    pub expected: ExpectedVersion,
    /// Version of the first event (what the store assigns; the raw insert writes it itself).
    pub first_version: u64,
    /// The events.
    pub events: Vec<NewEvent>,
}

/// The streams of one writer: one at a time, replaced after `calls_per_stream` calls.
#[derive(Debug)]
pub struct WriterStreams {
    calls_per_stream: u64,
    aggregate_id: Uuid,
    customer_id: Uuid,
    version: u64,
    calls: u64,
}

impl WriterStreams {
    /// A writer that starts a new stream every `calls_per_stream` calls.
    pub fn new(calls_per_stream: u64) -> Self {
        Self {
            calls_per_stream,
            aggregate_id: Uuid::now_v7(),
            customer_id: Uuid::now_v7(),
            version: 0,
            calls: 0,
        }
    }

    /// The next `size` events of the current stream (starting a new one when due).
    pub fn next_batch(&mut self, size: usize) -> Batch {
        if self.calls >= self.calls_per_stream {
            self.aggregate_id = Uuid::now_v7();
            self.customer_id = Uuid::now_v7();
            self.version = 0;
            self.calls = 0;
        }
        let correlation_id = Uuid::now_v7();
        let first_version = self.version + 1;
        let events = (first_version..)
            .take(size)
            .map(|version| self.event(version, correlation_id))
            .collect();
        Batch {
            aggregate_id: self.aggregate_id,
            expected: ExpectedVersion::from(self.version),
            first_version,
            events,
        }
    }

    /// Records that the last batch (of `size` events) was written.
    pub fn committed(&mut self, size: usize) {
        self.version += size as u64;
        self.calls += 1;
    }

    fn event(&self, version: u64, correlation_id: Uuid) -> NewEvent {
        let index = usize::try_from(version % EVENT_TYPES.len() as u64).unwrap_or(0);
        let payload = json!({
            "order_id": self.aggregate_id,
            "customer_id": self.customer_id,
            "line": {"sku": format!("SKU-{:05}", version % 100_000), "quantity": 2, "unit_price_cents": 1299},
            "currency": "EUR",
            "total_cents": 2598,
        });
        NewEvent::new(AGGREGATE_TYPE, EVENT_TYPES[index], 1, payload).with_metadata(json!({
            "correlation_id": correlation_id,
            "causation_id": correlation_id,
            "user_id": "store-bench",
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_roll_over_and_expect_exact_versions() {
        let mut streams = WriterStreams::new(2);
        let first = streams.next_batch(3);
        assert_eq!(first.expected, ExpectedVersion::NoStream);
        assert_eq!(first.first_version, 1);
        streams.committed(3);
        let second = streams.next_batch(3);
        assert_eq!(second.aggregate_id, first.aggregate_id);
        assert_eq!(second.expected, ExpectedVersion::Exact(3));
        streams.committed(3);
        let third = streams.next_batch(3);
        assert_ne!(third.aggregate_id, first.aggregate_id);
        assert_eq!(third.expected, ExpectedVersion::NoStream);
    }

    #[test]
    fn payload_is_about_200_bytes() {
        let mut streams = WriterStreams::new(50);
        let batch = streams.next_batch(1);
        let size = serde_json::to_string(&batch.events[0].payload)
            .map(|s| s.len())
            .unwrap_or(0);
        assert!((150..=260).contains(&size), "payload is {size} bytes");
    }
}
