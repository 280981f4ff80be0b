//! The states this process's commands produced, kept so that the next command on the same
//! aggregate can skip its load (ADR 0011).
//!
//! An entry is only ever a state the store really had at that version, so it can be stale but
//! never wrong. The append's expected version makes a stale entry harmless: the append is
//! refused, the entry dropped, and the command loaded and decided again. The handler never
//! answers from an entry alone: a rule rejection or a no-op decided on one is checked against a
//! fresh load first, and commands with `If-Match` or an `Idempotency-Key` always load.

use std::any::Any;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};

use domain::Aggregate;
use lru::LruCache;
use uuid::Uuid;

type Entry = (Box<dyn Any + Send + Sync>, u64);
type Entries = LruCache<(&'static str, Uuid), Entry>;

/// A bounded, least-recently-used map from (aggregate type, id) to (state, version).
#[derive(Clone)]
pub(crate) struct StateCache {
    entries: Option<Arc<Mutex<Entries>>>,
}

impl std::fmt::Debug for StateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateCache")
            .field("enabled", &self.entries.is_some())
            .finish()
    }
}

impl StateCache {
    /// Holds up to `capacity` states; 0 holds none.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: NonZeroUsize::new(capacity).map(|n| Arc::new(Mutex::new(LruCache::new(n)))),
        }
    }

    fn lock(&self) -> Option<MutexGuard<'_, Entries>> {
        // A poisoned lock only means a panic elsewhere mid-update of an LRU list: the entries
        // are still valid states, so keep using them.
        self.entries
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// The state and version kept for `id`, if any.
    pub(crate) fn get<A: Aggregate>(&self, id: Uuid) -> Option<(A, u64)> {
        let mut entries = self.lock()?;
        let (state, version) = entries.get(&(A::TYPE, id))?;
        state.downcast_ref::<A>().map(|s| (s.clone(), *version))
    }

    /// Keeps `state` as the state of `id` at `version`.
    pub(crate) fn put<A: Aggregate>(&self, id: Uuid, state: &A, version: u64) {
        if let Some(mut entries) = self.lock() {
            entries.put((A::TYPE, id), (Box::new(state.clone()), version));
        }
    }

    /// Forgets `id`.
    pub(crate) fn forget<A: Aggregate>(&self, id: Uuid) {
        if let Some(mut entries) = self.lock() {
            entries.pop(&(A::TYPE, id));
        }
    }
}
