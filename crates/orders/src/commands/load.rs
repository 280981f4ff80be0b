//! Loading an aggregate: the latest usable snapshot, then the events after it, in one store call.

use domain::Aggregate;
use event_store::{EventStore, IdempotencyLookup, IdempotencyRecord, LoadRequest, SnapshotFilter};
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
    /// Global position of the stream's last event, when the load read that event and the feed
    /// had numbered it (`None` right after a PostgreSQL commit, or when a snapshot covered it).
    pub position: Option<u64>,
}

impl<A: Default> Loaded<A> {
    /// A stream that does not exist yet.
    pub fn empty() -> Self {
        Self {
            state: A::default(),
            version: 0,
            position: None,
        }
    }
}

/// Loads `id`, and the idempotency record `key` names if any, in one consistent read.
///
/// A snapshot of another type or schema version is never returned by the store; one that does
/// not deserialize is ignored and the stream replayed from the start (a second read): a snapshot
/// never changes what a load returns.
pub(crate) async fn load<A: Aggregate, S: EventStore>(
    store: &S,
    id: Uuid,
    use_snapshots: bool,
    key: Option<IdempotencyLookup>,
) -> Result<(Loaded<A>, Option<IdempotencyRecord>), CommandError<A::Error>> {
    let filter = use_snapshots.then(|| SnapshotFilter {
        aggregate_type: A::TYPE.to_owned(),
        schema_version: A::SNAPSHOT_VERSION,
    });
    let mut request = LoadRequest {
        aggregate_id: id,
        snapshot: filter,
        idempotency: key,
    };
    let mut stream = store.load_stream(request.clone()).await?;
    let mut loaded = Loaded::empty();
    if of_another_type::<A>(&stream.events) {
        return Ok((loaded, stream.idempotency));
    }
    if let Some(snapshot) = stream.snapshot.take() {
        match serde_json::from_value::<A>(snapshot.state) {
            Ok(state) => {
                loaded.state = state;
                loaded.version = snapshot.version;
            }
            Err(error) => {
                tracing::warn!(%id, %error, "snapshot does not deserialize; replaying the stream");
                request.snapshot = None;
                stream = store.load_stream(request).await?;
            }
        }
    }
    for recorded in &stream.events {
        if recorded.version != loaded.version + 1 {
            return Err(CommandError::Corrupt(format!(
                "stream {id} jumps from version {} to {}",
                loaded.version, recorded.version
            )));
        }
        let event = from_recorded::<A::Event>(recorded).map_err(CommandError::Corrupt)?;
        loaded.state.evolve(&event);
        loaded.version = recorded.version;
        loaded.position = recorded.position;
    }
    Ok((loaded, stream.idempotency))
}

/// A stream of another aggregate type (a customer's `CustomerForgotten` record, say) is not an
/// `A`: it loads as absent, so that it reads as "not found", never as undecodable.
fn of_another_type<A: Aggregate>(events: &[event_store::RecordedEvent]) -> bool {
    events.first().is_some_and(|e| e.aggregate_type != A::TYPE)
}

/// Which past state of a stream to rebuild ([`load_as_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// After the event with this version (1 = as created).
    Version(u64),
    /// After every event recorded at or before this time.
    Time(chrono::DateTime<chrono::Utc>),
}

/// The state of `id` as it was at `as_of`, folded from its events (snapshots hold only the
/// latest state, so they are no help). Version 0 when the stream had no event by then; a
/// [`AsOf::Version`] beyond the stream stops at its last event.
pub(crate) async fn load_as_of<A: Aggregate, S: EventStore>(
    store: &S,
    id: Uuid,
    as_of: AsOf,
) -> Result<Loaded<A>, CommandError<A::Error>> {
    let events = store.load_events(id).await?;
    let mut loaded = Loaded::<A>::empty();
    if of_another_type::<A>(&events) {
        return Ok(loaded);
    }
    for recorded in events.iter().take_while(|e| match as_of {
        AsOf::Version(version) => e.version <= version,
        AsOf::Time(at) => e.recorded_at <= at,
    }) {
        if recorded.version != loaded.version + 1 {
            return Err(CommandError::Corrupt(format!(
                "stream {id} jumps from version {} to {}",
                loaded.version, recorded.version
            )));
        }
        let event = from_recorded::<A::Event>(recorded).map_err(CommandError::Corrupt)?;
        loaded.state.evolve(&event);
        loaded.version = recorded.version;
        loaded.position = recorded.position;
    }
    Ok(loaded)
}
