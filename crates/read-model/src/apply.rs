//! The error policy, applied the same way to every read model: walking a batch in feed order.

use event_store::RecordedEvent;
use uuid::Uuid;

/// What a projection does with an event it cannot apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OnError {
    /// Park it (with its error, visible in `orders projections status`) and go on.
    #[default]
    Park,
    /// Stop at it: nothing after it is applied until it can be (after a fix and a restart).
    Stop,
}

/// An event a projection could not apply, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    /// Its global position.
    pub position: u64,
    /// Its id.
    pub event_id: Uuid,
    /// Why it could not be applied.
    pub error: String,
}

/// What walking a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Events handled (applied, ignored or parked); the checkpoint moves past exactly these.
    pub events: usize,
    /// Position of the last handled event (the new checkpoint), or the old checkpoint.
    pub last_position: u64,
    /// Events that could not be applied, under [`OnError::Park`].
    pub parked: Vec<Parked>,
    /// The event the projection stopped at, under [`OnError::Stop`].
    pub stopped: Option<Parked>,
}

/// Walks `events` (in feed order, after checkpoint `after`) under `on_error`: `apply` is called
/// for each until one fails under [`OnError::Stop`]. An `apply` that fails must leave its state
/// as it was before that event.
pub fn walk(
    events: &[RecordedEvent],
    after: u64,
    on_error: OnError,
    mut apply: impl FnMut(&RecordedEvent) -> Result<(), String>,
) -> Applied {
    let mut applied = Applied {
        last_position: after,
        ..Applied::default()
    };
    for event in events {
        let position = event.position.unwrap_or(applied.last_position);
        if let Err(error) = apply(event) {
            let parked = Parked {
                position,
                event_id: event.event_id,
                error,
            };
            if on_error == OnError::Stop {
                applied.stopped = Some(parked);
                break;
            }
            applied.parked.push(parked);
        }
        applied.events += 1;
        applied.last_position = position;
    }
    applied
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(position: u64) -> RecordedEvent {
        RecordedEvent {
            event_id: Uuid::now_v7(),
            aggregate_id: Uuid::now_v7(),
            aggregate_type: "Test".into(),
            version: 1,
            position: Some(position),
            event_type: if position == 12 { "Bad" } else { "Good" }.into(),
            schema_version: 1,
            payload: serde_json::json!({}),
            metadata: serde_json::json!({}),
            recorded_at: chrono::Utc::now(),
        }
    }

    fn fold(seen: &mut Vec<u64>) -> impl FnMut(&RecordedEvent) -> Result<(), String> + '_ {
        |e| {
            if e.event_type == "Bad" {
                return Err("bad".into());
            }
            seen.push(e.position.unwrap_or(0));
            Ok(())
        }
    }

    #[test]
    fn park_records_the_failure_and_goes_on() {
        let events: Vec<_> = (11..=13).map(event).collect();
        let mut seen = Vec::new();
        let applied = walk(&events, 10, OnError::Park, fold(&mut seen));
        assert_eq!(seen, vec![11, 13]);
        assert_eq!((applied.events, applied.last_position), (3, 13));
        assert_eq!(applied.parked.len(), 1);
        assert_eq!(applied.parked[0].position, 12);
        assert_eq!(applied.parked[0].event_id, events[1].event_id);
        assert_eq!(applied.parked[0].error, "bad");
        assert_eq!(applied.stopped, None);
    }

    #[test]
    fn stop_halts_before_the_failure() {
        let events: Vec<_> = (11..=13).map(event).collect();
        let mut seen = Vec::new();
        let applied = walk(&events, 10, OnError::Stop, fold(&mut seen));
        assert_eq!(seen, vec![11]);
        assert_eq!((applied.events, applied.last_position), (1, 11));
        assert!(applied.parked.is_empty());
        assert_eq!(applied.stopped.map(|s| s.position), Some(12));
    }

    #[test]
    fn an_empty_batch_keeps_the_checkpoint() {
        let applied = walk(&[], 7, OnError::Park, |_| Ok(()));
        assert_eq!(
            applied,
            Applied {
                last_position: 7,
                ..Applied::default()
            }
        );
    }
}
