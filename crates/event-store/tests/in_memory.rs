//! The conformance suite against the in-memory store, which keeps the suite itself honest.

event_store::conformance_tests!(async { event_store::InMemoryEventStore::new() });
