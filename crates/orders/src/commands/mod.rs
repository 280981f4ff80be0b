//! Command handling: load an aggregate (snapshot, then the events after it), decide, append with
//! the version that was loaded, and retry on a lost race when the caller did not pin a version.
//!
//! Generic over the [`Aggregate`] and the [`EventStore`]; knows nothing of HTTP.

mod codec;
mod context;
mod error;
mod handler;
mod key_expiry;
mod key_locks;
mod load;
mod state_cache;
#[cfg(test)]
mod tests;

pub use codec::from_recorded as decode;
pub use context::{CommandContext, IdempotencyKey};
pub use error::{AccessDenied, CommandError};
pub use handler::{CommandHandler, HandlerConfig, Outcome};
pub use key_expiry::{purge_interval, spawn_purger};
pub use load::{AsOf, Loaded};
