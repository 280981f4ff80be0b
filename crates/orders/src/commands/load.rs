//! Loading an aggregate: the latest usable snapshot, then the events after it.

use domain::Aggregate;
use event_store::EventStore;
use uuid::Uuid;

use super::CommandError;
use super::codec::from_recorded;

/// An aggregate's state and the stream version it includes.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<A> {
    /// The state.
    pub state: A,
    /// The number of events folded into it (0: the stream does not exist).
    pub version: u64,
}

/// Loads `id`. A snapshot of another type or schema version, or one that does not deserialize,
/// is ignored and the stream replayed from the start: a snapshot never changes what a load returns.
pub(crate) async fn load<A: Aggregate, S: EventStore>(
    store: &S,
    id: Uuid,
    use_snapshots: bool,
) -> Result<Loaded<A>, CommandError<A::Error>> {
    let mut loaded = Loaded {
        state: A::default(),
        version: 0,
    };
    if use_snapshots && let Some(snapshot) = store.load_snapshot(id).await? {
        let usable =
            snapshot.aggregate_type == A::TYPE && snapshot.schema_version == A::SNAPSHOT_VERSION;
        match usable.then(|| serde_json::from_value::<A>(snapshot.state)) {
            Some(Ok(state)) => {
                loaded = Loaded {
                    state,
                    version: snapshot.version,
                }
            }
            Some(Err(error)) => {
                tracing::warn!(%id, %error, "snapshot does not deserialize; replaying the stream")
            }
            None => {
                tracing::debug!(%id, schema = snapshot.schema_version, "snapshot of another schema; replaying")
            }
        }
    }
    let events = store
        .load_events_from_version(id, loaded.version + 1)
        .await?;
    for recorded in &events {
        if recorded.version != loaded.version + 1 {
            return Err(CommandError::Corrupt(format!(
                "stream {id} jumps from version {} to {}",
                loaded.version, recorded.version
            )));
        }
        let event = from_recorded::<A::Event>(recorded).map_err(CommandError::Corrupt)?;
        loaded.state.evolve(&event);
        loaded.version = recorded.version;
    }
    Ok(loaded)
}
