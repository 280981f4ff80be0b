//! Test plumbing shared by the workspace's integration tests.
//!
//! Tests talk to real services. When one is missing they fail loudly, saying how to start it;
//! they are never skipped.

pub mod cluster;
pub mod ha;
pub mod pgwire;
pub mod postgres;
pub mod proxy;
pub mod redis;
pub mod tansu;
