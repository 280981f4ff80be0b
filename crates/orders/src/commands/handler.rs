//! [`CommandHandler`]: decide and append, with optimistic concurrency.

use domain::Aggregate;
use event_store::{
    AppendRequest, EventStore, EventStoreError, ExpectedVersion, IdempotencyLookup,
    IdempotencyRecord, Snapshot,
};
use serde_json::Value;
use uuid::Uuid;

use super::codec::to_new_event;
use super::key_locks::KeyLocks;
use super::load::{Loaded, load};
use super::state_cache::StateCache;
use super::{AccessDenied, CommandContext, CommandError};
use personal_data::{KeyRing, Sealable};

/// Tuning of command handling.
#[derive(Debug, Clone, Copy)]
pub struct HandlerConfig {
    /// Save a snapshot each time a stream passes a multiple of this many events; 0 disables.
    pub snapshot_every: u64,
    /// How many times a command is decided again after losing a race (when no version was pinned).
    pub max_attempts: usize,
    /// How many aggregate states to keep in memory so that a later command on the same aggregate
    /// skips its load (0: always load). See ADR 0011.
    pub state_cache: usize,
}

impl Default for HandlerConfig {
    fn default() -> Self {
        // Orders have a handful of events; snapshots pay off only for long streams, so keep the
        // threshold high enough that an ordinary order never writes one.
        Self {
            snapshot_every: 100,
            max_attempts: 5,
            // An order's state is a few hundred bytes: 10 000 of them are a few MiB.
            state_cache: 10_000,
        }
    }
}

/// The result of an accepted command.
#[derive(Debug, Clone)]
pub struct Outcome<A> {
    /// The state after the command.
    pub state: A,
    /// The stream version after the command.
    pub version: u64,
    /// Global position of the last event written, when the store numbers events at commit
    /// (SQLite); `None` on PostgreSQL, whose feed numbers it a moment later. The command never
    /// waits for it: read-your-writes goes by the stream version (see ADR 0010).
    pub position: Option<u64>,
    /// The response stored with the idempotency key, when one was given.
    pub response: Option<Value>,
    /// True when an earlier identical append was found and nothing was written.
    pub deduplicated: bool,
}

/// Executes commands against aggregates in an [`EventStore`].
#[derive(Debug, Clone)]
pub struct CommandHandler<S> {
    store: S,
    config: HandlerConfig,
    states: StateCache,
    keys: KeyLocks,
    personal: Option<KeyRing>,
}

impl<S: EventStore> CommandHandler<S> {
    /// A handler over `store`.
    pub fn new(store: S, config: HandlerConfig) -> Self {
        Self {
            store,
            config,
            states: StateCache::new(config.state_cache),
            keys: KeyLocks::new(),
            personal: None,
        }
    }

    /// Seals personal data with `ring` before anything is applied or stored (the service
    /// always does; a handler without a ring stores personal values in plain form, for tests and
    /// the encryption-off benchmark).
    pub fn with_key_ring(mut self, ring: KeyRing) -> Self {
        self.personal = Some(ring);
        self
    }

