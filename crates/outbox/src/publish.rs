//! Turning feed events into Kafka records and collecting the broker's acknowledgements.

use std::collections::VecDeque;

use event_store::FeedEvent;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::event::Published;

/// A batch handed to the producer, waiting for the broker's acknowledgements.
pub(crate) struct InFlight {
    /// Position of the batch's last event: the checkpoint once the batch is acknowledged.
    pub(crate) last_position: u64,
    /// Events in the batch.
    pub(crate) events: usize,
    /// Acknowledgements not yet received, in send order.
    deliveries: VecDeque<DeliveryFuture>,
}

impl InFlight {
    /// Waits until every message of the batch is acknowledged; the first failure wins.
    /// Cancel-safe: dropped mid-way, it keeps the acknowledgements still to come.
    pub(crate) async fn acked(&mut self) -> Result<(), KafkaError> {
        while let Some(delivery) = self.deliveries.front_mut() {
            let result = delivery.await;
            self.deliveries.pop_front();
            match result {
                Ok(Ok(_)) => {}
                Ok(Err((error, _message))) => return Err(error),
                Err(_canceled) => return Err(KafkaError::Canceled),
            }
        }
        Ok(())
    }
}

/// Hands every event of `events` (read from the feed, so non-empty and positioned) to the
/// producer. Returns at the first refusal (e.g. a full local queue).
pub(crate) fn send_batch(
    producer: &FutureProducer,
    topic: &str,
    events: Vec<FeedEvent>,
) -> Result<InFlight, KafkaError> {
    let count = events.len();
    let last_position = events.last().map_or(0, |e| e.position);
    let mut deliveries = VecDeque::with_capacity(count);
    for stored in events {
        let event = Published::from_feed(stored);
        // Strings, numbers and JSON text already checked: serializing it cannot fail.
        let value = serde_json::to_vec(&event).unwrap_or_default();
        let key = event.key();
        let headers = event.headers().iter().fold(
            OwnedHeaders::new_with_capacity(7),
            |headers, (name, text)| {
                headers.insert(Header {
                    key: name,
                    value: Some(text.as_bytes()),
                })
            },
        );
        let record = FutureRecord::to(topic)
            .key(&key)
            .payload(&value)
            .headers(headers);
        let delivery = producer.send_result(record).map_err(|(error, _)| error)?;
        deliveries.push_back(delivery);
    }
    Ok(InFlight {
        last_position,
        events: count,
        deliveries,
    })
}
