//! The [`Aggregate`] trait: decide, then evolve.

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::event::DomainEvent;

/// An event-sourced aggregate: a consistency boundary whose state is a fold over its events.
///
/// The state type doubles as the snapshot format, hence the serde bounds.
pub trait Aggregate:
    Default + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// Stable stream/aggregate type name stored with every event, e.g. "Order".
    const TYPE: &'static str;
    /// Version of the serialized state used for snapshots; bump when the state shape changes.
    const SNAPSHOT_VERSION: u32;
    /// The commands this aggregate decides on.
    type Command: Debug + Send;
    /// The facts this aggregate emits and folds.
    type Event: DomainEvent;
    /// Why a command was rejected.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Pure decision: all business rules. Never mutates.
    ///
    /// Returns the events to append; an empty vector means "nothing to do".
    fn decide(&self, command: &Self::Command) -> Result<Vec<Self::Event>, Self::Error>;

    /// Apply one event. Never fails (events are facts).
    fn evolve(&mut self, event: &Self::Event);

    /// Rebuilds a state by folding `events` over [`Default::default`].
    fn replay<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self {
        let mut state = Self::default();
        state.evolve_all(events);
        state
    }

    /// Applies `events` in order on top of the current state (e.g. a loaded snapshot).
    fn evolve_all<'a>(&mut self, events: impl IntoIterator<Item = &'a Self::Event>) {
        for event in events {
            self.evolve(event);
        }
    }
}
