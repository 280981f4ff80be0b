//! Group commit: the appends of concurrent commands share one statement and one commit.
//!
//! Appends are queued to a writer task. It takes whatever is waiting (there is no timer: a lone
//! append goes out at once) and sends it as one statement, [`BATCH_SQL`], which checks every
//! append's expected version against the stream as the statement sees it and inserts the events
//! of those that pass. One WAL flush then covers them all, which is how commands can go faster
//! than single-row inserts that commit one by one.
//!
//! Each append keeps its own outcome:
//! - an append whose version check or idempotency key fails inserts nothing, and is then run on
//!   its own by [`append::append`], which explains the refusal (conflict, retry of an earlier
//!   append, key reused) exactly as without group commit;
//! - if the statement fails as a whole (a unique violation from a writer of another process, a
//!   duplicate event id), nothing of it committed, and every append of the batch is run on its
//!   own;
//! - two appends to one stream, or with one idempotency key, never share a batch: the second
//!   waits for the next one;
//! - `Any`/`StreamExists` appends never come here: they take turns on the stream's lock
//!   ([`append::takes_turns`]).
//!
//! Several batches may be in flight at once ([`GroupCommitOptions::in_flight`]), each on its own
//! connection, so that a batch is being filled while the previous one commits.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use event_store::{AppendRequest, AppendResult, EventStoreError, Result};
use sqlx::Row;
use sqlx::postgres::PgConnection;
use tokio::sync::{Semaphore, mpsc, oneshot};
use uuid::Uuid;

use crate::append::{self, accepted_range};
use crate::connections::{CommandConnections, release_after};
use crate::errors::{outcome_unknown_because, unavailable, unavailable_because};
use crate::rows::unsigned;

/// Most appends in one batch: beyond this the statement's arrays grow without saving commits.
const MAX_BATCH_APPENDS: usize = 128;
/// Most events in one batch, so that one statement stays quick to plan and to commit.
const MAX_BATCH_EVENTS: usize = 2_000;

/// How the writer batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitOptions {
    /// Batches committing at once, each on its own connection.
    pub in_flight: usize,
}

impl Default for GroupCommitOptions {
    fn default() -> Self {
        // Two: one batch commits while the next fills. More split the queue into smaller batches
        // without adding throughput on a 2-core machine (measured with command-bench).
        Self { in_flight: 2 }
    }
}

/// Checks and inserts a batch of appends in one statement.
///
/// Per append (`$1`–`$8`, one array element each): stream, aggregate type, accepted version range,
/// idempotency scope, key, request hash and response (NULL without a key). Per event (`$9`–`$15`):
/// the append it belongs to (1-based), its index in that append (1-based), id, type, schema
/// version, payload, metadata. Returns, per append, the version the statement saw and how many
/// events it inserted (all or none).
pub(crate) const BATCH_SQL: &str = r#"
WITH req AS (
    SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::int8[], $4::int8[],
                         $5::text[], $6::text[], $7::text[], $8::jsonb[])
        WITH ORDINALITY AS r(aggregate_id, aggregate_type, low, high,
                             idem_scope, idem_key, idem_hash, idem_response, ix)
), current_version AS (
    SELECT r.*, (SELECT COALESCE(MAX(e.version), 0) FROM events e
                 WHERE e.aggregate_id = r.aggregate_id) AS v
    FROM req r
), keys AS (
    INSERT INTO idempotency_keys (scope, key, request_hash, response)
    SELECT idem_scope, idem_key, idem_hash, idem_response FROM current_version
    WHERE v BETWEEN low AND high AND idem_scope IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING scope, key
), accepted AS (
    SELECT c.* FROM current_version c
    WHERE c.v BETWEEN c.low AND c.high
      AND (c.idem_scope IS NULL
           OR EXISTS (SELECT 1 FROM keys k WHERE k.scope = c.idem_scope AND k.key = c.idem_key))
), inserted AS (
    INSERT INTO events (event_id, aggregate_id, aggregate_type, version, event_type,
                        schema_version, payload, metadata)
    SELECT e.event_id, a.aggregate_id, a.aggregate_type, a.v + e.n, e.event_type,
           e.schema_version, e.payload, e.metadata
    FROM UNNEST($9::int8[], $10::int8[], $11::uuid[], $12::text[], $13::int4[],
                $14::jsonb[], $15::jsonb[])
             WITH ORDINALITY AS e(ix, n, event_id, event_type, schema_version, payload, metadata, ord)
    JOIN accepted a ON a.ix = e.ix
    ORDER BY e.ord -- seq (and so feed order) follows version order within each append
    RETURNING seq, aggregate_id
), queued AS (
    INSERT INTO feed_queue (seq) SELECT seq FROM inserted
)
SELECT c.ix, c.v,
       (SELECT COUNT(*) FROM inserted i WHERE i.aggregate_id = c.aggregate_id) AS inserted
