//! Every instance drops the cached key of a customer forgotten elsewhere (another instance, or
//! `orders customers forget` in another process) within a second, instead of when the cache
//! entry expires ([`KEY_CACHE_TTL`]).

use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use super::ring::{KEY_CACHE_TTL, KeyRing};

/// How often the key table is asked for recent forgettings.
pub const FORGETTINGS_POLL: Duration = Duration::from_secs(1);

/// Polls `ring`'s key table for customers forgotten recently and evicts their cached keys, until
/// `shutdown`. Each poll looks back twice the cache lifetime, by this instance's clock: a
/// forgetting stamped by an instance whose clock is behind by less than that is still seen, and
/// one older than that has left every cache by expiry anyway. Evicting is idempotent, so seeing a
/// forgetting on many polls costs only the lookup that follows.
pub fn spawn(ring: KeyRing, mut shutdown: watch::Receiver<bool>) {
    let look_back = chrono::Duration::from_std(KEY_CACHE_TTL * 2).unwrap_or(chrono::Duration::MAX);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(FORGETTINGS_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.wait_for(|stop| *stop) => return,
            }
            match ring.table().forgotten_since(Utc::now() - look_back).await {
                Ok(customers) => {
                    for customer in customers {
                        ring.evict(customer);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot read recent forgettings; cached keys expire within {KEY_CACHE_TTL:?} instead")
                }
            }
        }
    });
}
