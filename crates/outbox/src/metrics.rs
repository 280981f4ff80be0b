//! The relay's metrics (recorded through the `metrics` facade; the service installs the exporter).

use std::time::Instant;

use chrono::Utc;

use event_store::Feed;

/// Events acknowledged by the broker (redeliveries after a restart count again).
pub const PUBLISHED: &str = "outbox_published_total";
/// Failed sends or acknowledgements; each one makes the relay back off and resend.
pub const FAILURES: &str = "outbox_publish_failures_total";
/// Events per batch sent.
pub const BATCH_SIZE: &str = "outbox_batch_size";
/// Committed events not yet acknowledged by the broker.
pub const LAG_EVENTS: &str = "outbox_lag_events";
/// Age of the oldest committed event not yet acknowledged (0 when caught up).
pub const LAG_SECONDS: &str = "outbox_lag_seconds";

/// Records lag gauges at most once a second (two index look-ups each time).
#[derive(Debug)]
pub(crate) struct LagGauge {
    topic: String,
    last: Option<Instant>,
}

impl LagGauge {
    pub(crate) fn new(topic: &str) -> Self {
        Self {
            topic: topic.to_owned(),
            last: None,
        }
    }

    /// Updates the gauges for `checkpoint` if a second has passed since the last update.
    pub(crate) async fn update(&mut self, feed: &impl Feed, checkpoint: u64) {
        if self.last.is_some_and(|t| t.elapsed().as_secs() < 1) {
            return;
        }
        self.last = Some(Instant::now());
        let Ok(head) = feed.head().await else { return };
        let lag = head.saturating_sub(checkpoint);
        let seconds = if lag == 0 {
            0.0
        } else {
            match feed.committed_at(checkpoint + 1).await {
                Ok(Some(oldest)) => (Utc::now() - oldest).num_milliseconds().max(0) as f64 / 1e3,
                _ => 0.0,
            }
        };
        let labels = [("topic", self.topic.clone())];
        metrics::gauge!(LAG_EVENTS, &labels).set(lag as f64);
        metrics::gauge!(LAG_SECONDS, &labels).set(seconds);
    }
}

pub(crate) fn published(topic: &str, events: usize) {
    metrics::counter!(PUBLISHED, "topic" => topic.to_owned()).increment(events as u64);
}

pub(crate) fn failure(topic: &str) {
    metrics::counter!(FAILURES, "topic" => topic.to_owned()).increment(1);
}

pub(crate) fn batch(topic: &str, events: usize) {
    metrics::histogram!(BATCH_SIZE, "topic" => topic.to_owned()).record(events as f64);
}