FROM current_version c
ORDER BY c.ix
"#;

/// An append waiting for its batch.
struct Pending {
    request: AppendRequest,
    reply: oneshot::Sender<Result<AppendResult>>,
}

/// The handle appends are queued on; dropping every handle stops the writer.
#[derive(Debug, Clone)]
pub(crate) struct GroupCommit {
    queue: mpsc::UnboundedSender<Pending>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("aggregate_id", &self.request.aggregate_id)
            .finish_non_exhaustive()
    }
}

impl GroupCommit {
    /// Starts the writer on the current runtime.
    pub(crate) fn spawn(connections: CommandConnections, options: GroupCommitOptions) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        tokio::spawn(writer(connections, receiver, options));
        Self { queue }
    }

    /// Queues `request` and waits for its outcome. The writer runs the append to its end even if
    /// this future is dropped, so an abandoned command is either committed or not, never half.
    pub(crate) async fn append(&self, request: AppendRequest) -> Result<AppendResult> {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send(Pending { request, reply })
            .map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

fn stopped() -> EventStoreError {
    EventStoreError::unavailable(std::io::Error::other(
        "the group-commit writer has stopped (runtime shutting down)",
    ))
}

async fn writer(
    connections: CommandConnections,
    mut queue: mpsc::UnboundedReceiver<Pending>,
    options: GroupCommitOptions,
) {
    let slots = Arc::new(Semaphore::new(options.in_flight.max(1)));
    // Appends that could not join the last batch (their stream or key was in it), oldest first.
    let mut carried: VecDeque<Pending> = VecDeque::new();
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let first = match carried.pop_front() {
            Some(pending) => pending,
            None => match queue.recv().await {
                Some(pending) => pending,
                None => return,
            },
        };
        let mut batch = Batch::new(first);
        let mut deferred = VecDeque::new();
        while !batch.is_full() {
            let Some(next) = carried.pop_front().or_else(|| queue.try_recv().ok()) else {
                break;
            };
            if let Some(next) = batch.try_add(next) {
                deferred.push_back(next);
            }
        }
        deferred.append(&mut carried);
        carried = deferred;
        let connections = connections.clone();
        tokio::spawn(async move {
            batch.commit(&connections).await;
            drop(slot);
        });
    }
}

/// Appends that may share a statement: distinct streams, distinct idempotency keys.
struct Batch {
    pending: Vec<Pending>,
    events: usize,
    streams: HashSet<Uuid>,
    keys: HashSet<(String, String)>,
}

impl Batch {
    fn new(first: Pending) -> Self {
        let mut batch = Self {
            pending: Vec::new(),
            events: 0,
            streams: HashSet::new(),
            keys: HashSet::new(),
        };
        batch.add(first);
        batch
    }

    fn is_full(&self) -> bool {
        self.pending.len() >= MAX_BATCH_APPENDS || self.events >= MAX_BATCH_EVENTS
    }

    /// Adds `pending` unless it may not share this batch, in which case it is handed back.
    fn try_add(&mut self, pending: Pending) -> Option<Pending> {
        let request = &pending.request;
        let key_taken = request
            .idempotency
            .as_ref()
            .is_some_and(|r| self.keys.contains(&(r.scope.clone(), r.key.clone())));
        if self.streams.contains(&request.aggregate_id)
            || key_taken
            || self.events + request.events.len() > MAX_BATCH_EVENTS
        {
            return Some(pending);
        }
        self.add(pending);
        None
    }

    fn add(&mut self, pending: Pending) {
        self.events += pending.request.events.len();
        self.streams.insert(pending.request.aggregate_id);
        if let Some(record) = &pending.request.idempotency {
            self.keys.insert((record.scope.clone(), record.key.clone()));
        }
        self.pending.push(pending);
    }

