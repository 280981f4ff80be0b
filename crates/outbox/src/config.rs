//! Kafka settings: where to publish and how the relay batches.

use std::time::Duration;

use clap::Args;
use clap::builder::TypedValueParser;
use rdkafka::ClientConfig;

/// The topic events go to when `KAFKA_TOPIC` is not set.
pub const DEFAULT_TOPIC: &str = "orders.events";

/// Largest accepted relay batch: with [`MAX_IN_FLIGHT_EVENTS`] in flight this stays under
/// librdkafka's default local queue (100 000 messages).
pub const MAX_BATCH_SIZE: usize = 10_000;

/// Default and largest window of events sent but not yet acknowledged (plus one batch). A deep
/// window keeps the producer's requests full while acknowledgements come back (measured: a window
/// of 8 000 events halved catch-up throughput against a window of 50 000); it bounds the
/// producer's memory (about 30 MB of ~600-byte messages) and what a crash republishes.
pub const MAX_IN_FLIGHT_EVENTS: usize = 50_000;

/// Publishing to Kafka. Without `KAFKA_BROKERS` the service publishes nothing.
#[derive(Debug, Clone, Args)]
pub struct KafkaConfig {
    /// Kafka bootstrap servers (`host:port,host:port`). Unset: no publishing.
    #[arg(long = "kafka-brokers", env = "KAFKA_BROKERS")]
    pub brokers: Option<String>,

    /// Topic every order event is published to (key = order id).
    #[arg(long = "kafka-topic", env = "KAFKA_TOPIC", default_value = DEFAULT_TOPIC)]
    pub topic: String,

    /// Extra librdkafka settings, `key=value,key=value` (e.g. `security.protocol=SASL_SSL`).
    /// They override the relay's defaults.
    #[arg(long = "kafka-properties", env = "KAFKA_PROPERTIES", hide_env_values = true, value_parser = PropertiesParser, default_value = "")]
    pub properties: Properties,

    /// Events the relay reads from the feed and sends per batch.
    #[arg(long = "kafka-batch-size", env = "KAFKA_BATCH_SIZE", default_value_t = 1000,
          value_parser = clap::value_parser!(u16).range(1..=MAX_BATCH_SIZE as i64).map(usize::from))]
    pub batch_size: usize,

    /// Events sent but not yet acknowledged, at most (plus one batch): what a crash may
    /// republish.
    #[arg(long = "kafka-max-in-flight", env = "KAFKA_MAX_IN_FLIGHT", default_value_t = MAX_IN_FLIGHT_EVENTS,
          value_parser = clap::value_parser!(u32).range(1..=MAX_IN_FLIGHT_EVENTS as i64).map(|n| n as usize))]
    pub max_in_flight: usize,

    /// How long the producer waits to fill a request (`linger.ms`).
    #[arg(long = "kafka-linger", env = "KAFKA_LINGER", default_value = "5ms", value_parser = common::config::parse_duration)]
    pub linger: Duration,
}

impl Default for KafkaConfig {
    /// No publishing; the other fields at their command-line defaults.
    fn default() -> Self {
        Self {
            brokers: None,
            topic: DEFAULT_TOPIC.to_owned(),
            properties: Properties::default(),
            batch_size: 1000,
            max_in_flight: MAX_IN_FLIGHT_EVENTS,
            linger: Duration::from_millis(5),
        }
    }
}

impl KafkaConfig {
    /// Settings for `brokers` with every other field at its default.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: Some(brokers.into()),
            ..Self::default()
        }
    }

    /// Sets the topic.
    #[must_use]
    pub fn with_topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = topic.into();
        self
    }

    /// Whether publishing is configured.
    pub fn enabled(&self) -> bool {
        self.brokers
            .as_deref()
            .is_some_and(|b| !b.trim().is_empty())
    }

    /// The producer's librdkafka configuration: safe defaults (idempotent, `acks=all`, bounded
    /// linger and reconnect back-off), then [`Self::properties`] on top.
    pub fn producer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.brokers.as_deref().unwrap_or(""))
            // No duplicates from the producer's own retries, and no reordering within a partition.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", self.linger.as_millis().to_string())
            // A send that cannot be delivered in a minute is reported as failed; the relay then
            // backs off and resends from its checkpoint (nothing is lost either way).
            .set("message.timeout.ms", "60000")
            // Resume within seconds once the broker is back.
            .set("reconnect.backoff.ms", "100")
            .set("reconnect.backoff.max.ms", "5000")
            .set("compression.type", "none");
        self.properties.apply(&mut config);
        config
    }
}

/// `key=value` pairs passed to librdkafka as they are. They may hold credentials
/// (`sasl.password`, `ssl.key.password`, ...), so `Debug` shows the keys only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Properties(pub Vec<(String, String)>);

impl std::fmt::Debug for Properties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(key, _)| (key, "<redacted>")))
            .finish()
    }
}

/// The clap parser of `--kafka-properties`: like [`parse_properties`], and its errors never
/// repeat the value (clap's own would print it whole, passwords included).
#[derive(Debug, Clone, Copy, Default)]
pub struct PropertiesParser;

impl clap::builder::TypedValueParser for PropertiesParser {
    type Value = Properties;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Properties, clap::Error> {
        let name = arg.map_or_else(|| "--kafka-properties".to_owned(), ToString::to_string);
        let refuse = |why: String| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value for {name}: {why}\n"),
            )
            .with_cmd(cmd)
        };
        let text = value
            .to_str()
            .ok_or_else(|| refuse("it is not valid UTF-8".to_owned()))?;
        parse_properties(text).map_err(refuse)
    }
}

impl Properties {
    /// Sets every pair on `config`.
    pub fn apply(&self, config: &mut ClientConfig) {
        for (key, value) in &self.0 {
            config.set(key, value);
        }
    }
}

/// Parses `key=value,key=value` (empty: none).
pub fn parse_properties(text: &str) -> Result<Properties, String> {
    text.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                Ok((key.trim().to_owned(), value.trim().to_owned()))
            }
            // Never the pair itself: it may be a password.
            _ => Err("every comma-separated entry must be key=value (the value is not shown: it may hold a secret)".to_owned()),
        })
        .collect::<Result<_, _>>()
        .map(Properties)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_properties() {
        let parsed = parse_properties(" a.b=1, c=x=y ,").unwrap_or_default();
        assert_eq!(
            parsed.0,
            vec![("a.b".into(), "1".into()), ("c".into(), "x=y".into())]
        );
        assert!(parse_properties("novalue").is_err());
        let why = parse_properties("sasl.password=hunter2,oops").unwrap_err();
        assert!(!why.contains("hunter2") && !why.contains("oops"), "{why}");
        let shown = format!(
            "{:?}",
            parse_properties("sasl.password=hunter2").unwrap_or_default()
        );
        assert!(
            shown.contains("sasl.password") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert_eq!(parse_properties(""), Ok(Properties::default()));
    }

    #[test]
    fn properties_override_defaults() {
        let mut config = KafkaConfig::new("k:9092");
        config.properties = parse_properties("acks=1").unwrap_or_default();
        assert_eq!(config.producer_config().get("acks"), Some("1"));
        assert_eq!(
            config.producer_config().get("enable.idempotence"),
            Some("true")
        );
    }
}
