//! The engine's error, and the one conversion between feed positions and SQL integers.

use event_store::EventStoreError;

/// What can go wrong keeping a read model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The read model's database failed (retried by the runner).
    #[error("read-model database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Reading the feed failed.
    #[error("reading the feed failed: {0}")]
    Feed(#[from] EventStoreError),
    /// A stored value the engine wrote cannot be right (e.g. a negative checkpoint): never
    /// guessed at, since a checkpoint read as 0 would apply every event again.
    #[error("corrupt read-model state: {0}")]
    Corrupt(String),
    /// This instance no longer holds the projection's lease (it expired while the instance was
    /// slow or frozen, and another took over): the batch was not applied.
    #[error("projection `{0}`: the lease was lost to another instance; standing by")]
    LeaseLost(String),
    /// A parked event that is not (or no longer) parked.
    #[error("projection `{projection}` has no parked event at position {position}")]
    NotParked {
        /// The projection.
        projection: String,
        /// The position asked for.
        position: u64,
    },
}

/// The engine's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A position (or version) read from a `BIGINT`/`INTEGER` column: a negative value is corrupt.
pub fn position_from_sql(value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| Error::Corrupt(format!("negative position {value}")))
}

/// A position (or version) as a `BIGINT`/`INTEGER`: positions come from the feed, which cannot
/// hand out one beyond `i64::MAX`, so a larger one is corrupt.
pub fn position_to_sql(value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| Error::Corrupt(format!("position {value} beyond i64")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_positions_are_corrupt_never_zero() {
        assert!(matches!(position_from_sql(-1), Err(Error::Corrupt(_))));
        assert_eq!(position_from_sql(0).ok(), Some(0));
        assert_eq!(position_from_sql(i64::MAX).ok(), Some(i64::MAX as u64));
    }

    #[test]
    fn positions_beyond_i64_are_corrupt() {
        assert!(position_to_sql(i64::MAX as u64 + 1).is_err());
        assert_eq!(position_to_sql(i64::MAX as u64).ok(), Some(i64::MAX));
        assert_eq!(position_to_sql(0).ok(), Some(0));
    }
}
