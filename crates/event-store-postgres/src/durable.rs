//! The durable head: how far the feed may be shown outside the database.
//!
//! With synchronous replication a commit becomes visible to other sessions only after the
//! synchronous standby has flushed it, except when the wait for the standby is cancelled (a
//! cancel request, `statement_timeout`) or the session dies in it: then the commit is visible on
//! the primary and may be missing from the standby that a failover promotes (Patroni #1412). The
//! sequencer numbers what is visible, so a position could be handed to an event that the new
//! primary does not have, and after the failover the same position would be given to another
//! event. Anything that tells the outside world (the relay and Kafka, the feed API, live feeds,
//! `orders feed tail`) therefore reads the feed only up to the *durable head*: the highest
//! position whose numbering is known to be flushed on every synchronous standby.
//!
//! How it is known: one statement reads the feed's head and the primary's WAL flush position
//! `L` under one snapshot. A commit (with `synchronous_commit` at `local` or above) is flushed
//! before it becomes visible, cancelled wait or not, so every commit that snapshot sees ends
//! before `L`; once each synchronous standby reports a flush position at or past `L`, everything
//! up to that head is on the standbys. (With `synchronous_commit = off` a commit is visible before
//! it is flushed: the WAL insert position is used instead, which later WAL without a commit, such
//! as hint-bit page images, can hold back until the next flush.) The head read now becomes durable when a later reading shows the
//! standbys past its `L`. Without synchronous standbys configured
//! (`synchronous_standby_names` empty: one server) the head is durable as soon as it is
//! committed. See docs/adr/0020-surviving-the-loss-of-the-primary.md.

use std::sync::Mutex;

use event_store::Result;
use sqlx::{PgPool, Row};

use crate::errors::unavailable;
use crate::rows::unsigned;

