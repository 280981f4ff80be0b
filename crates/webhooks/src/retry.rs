//! When to try a refused delivery again: exponential backoff with jitter, for a retry period.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The retry schedule of one deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first delay.
    pub min: Duration,
    /// The longest delay.
    pub max: Duration,
    /// How long an event may keep failing before the endpoint is marked failing and paused.
    pub period: Duration,
}

impl RetryPolicy {
    /// The delay after the `failures`-th failed attempt (1 for the first) with `jitter` in
    /// `[0, 1)`: `min · 2^(failures-1)`, capped at `max`, of which a random half is taken off
    /// ("equal jitter"), so that endpoints refused at the same time do not retry in step.
    pub fn delay(&self, failures: u64, jitter: f64) -> Duration {
        let doublings = u32::try_from(failures.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(30);
        let full = self.min.saturating_mul(1 << doublings).min(self.max);
        let half = full / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }

    /// Whether an event failing since `since` has used up the retry period at `now`.
    pub fn exhausted(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        (now - since)
            .to_std()
            .is_ok_and(|failing| failing >= self.period)
    }
}

/// A random number in `[0, 1)` for [`RetryPolicy::delay`].
pub fn jitter() -> f64 {
    let mut bytes = [0u8; 8];
    // Without the system's randomness the delay is the full one: still a valid backoff.
    if getrandom::fill(&mut bytes).is_err() {
        return 1.0;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            min: Duration::from_secs(1),
            max: Duration::from_secs(60),
            period: Duration::from_secs(3600),
        }
    }

    #[test]
    fn delays_double_up_to_the_cap_and_jitter_takes_off_at_most_half() {
        let p = policy();
        let full: Vec<u64> = (1..=8).map(|n| p.delay(n, 1.0).as_secs()).collect();
        assert_eq!(full, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(p.delay(3, 0.0), Duration::from_secs(2));
        assert_eq!(p.delay(3, 0.5), Duration::from_secs(3));
        assert_eq!(p.delay(u64::MAX, 0.0), Duration::from_secs(30));
        assert_eq!(p.delay(0, 1.0), Duration::from_secs(1));
    }

    #[test]
    fn the_period_runs_from_the_first_failure() {
        let p = policy();
        let since = Utc::now();
        assert!(!p.exhausted(since, since));
        assert!(!p.exhausted(since, since + chrono::Duration::seconds(3599)));
        assert!(p.exhausted(since, since + chrono::Duration::seconds(3600)));
        assert!(!p.exhausted(since, since - chrono::Duration::seconds(5)));
    }

    #[test]
    fn jitter_stays_in_its_range_and_spreads_over_it() {
        let draws: Vec<f64> = (0..1000).map(|_| jitter()).collect();
        assert!(draws.iter().all(|j| (0.0..1.0).contains(j)), "{draws:?}");
        // 1 000 uniform draws all in one half: a chance of 2^-999.
        assert!(draws.iter().any(|j| *j < 0.5) && draws.iter().any(|j| *j >= 0.5));
    }
}
