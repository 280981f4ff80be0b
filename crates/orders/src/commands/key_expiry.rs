//! Idempotency records expire: a background task deletes those older than the retention.
//!
//! A record is what lets a retry get its original answer, so it must outlive the retries a client
//! makes (seconds to minutes); kept forever it is one row per keyed command, which a client could
//! grow without bound. Past the retention (`ORDERS_IDEMPOTENCY_RETENTION`, 24 hours by default,
//! like the payment APIs that popularised the header) a retry under the same key is a new request.

use std::time::Duration;

use event_store::EventStore;
use tokio::sync::watch;

/// How often the task purges: a tenth of the retention, between one second and ten minutes.
pub fn purge_interval(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(600))
}

/// Starts the task that purges `store`'s idempotency records older than `retention`, every
/// [`purge_interval`], until `shutdown` turns `true`. A zero retention keeps them forever (no
/// task). Several instances may purge the same database; each deletes what is there.
pub fn spawn_purger<S>(store: S, retention: Duration, mut shutdown: watch::Receiver<bool>)
where
    S: EventStore + Send + Sync + 'static,
{
    if retention.is_zero() {
        return;
    }
    let every = purge_interval(retention);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            match store.purge_idempotency_records(retention).await {
                Ok(0) => {}
                Ok(purged) => {
                    metrics::counter!("idempotency_records_purged_total").increment(purged);
                    tracing::info!(purged, ?retention, "expired idempotency records deleted");
                }
                Err(error) => {
                    tracing::warn!(%error, "could not purge idempotency records; will retry")
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_a_tenth_of_the_retention_within_bounds() {
        assert_eq!(
            purge_interval(Duration::from_secs(3600)),
            Duration::from_secs(360)
        );
        assert_eq!(
            purge_interval(Duration::from_secs(86_400)),
            Duration::from_secs(600)
        );
        assert_eq!(
            purge_interval(Duration::from_millis(500)),
            Duration::from_secs(1)
        );
    }
}