/// The feed's head, the WAL position every visible commit ends before, whether commits wait for standbys, and the lowest
/// flush position among the synchronous standbys (NULL when none is connected, or when the role
/// may not see replication progress: it needs `pg_monitor`).
const GATE_SQL: &str = "SELECT
    (SELECT MAX(position) FROM event_positions) AS head,
    pg_wal_lsn_diff(CASE current_setting('synchronous_commit')
        WHEN 'off' THEN pg_current_wal_insert_lsn()
        ELSE pg_current_wal_flush_lsn() END, '0/0')::int8 AS written,
    current_setting('synchronous_standby_names') <> '' AS gated,
    (SELECT COUNT(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')) AS standbys,
    (SELECT pg_wal_lsn_diff(MIN(flush_lsn), '0/0')::int8 FROM pg_stat_replication
      WHERE sync_state IN ('sync', 'quorum')) AS flushed";

/// The standbys' lowest flush position, alone: what [`DurableHead::refresh`] polls while the
/// standbys catch up with a reading.
const FLUSHED_SQL: &str = "SELECT pg_wal_lsn_diff(MIN(flush_lsn), '0/0')::int8
    FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')";

/// How long [`DurableHead::refresh`] waits for the standbys to flush past a reading, polling
/// every [`CATCH_UP_POLL`]. A synchronous standby is normally there within a millisecond or two
/// of the commit (the commit waited for it); WAL that no commit has flushed yet can take up to
/// the WAL writer's 200 ms. A one-shot reader (`orders verify`, `orders feed tail`) needs the
/// answer now; a standby that is gone costs a reader this much per read, no more.
const CATCH_UP: std::time::Duration = std::time::Duration::from_millis(250);
const CATCH_UP_POLL: std::time::Duration = std::time::Duration::from_millis(5);

/// What the store knows about the durable head.
#[derive(Debug, Default)]
pub(crate) struct DurableHead {
    known: Mutex<Known>,
}

#[derive(Debug, Default)]
struct Known {
    /// Every position up to this one is durable.
    durable: u64,
    /// A head seen with the WAL position that must reach the standbys before it is durable.
    candidate: Option<(u64, i64)>,
    /// Whether the last reading found synchronous standbys configured.
    gated: bool,
    /// Whether the privilege warning was logged.
    warned: bool,
}

impl DurableHead {
    /// The durable head known so far, without asking the database.
    pub(crate) fn known(&self) -> u64 {
        self.lock().durable
    }

    /// Like [`Self::known`], but `u64::MAX` unless the last reading found commits waiting for
    /// synchronous standbys: on a single server, or before the first reading, every committed
    /// position is shown.
    pub(crate) fn known_if_gated(&self) -> u64 {
        let known = self.lock();
        if known.gated { known.durable } else { u64::MAX }
    }

    /// A durable head of at least `wanted` if the one known so far covers it (no query),
    /// otherwise asks the database ([`Self::refresh`]).
    pub(crate) async fn at_least(&self, wanted: u64, pool: &PgPool) -> Result<u64> {
        let known = self.known();
        if known >= wanted {
            return Ok(known);
        }
        self.refresh(pool).await
    }

    /// Reads the head and the standbys' progress and returns the durable head.
    pub(crate) async fn refresh(&self, pool: &PgPool) -> Result<u64> {
        let row = sqlx::query(GATE_SQL)
            .fetch_one(pool)
            .await
            .map_err(unavailable)?;
        let head: Option<i64> = row.try_get("head").map_err(unavailable)?;
        let head = unsigned(head.unwrap_or(0), "position")?;
        let written: i64 = row.try_get("written").map_err(unavailable)?;
        let gated: bool = row.try_get("gated").map_err(unavailable)?;
        let standbys: i64 = row.try_get("standbys").map_err(unavailable)?;
        let flushed: Option<i64> = row.try_get("flushed").map_err(unavailable)?;
        let durable = self.record(head, written, gated, standbys, flushed);
        if durable >= head {
            return Ok(durable);
        }
        // The standbys are a little behind this reading: wait for them, briefly.
        let started = std::time::Instant::now();
        while started.elapsed() < CATCH_UP {
            tokio::time::sleep(CATCH_UP_POLL).await;
            let flushed: Option<i64> = sqlx::query_scalar(FLUSHED_SQL)
                .fetch_one(pool)
                .await
                .map_err(unavailable)?;
            if flushed.is_some_and(|flushed| flushed >= written) {
                return Ok(self.record(head, written, true, standbys, flushed));
            }
        }
        Ok(self.known())
    }

    /// Takes one reading into account and returns the durable head.
    fn record(
        &self,
        head: u64,
        written: i64,
        gated: bool,
        standbys: i64,
        flushed: Option<i64>,
    ) -> u64 {
        let mut known = self.lock();
        known.gated = gated;
        metrics::gauge!("event_store_commits_replicated").set(if gated && flushed.is_some() {
            1.0
        } else {
            0.0
        });
        metrics::gauge!("event_store_synchronous_standbys").set(standbys as f64);
        if !gated {
            known.durable = known.durable.max(head);
            known.candidate = None;
            return known.durable;
        }
        if standbys > 0 && flushed.is_none() && !known.warned {
            known.warned = true;
            tracing::error!(
                "synchronous standbys are connected but their progress is hidden from this \
                 database role: grant it pg_monitor, or the feed cannot move past what is \
                 known to be replicated"
            );
        }
        known.advance(head, written, flushed);
        known.durable
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Known {
    /// One reading: the head `head` seen with WAL written up to `written`, standbys flushed up
    /// to `flushed`.
    fn advance(&mut self, head: u64, written: i64, flushed: Option<i64>) {
        let flushed = flushed.unwrap_or(i64::MIN);
        if let Some((candidate, needs)) = self.candidate
            && flushed >= needs
        {
            self.durable = self.durable.max(candidate);
            self.candidate = None;
        }
        if flushed >= written {
            self.durable = self.durable.max(head);
            self.candidate = None;
        } else if self.candidate.is_none() && head > self.durable {
            // Kept until the standbys pass it, not replaced by newer readings: under a steady
            // stream of writes a newer `written` would always be just out of reach.
            self.candidate = Some((head, written));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Known;

    #[test]
    fn a_head_becomes_durable_once_the_standbys_flushed_past_its_wal() {
        let mut known = Known::default();
        known.advance(10, 1_000, Some(900));
        assert_eq!(known.durable, 0, "the standby is behind the head's WAL");
        known.advance(12, 1_200, Some(1_000));
        assert_eq!(known.durable, 10, "the first reading's WAL is flushed");
        known.advance(12, 1_300, Some(1_300));
        assert_eq!(known.durable, 12, "everything is flushed");
    }

    #[test]
    fn no_connected_standby_holds_the_head_where_it_is() {
        let mut known = Known {
            durable: 5,
            ..Known::default()
        };
        known.advance(9, 2_000, None);
        known.advance(9, 2_100, None);
        assert_eq!(known.durable, 5);
        known.advance(9, 2_200, Some(2_200));
        assert_eq!(known.durable, 9);
    }

    #[test]
    fn a_waiting_candidate_is_not_replaced_by_newer_readings() {
        let mut known = Known::default();
        known.advance(10, 1_000, Some(900));
        known.advance(20, 2_000, Some(950));
        known.advance(20, 2_100, Some(1_000));
        assert_eq!(
            known.durable, 10,
            "the first candidate is confirmed while newer WAL is still out"
        );
    }

    #[test]
    fn a_head_already_durable_is_no_candidate() {
        let mut known = Known {
            durable: 5,
            ..Known::default()
        };
        known.advance(5, 100, Some(50));
        known.advance(9, 200, Some(60));
        known.advance(9, 300, Some(200));
        assert_eq!(known.durable, 9, "the candidate slot went to the new head");
    }

    #[test]
    fn the_durable_head_never_moves_back() {
        let mut known = Known {
            durable: 20,
            ..Known::default()
        };
        known.advance(15, 100, Some(100));
        assert_eq!(known.durable, 20);
    }
}
