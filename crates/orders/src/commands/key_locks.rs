//! One command at a time per idempotency key, within this process.
//!
//! A client that times out and retries while its first request still runs sends two requests
//! with one key at once. Without a lock both load the order before either commits; one wins the
//! append and the other must then work out from the store that it was a retry. Holding the key's
//! lock for the whole command makes the second simply wait and then find the first's record at
//! its load, on every backend and whatever the interleaving. Across instances the store still
//! decides: the loser of the append race looks the key up before it answers (see the handler).
//!
//! The locks are striped: a fixed number, picked by a hash of (scope, key), so memory stays
//! bounded however many keys clients send. Two unrelated keys that share a stripe only wait for
//! each other, which at [`STRIPES`] stripes is rare and costs one command's latency.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard};

/// Number of locks. A power of two well above the commands one process runs at once.
const STRIPES: usize = 1024;

/// Striped locks over idempotency keys; cloning shares them.
#[derive(Clone)]
pub(crate) struct KeyLocks {
    stripes: Arc<[Mutex<()>]>,
    hasher: RandomState,
}

impl std::fmt::Debug for KeyLocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLocks")
            .field("stripes", &self.stripes.len())
            .finish()
    }
}

impl KeyLocks {
    pub(crate) fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            hasher: RandomState::new(),
        }
    }

    /// Waits until no other command of this process holds `(scope, key)`, and holds it until the
    /// guard is dropped.
    pub(crate) async fn lock(&self, scope: &str, key: &str) -> MutexGuard<'_, ()> {
        let stripe = self.hasher.hash_one((scope, key)) as usize % self.stripes.len();
        self.stripes[stripe].lock().await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_key_is_held_by_one_command_at_a_time() {
        let locks = KeyLocks::new();
        let held = locks.lock("alice", "k1").await;
        let same = tokio::time::timeout(Duration::from_millis(50), locks.lock("alice", "k1")).await;
        assert!(same.is_err(), "a second command with the key must wait");
        drop(held);
        let again = tokio::time::timeout(Duration::from_secs(5), locks.lock("alice", "k1")).await;
        assert!(again.is_ok(), "and go on once the first is done");
    }
}