    /// The key ring, when personal data is sealed.
    pub fn key_ring(&self) -> Option<&KeyRing> {
        self.personal.as_ref()
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Loads aggregate `id` (snapshot, then the events after it).
    pub async fn load<A: Aggregate>(&self, id: Uuid) -> Result<Loaded<A>, CommandError<A::Error>> {
        let (loaded, _) = load(&self.store, id, self.config.snapshot_every > 0, None).await?;
        Ok(loaded)
    }

    /// Aggregate `id` as it was at `as_of` (time travel), folded from its events.
    pub async fn load_as_of<A: Aggregate>(
        &self,
        id: Uuid,
        as_of: super::AsOf,
    ) -> Result<Loaded<A>, CommandError<A::Error>> {
        super::load::load_as_of(&self.store, id, as_of).await
    }

    /// Decides `command` against aggregate `id` and appends the resulting events.
    ///
    /// `guard` sees the loaded state first and may refuse (authorisation). `render` turns the new
    /// state and version into the response stored with the idempotency key.
    #[tracing::instrument(level = "info", skip_all, fields(aggregate = A::TYPE, %id, correlation_id = %context.correlation_id))]
    pub async fn execute<A: Sealable>(
        &self,
        id: Uuid,
        command: A::Command,
        context: &CommandContext,
        guard: impl Fn(&A) -> Result<(), AccessDenied> + Send + Sync,
        render: impl Fn(&A, u64) -> Value + Send + Sync,
    ) -> Result<Outcome<A>, CommandError<A::Error>> {
        // A retry overlapping its original waits here, then finds the original's record.
        let _key_held = match &context.idempotency {
            Some(key) => Some(self.keys.lock(&key.scope, &key.key).await),
            None => None,
        };
        let mut attempts = 0;
        loop {
            attempts += 1;
            // A state this process produced may stand in for the load on the first attempt of a
            // command that pins nothing: the append's expected version catches a stale one.
            let cached = (attempts == 1
                && !context.new_stream
                && context.idempotency.is_none()
                && context.expected_version.is_none())
            .then(|| self.states.get::<A>(id))
            .flatten();
            let from_cache = cached.is_some();
            let Loaded {
                mut state,
                version,
                position,
            } = if let Some((state, version)) = cached {
                Loaded {
                    state,
                    version,
                    position: None,
                }
            } else if context.new_stream && attempts == 1 {
                // A fresh id: nothing to load. An earlier use of the key surfaces at the append.
                Loaded::empty()
            } else {
                // The key is read with the stream, before any rule is checked: a retry of an
                // applied command is answered from its record, never refused by the rules.
                let lookup = context.idempotency.as_ref().map(|key| IdempotencyLookup {
                    scope: key.scope.clone(),
                    key: key.key.clone(),
                });
                let (loaded, record) =
                    load(&self.store, id, self.config.snapshot_every > 0, lookup).await?;
                if let Some(record) = record {
                    return Err(CommandError::IdempotencyKeyUsed(Some(Box::new(record))));
                }
                loaded
            };
            guard(&state).map_err(CommandError::Denied)?;
            if let Some(expected) = context.expected_version
                && expected != version
            {
                return Err(CommandError::PreconditionFailed {
                    expected,
                    actual: version,
                });
            }
            let mut events = match state.decide(&command) {
                Ok(events) if !(from_cache && events.is_empty()) => events,
                // Never answer "no" or "nothing to do" from memory: check against the store.
                Ok(_) | Err(_) if from_cache => {
                    self.states.forget::<A>(id);
                    continue;
                }
                Ok(events) => events,
                Err(error) => return Err(CommandError::Rejected(error)),
            };
            if events.is_empty() {
                return Ok(Outcome {
                    state,
                    version,
                    position,
                    response: None,
                    deduplicated: false,
                });
            }
            // Sealed before it is applied: the state, the response and every store see ciphertext.
            if let Some(ring) = &self.personal {
                ring.seal(id, &state, &mut events)
                    .await
                    .map_err(CommandError::PersonalData)?;
            }
            let new_events = events
                .iter()
                .map(|e| to_new_event(A::TYPE, e, context))
                .collect();
            events.iter().for_each(|e| state.evolve(e));
            let new_version = version + events.len() as u64;
            let response = context
                .idempotency
                .as_ref()
                .map(|_| render(&state, new_version));
            let request = AppendRequest {
                aggregate_id: id,
                expected: ExpectedVersion::from(version),
                events: new_events,
                idempotency: context.idempotency.as_ref().zip(response.clone()).map(
                    |(key, response)| IdempotencyRecord {
                        scope: key.scope.clone(),
                        key: key.key.clone(),
                        request_hash: key.request_hash.clone(),
                        response,
                    },
                ),
            };
            match self.store.append(request).await {
                Ok(appended) => {
                    if appended.deduplicated {
                        self.states.forget::<A>(id);
                    } else {
                        self.states.put(id, &state, appended.last_version);
                    }
                    self.maybe_snapshot(id, &state, version, appended.last_version)
                        .await;
                    let position = appended.last_position;
                    tracing::info!(
                        version = appended.last_version,
                        position,
                        "command accepted"
                    );
                    return Ok(Outcome {
                        state,
                        version: appended.last_version,
                        position,
                        response,
                        deduplicated: appended.deduplicated,
                    });
                }
                Err(EventStoreError::Conflict { actual, .. }) => {
                    self.states.forget::<A>(id);
                    metrics::counter!("command_conflicts_total", "aggregate" => A::TYPE)
                        .increment(1);
                    // A concurrent request with the same idempotency key (on another instance)
                    // may be the one that won: then this is a retry to be answered from its
                    // record, not refused or decided again.
                    if let Some(key) = &context.idempotency
                        && let Some(record) = self
                            .store
                            .find_idempotency_record(&key.scope, &key.key)
                            .await?
                    {
                        return Err(CommandError::IdempotencyKeyUsed(Some(Box::new(record))));
                    }
                    if let Some(expected) = context.expected_version {
                        return Err(CommandError::PreconditionFailed { expected, actual });
                    }
                    if attempts >= self.config.max_attempts {
                        return Err(CommandError::Conflict { attempts });
                    }
                    tracing::debug!(attempts, actual, "lost a race; deciding again");
                    metrics::counter!("command_retries_total", "aggregate" => A::TYPE).increment(1);
                }
                Err(other) => {
                    self.states.forget::<A>(id);
                    return Err(other.into());
                }
            }
        }
    }

    /// Saves a snapshot when the append crossed a multiple of `snapshot_every`. Best effort: a
    /// failed snapshot only costs a longer replay next time.
    async fn maybe_snapshot<A: Aggregate>(&self, id: Uuid, state: &A, before: u64, after: u64) {
        let every = self.config.snapshot_every;
        if every == 0 || before / every == after / every {
            return;
        }
        let Ok(state) = serde_json::to_value(state) else {
            return;
        };
        let snapshot = Snapshot {
            aggregate_id: id,
            aggregate_type: A::TYPE.to_owned(),
            version: after,
            schema_version: A::SNAPSHOT_VERSION,
            state,
        };
        if let Err(error) = self.store.save_snapshot(snapshot).await {
            tracing::warn!(%id, %error, "saving a snapshot failed");
        }
    }
}
