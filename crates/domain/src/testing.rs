//! Test support for aggregates, with no I/O: a given/when/then harness and order fixtures.
//!
//! Enabled in this crate's tests and, for other crates, by the `testing` cargo feature.
//!
//! ```
//! use domain::testing::{AggregateTest, fixtures};
//! use domain::{ConfirmOrder, OrderAggregate};
//!
//! AggregateTest::<OrderAggregate>::given(vec![fixtures::order_created()])
//!     .when(ConfirmOrder)
//!     .then_expect(vec![fixtures::order_confirmed()]);
//! ```

pub mod fixtures;

use std::fmt::Debug;

use crate::aggregate::Aggregate;

/// The "given" step: an aggregate rebuilt from past events.
#[derive(Debug)]
pub struct AggregateTest<A: Aggregate> {
    state: A,
}

impl<A: Aggregate> AggregateTest<A> {
    /// Starts from the state produced by `events`.
    pub fn given(events: Vec<A::Event>) -> Self {
        Self {
            state: A::replay(&events),
        }
    }

    /// Starts from an aggregate with no history.
    pub fn given_no_previous_events() -> Self {
        Self::given(Vec::new())
    }

    /// The "when" step: decides `command` against the given state.
    pub fn when(self, command: impl Into<A::Command>) -> AggregateTestOutcome<A> {
        let result = self.state.decide(&command.into());
        AggregateTestOutcome {
            state: self.state,
            result,
        }
    }
}

/// The "then" step: assertions on what `decide` returned.
#[derive(Debug)]
pub struct AggregateTestOutcome<A: Aggregate> {
    state: A,
    result: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> AggregateTestOutcome<A> {
    /// Asserts the command succeeded with exactly `expected`; returns the state after applying
    /// them, for further assertions.
    #[track_caller]
    pub fn then_expect(self, expected: Vec<A::Event>) -> A {
        match self.result {
            Ok(events) => {
                assert_eq!(events, expected, "the command emitted unexpected events");
                let mut state = self.state;
                state.evolve_all(&events);
                state
            }
            Err(error) => panic!("expected events {expected:?}, but the command failed: {error:?}"),
        }
    }

    /// Asserts the command failed with exactly `expected`.
    #[track_caller]
    pub fn then_expect_error(self, expected: A::Error)
    where
        A::Error: PartialEq,
    {
        match self.result {
            Ok(events) => panic!("expected error {expected:?}, but the command emitted {events:?}"),
            Err(error) => assert_eq!(error, expected, "the command failed with another error"),
        }
    }

    /// Asserts the command failed with an error satisfying `matches`.
    #[track_caller]
    pub fn then_expect_error_matching(self, matches: impl FnOnce(&A::Error) -> bool) {
        match self.result {
            Ok(events) => panic!("expected an error, but the command emitted {events:?}"),
            Err(error) => assert!(matches(&error), "unexpected error: {error:?}"),
        }
    }

    /// The raw result, for assertions the helpers above do not cover.
    pub fn into_result(self) -> Result<Vec<A::Event>, A::Error>
    where
        A::Error: Debug,
    {
        self.result
    }
}
