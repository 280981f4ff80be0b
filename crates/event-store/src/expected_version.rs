//! What a writer believes about a stream before it appends.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::EventStoreError;

/// The optimistic-concurrency condition of an append, checked atomically with the write.
///
/// Versions count events: a stream's first event has version 1, so a stream at version 0 does not
/// exist. The four modes are KurrentDB's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "mode", content = "version", rename_all = "snake_case")]
pub enum ExpectedVersion {
    /// No check: append after whatever is there.
    Any,
    /// The stream must not exist yet (version 0).
    NoStream,
    /// The stream must exist (version ≥ 1), at any version.
    StreamExists,
    /// The stream must be exactly at this version; `Exact(0)` means the same as [`Self::NoStream`].
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream currently at `actual` satisfies this expectation.
    pub fn is_satisfied_by(self, actual: u64) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual == 0,
            Self::StreamExists => actual > 0,
            Self::Exact(expected) => actual == expected,
        }
    }

    /// The version the first appended event gets when the stream is at `actual`.
    pub fn next_version(actual: u64) -> u64 {
        actual + 1
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::NoStream => f.write_str("no stream"),
            Self::StreamExists => f.write_str("stream exists"),
            Self::Exact(version) => write!(f, "{version}"),
        }
    }
}

impl From<u64> for ExpectedVersion {
    /// `0` means "new stream", any other value an exact version.
    fn from(version: u64) -> Self {
        if version == 0 {
            Self::NoStream
        } else {
            Self::Exact(version)
        }
    }
}

/// Signed versions as older callers pass them: `0` is "new stream", a positive value an exact
/// version, and KurrentDB's constants `-1` (no stream), `-2` (any), `-4` (stream exists) keep their
/// meaning. Any other negative value is rejected.
impl TryFrom<i64> for ExpectedVersion {
    type Error = EventStoreError;

    fn try_from(version: i64) -> Result<Self, Self::Error> {
        match version {
            -1 | 0 => Ok(Self::NoStream),
            -2 => Ok(Self::Any),
            -4 => Ok(Self::StreamExists),
            v if v > 0 => Ok(Self::Exact(v.unsigned_abs())),
            v => Err(EventStoreError::InvalidExpectedVersion(v)),
        }
    }
}

impl TryFrom<i32> for ExpectedVersion {
    type Error = EventStoreError;

    fn try_from(version: i32) -> Result<Self, Self::Error> {
        Self::try_from(i64::from(version))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_means_new_stream() {
        assert_eq!(
            ExpectedVersion::try_from(0_i32).unwrap(),
            ExpectedVersion::NoStream
        );
        assert_eq!(ExpectedVersion::from(0_u64), ExpectedVersion::NoStream);
        assert_eq!(ExpectedVersion::from(1_u64), ExpectedVersion::Exact(1));
        // `Exact(0)` behaves as `NoStream` on every stream version.
        for actual in 0..5 {
            assert_eq!(
                ExpectedVersion::Exact(0).is_satisfied_by(actual),
                ExpectedVersion::NoStream.is_satisfied_by(actual),
                "at version {actual}"
            );
        }
        assert!(ExpectedVersion::Exact(0).is_satisfied_by(0));
        assert!(!ExpectedVersion::Exact(0).is_satisfied_by(1));
    }

    #[test]
    fn positive_versions_are_exact_up_to_the_largest() {
        assert_eq!(
            ExpectedVersion::try_from(1_i64).unwrap(),
            ExpectedVersion::Exact(1)
        );
        assert_eq!(
            ExpectedVersion::try_from(i64::MAX).unwrap(),
            ExpectedVersion::Exact(i64::MAX.unsigned_abs())
        );
        assert_eq!(
            ExpectedVersion::try_from(7_i32).unwrap(),
            ExpectedVersion::Exact(7)
        );
        assert_eq!(
            ExpectedVersion::try_from(-2_i32).unwrap(),
            ExpectedVersion::Any
        );
    }

    #[test]
    fn kurrentdb_constants_keep_their_meaning() {
        assert_eq!(
            ExpectedVersion::try_from(-2_i64).unwrap(),
            ExpectedVersion::Any
        );
        assert_eq!(
            ExpectedVersion::try_from(-1_i64).unwrap(),
            ExpectedVersion::NoStream
        );
        assert_eq!(
            ExpectedVersion::try_from(-4_i64).unwrap(),
            ExpectedVersion::StreamExists
        );
        assert_eq!(
            ExpectedVersion::try_from(7_i64).unwrap(),
            ExpectedVersion::Exact(7)
        );
    }

    #[test]
    fn other_negative_versions_are_rejected() {
        assert!(matches!(
            ExpectedVersion::try_from(-3_i64),
            Err(EventStoreError::InvalidExpectedVersion(-3))
        ));
        for version in [-5_i64, -100, i64::MIN] {
            assert!(
                matches!(
                    ExpectedVersion::try_from(version),
                    Err(EventStoreError::InvalidExpectedVersion(v)) if v == version
                ),
                "{version}"
            );
        }
        assert!(matches!(
            ExpectedVersion::try_from(-3_i32),
            Err(EventStoreError::InvalidExpectedVersion(-3))
        ));
    }

    #[test]
    fn the_next_version_follows_the_current_one() {
        assert_eq!(ExpectedVersion::next_version(0), 1);
        assert_eq!(ExpectedVersion::next_version(41), 42);
    }

    #[test]
    fn each_mode_displays_as_it_is_reported_in_conflicts() {
        assert_eq!(ExpectedVersion::Any.to_string(), "any");
        assert_eq!(ExpectedVersion::NoStream.to_string(), "no stream");
        assert_eq!(ExpectedVersion::StreamExists.to_string(), "stream exists");
        assert_eq!(ExpectedVersion::Exact(12).to_string(), "12");
    }

    #[test]
    fn each_mode_checks_what_it_says() {
        use ExpectedVersion::*;
        assert!(Any.is_satisfied_by(0) && Any.is_satisfied_by(9));
        assert!(NoStream.is_satisfied_by(0) && !NoStream.is_satisfied_by(1));
        assert!(!StreamExists.is_satisfied_by(0) && StreamExists.is_satisfied_by(3));
        assert!(Exact(3).is_satisfied_by(3) && !Exact(3).is_satisfied_by(2));
    }
}
