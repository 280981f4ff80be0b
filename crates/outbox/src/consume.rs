//! Reading the topic back with a consumer group: what the tests and `orders kafka consume` use.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use serde::Serialize;

use crate::config::Properties;
use crate::event::OrderEventV1;

/// Where and as whom to consume.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// Bootstrap servers.
    pub brokers: String,
    /// The topic.
    pub topic: String,
    /// Consumer group: its members share the partitions; a new group starts at the beginning.
    pub group: String,
    /// Extra librdkafka settings (override the defaults).
    pub properties: Properties,
}

/// One message as received.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// The message key (the order id), if any.
    pub key: Option<String>,
    /// Headers, as text.
    pub headers: BTreeMap<String, String>,
    /// The decoded value, or why it could not be decoded.
    pub event: Result<OrderEventV1, String>,
}

/// A consumer-group member subscribed to one topic.
pub struct EventConsumer {
    inner: StreamConsumer,
}

impl EventConsumer {
    /// Joins `options.group` and subscribes to the topic. A group with no committed offsets
    /// starts at the earliest message; offsets are committed automatically.
    pub fn connect(options: &ConsumerOptions) -> Result<Self, KafkaError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &options.brokers)
            .set("group.id", &options.group)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "true")
            .set("enable.partition.eof", "false")
            .set("session.timeout.ms", "10000")
            .set("reconnect.backoff.max.ms", "2000");
        options.properties.apply(&mut config);
        let inner: StreamConsumer = config.create()?;
        inner.subscribe(&[&options.topic])?;
        Ok(Self { inner })
    }

    /// The next message, or `None` when none arrives within `timeout`.
    pub async fn next(&self, timeout: Duration) -> Result<Option<Received>, KafkaError> {
        let message = match tokio::time::timeout(timeout, self.inner.recv()).await {
            Err(_elapsed) => return Ok(None),
            Ok(message) => message?,
        };
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| {
                        let value = h.value.map(String::from_utf8_lossy).unwrap_or_default();
                        (h.key.to_owned(), value.into_owned())
                    })
                    .collect()
            })
            .unwrap_or_default();
        let event = match message.payload() {
            None => Err("message has no value".to_owned()),
            Some(bytes) => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        };
        Ok(Some(Received {
            partition: message.partition(),
            offset: message.offset(),
            key: message
                .key()
                .map(|k| String::from_utf8_lossy(k).into_owned()),
            headers,
            event,
        }))
    }
}
