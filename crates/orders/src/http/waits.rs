//! How many queries one caller may have waiting for the read model at once.
//!
//! A query with `min_position` or `consistent_with` may wait up to `ORDERS_READ_WAIT` for the read
//! model. Without a bound, one client could hold any number of such requests open. Each caller
//! (token subject) gets [`MAX_WAITS_PER_CALLER`] slots; a query that would need one more is
//! answered 429 at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Queries of one caller that may wait for the read model at the same time.
pub const MAX_WAITS_PER_CALLER: usize = 8;

/// The callers' waiting queries; cloning shares the count.
#[derive(Debug, Clone, Default)]
pub struct WaitSlots {
    held: Arc<Mutex<HashMap<String, usize>>>,
}

/// One waiting query's slot, given back when dropped.
#[derive(Debug)]
pub struct WaitSlot {
    slots: WaitSlots,
    caller: String,
}

impl WaitSlots {
    /// A slot for `caller`, or `None` if it already holds [`MAX_WAITS_PER_CALLER`].
    pub fn try_take(&self, caller: &str) -> Option<WaitSlot> {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = held.entry(caller.to_owned()).or_default();
        if *count >= MAX_WAITS_PER_CALLER {
            return None;
        }
        *count += 1;
        Some(WaitSlot {
            slots: self.clone(),
            caller: caller.to_owned(),
        })
    }
}

impl Drop for WaitSlot {
    fn drop(&mut self) {
        let mut held = self
            .slots
            .held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = held.get_mut(&self.caller) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.caller);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_caller_has_its_own_bounded_slots() {
        let slots = WaitSlots::default();
        let alice: Vec<_> = (0..MAX_WAITS_PER_CALLER)
            .map(|_| slots.try_take("alice").expect("a free slot"))
            .collect();
        assert!(slots.try_take("alice").is_none(), "one too many");
        assert!(
            slots.try_take("bob").is_some(),
            "another caller is not affected"
        );
        drop(alice);
        assert!(slots.try_take("alice").is_some(), "slots come back");
        assert!(
            slots.held.lock().unwrap().is_empty(),
            "no entry is kept for idle callers"
        );
    }
}