    /// Commits the batch and answers every append in it.
    async fn commit(self, connections: &CommandConnections) {
        metrics::histogram!("event_store_group_commit_appends").record(self.pending.len() as f64);
        let mut connection = match connections.get().await {
            Ok(connection) => connection,
            Err(error) => {
                let why = error.to_string();
                for pending in self.pending {
                    let _ = pending.reply.send(Err(unavailable_because(&why)));
                }
                return;
            }
        };
        // Answers are sent after the connection is back in the pool, so that the caller's next
        // statement can reuse it (and its prepared statements).
        let mut answers: Vec<(oneshot::Sender<Result<AppendResult>>, Result<AppendResult>)> =
            Vec::with_capacity(self.pending.len());
        let alone: Vec<Pending> = if self.pending.len() == 1 {
            self.pending
        } else {
            match run_batch(&mut connection, &self.pending).await {
                Ok(outcomes) => {
                    let mut alone = Vec::new();
                    for (pending, outcome) in self.pending.into_iter().zip(outcomes) {
                        match outcome {
                            Some(result) => answers.push((pending.reply, Ok(result))),
                            None => alone.push(pending),
                        }
                    }
                    alone
                }
                Err(error) if error.as_database_error().is_none() => {
                    // The connection broke while the batch's statement was out: it may have
                    // committed. Every append of the batch gets the same unknown outcome.
                    let why = error.to_string();
                    drop(unavailable(error)); // logs it once for the batch
                    drop(deadpool::managed::Object::take(connection));
                    for pending in self.pending {
                        let _ = pending.reply.send(Err(outcome_unknown_because(&why)));
                    }
                    return;
                }
                Err(error) => {
                    tracing::debug!(%error, appends = self.pending.len(), "batch refused as a whole; appending one by one");
                    self.pending
                }
            }
        };
        let mut broken = false;
        for pending in alone {
            let result = append::append(&mut connection, &pending.request).await;
            broken |= matches!(
                result,
                Err(EventStoreError::Unavailable(_) | EventStoreError::OutcomeUnknown(_))
            );
            answers.push((pending.reply, result));
        }
        if broken {
            drop(deadpool::managed::Object::take(connection));
        } else {
            release_after(connection, None);
        }
        for (reply, result) in answers {
            let _ = reply.send(result);
        }
    }
}

/// Runs [`BATCH_SQL`]; per append, its result if it committed, `None` if it must run alone.
async fn run_batch(
    connection: &mut PgConnection,
    pending: &[Pending],
) -> std::result::Result<Vec<Option<AppendResult>>, sqlx::Error> {
    let n = pending.len();
    let mut streams = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    let (mut lows, mut highs) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut scopes, mut keys, mut hashes, mut responses) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut owner, mut index, mut ids, mut event_types, mut schemas, mut payloads, mut metadata) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    for (ix, p) in pending.iter().enumerate() {
        let request = &p.request;
        let (low, high) = accepted_range(request.expected);
        streams.push(request.aggregate_id);
        types.push(request.events[0].aggregate_type.as_str());
        lows.push(low);
        highs.push(high);
        let idem = request.idempotency.as_ref();
        scopes.push(idem.map(|r| r.scope.as_str()));
        keys.push(idem.map(|r| r.key.as_str()));
        hashes.push(idem.map(|r| r.request_hash.as_str()));
        responses.push(idem.map(|r| &r.response));
        for (n, event) in request.events.iter().enumerate() {
            owner.push(ix as i64 + 1);
            index.push(n as i64 + 1);
            ids.push(event.event_id);
            event_types.push(event.event_type.as_str());
            schemas.push(i32::try_from(event.schema_version).unwrap_or(i32::MAX));
            payloads.push(&event.payload);
            metadata.push(&event.metadata);
        }
    }
    let rows = sqlx::query(BATCH_SQL)
        .bind(&streams)
        .bind(&types)
        .bind(&lows)
        .bind(&highs)
        .bind(&scopes)
        .bind(&keys)
        .bind(&hashes)
        .bind(&responses)
        .bind(&owner)
        .bind(&index)
        .bind(&ids)
        .bind(&event_types)
        .bind(&schemas)
        .bind(&payloads)
        .bind(&metadata)
        .fetch_all(&mut *connection)
        .await?;
    let mut outcomes = vec![None; n];
    for row in &rows {
        let ix: i64 = row.try_get("ix")?;
        let current: i64 = row.try_get("v")?;
        let inserted: i64 = row.try_get("inserted")?;
        let Some(slot) = usize::try_from(ix - 1)
            .ok()
            .and_then(|i| outcomes.get_mut(i))
        else {
            continue;
        };
        let request = &pending[(ix - 1) as usize].request;
        if inserted > 0 && inserted as usize == request.events.len() {
            let (Ok(current), Ok(inserted)) =
                (unsigned(current, "version"), unsigned(inserted, "inserted"))
            else {
                continue;
            };
            *slot = Some(AppendResult {
                aggregate_id: request.aggregate_id,
                first_version: current + 1,
                last_version: current + inserted,
                last_position: None,
                deduplicated: false,
            });
        }
    }
    Ok(outcomes)
}
