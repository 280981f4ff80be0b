//! CPU time spent by the processes of a benchmark, from `/proc/<pid>/stat`.
//!
//! On a machine where every part of a benchmark (the benchmark process with its client
//! libraries, the broker, PostgreSQL) shares the same few cores, a rate is bounded by the CPU
//! time one unit of work costs in all of them together. Sampling each part's CPU time around a
//! phase shows where a unit's cost goes and what the rate could be at most.

use std::time::Duration;

use anyhow::Context;

/// Linux reports `utime`/`stime` in clock ticks of `USER_HZ`, which is 100 on every
/// architecture the kernel's user ABI supports.
const TICKS_PER_SECOND: u64 = 100;

/// CPU time (user + system, all threads) used so far by the parts of a benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// This process: the benchmark's own code and its client libraries' threads.
    pub bench: Duration,
    /// The broker process, if there is one.
    pub broker: Duration,
    /// Every process named `postgres` (backends, WAL writer, checkpointer, …).
    pub postgres: Duration,
}

impl CpuTimes {
    /// Samples now; `broker` is the broker's pid, if it runs on this machine.
    pub fn sample(broker: Option<u32>) -> anyhow::Result<Self> {
        let bench = process_time("self")?.context("/proc/self/stat is missing")?;
        let broker = match broker {
            Some(pid) => process_time(&pid.to_string())?.unwrap_or_default(),
            None => Duration::ZERO,
        };
        let mut postgres = Duration::ZERO;
        for entry in std::fs::read_dir("/proc").context("cannot list /proc")? {
            let name = entry?.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            if let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                && comm.trim_end() == "postgres"
            {
                // A backend that exits between the two reads simply counts nothing.
                postgres += process_time(pid)?.unwrap_or_default();
            }
        }
        Ok(Self {
            bench,
            broker,
            postgres,
        })
    }

    /// What was spent between `earlier` and `self`. A PostgreSQL backend that exited in between
    /// takes its time with it, so that part is a lower bound.
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            bench: self.bench.saturating_sub(earlier.bench),
            broker: self.broker.saturating_sub(earlier.broker),
            postgres: self.postgres.saturating_sub(earlier.postgres),
        }
    }

    /// All parts together.
    pub fn total(&self) -> Duration {
        self.bench + self.broker + self.postgres
    }

    /// Microseconds of CPU per unit of work, per part and in total: `bench / broker /
    /// postgres = total`.
    pub fn per_unit(&self, units: usize) -> String {
        let us = |d: Duration| d.as_secs_f64() * 1e6 / units.max(1) as f64;
        format!(
            "bench {:.1} + broker {:.1} + postgres {:.1} = {:.1} µs of CPU each",
            us(self.bench),
            us(self.broker),
            us(self.postgres),
            us(self.total())
        )
    }
}

/// `utime + stime` of `/proc/<pid>/stat` (`self` for this process), or `None` if the process
/// is gone.
pub(crate) fn process_time(pid: &str) -> anyhow::Result<Option<Duration>> {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Ok(None);
    };
    // The command name (field 2) is in parentheses and may contain spaces: count from after it.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("unexpected /proc/{pid}/stat: {stat:?}"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime field 14 and stime field 15 (man 5 proc).
    let tick = |index: usize| -> anyhow::Result<u64> {
        fields
            .get(index - 3)
            .with_context(|| format!("/proc/{pid}/stat has no field {index}"))?
            .parse()
            .with_context(|| format!("field {index} of /proc/{pid}/stat is not a number"))
    };
    let ticks = tick(14)? + tick(15)?;
    Ok(Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_spent_cpu_and_the_difference_is_never_negative() {
        let before = CpuTimes::sample(None).expect("sample");
        let mut x = 0_u64;
        for i in 0..50_000_000_u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let after = CpuTimes::sample(None).expect("sample");
        assert!(after.bench > before.bench, "{before:?} → {after:?}");
        assert_eq!(before.since(&after).bench, Duration::ZERO);
        assert_eq!(after.since(&before).bench, after.bench - before.bench);
    }
}
