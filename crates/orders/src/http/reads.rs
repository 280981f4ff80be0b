//! Where a read-model query is answered: the primary's read models, or a hot standby's
//! replicated copy of them (`DATABASE_READ_URL`, ADR 0021), and the fallback from one to the
//! other. Which state a caller needs is decided in `queries.rs`; this file only finds a server
//! that has it and runs the query there.

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderValue;
use axum::response::Response;
use order_views::ReadModels;
use read_model::{Dialect, PgDialect};
use store::replicas::Replica;

use super::{AppState, Problem};
use crate::auth::{Principal, Role};

/// Where a query is answered, and which state of the read model that is.
pub(super) struct Read {
    /// The hot standby that answers (`DATABASE_READ_URL`), or `None` for the primary.
    pub(super) standby: Option<Arc<Replica>>,
    /// The generation of the read model's tables.
    pub(super) generation: i32,
    /// Its checkpoint: the answer includes every event up to this feed position.
    pub(super) position: u64,
}

/// How often a query with a consistency token looks at a standby's replicated checkpoint while
/// it waits for the standby to replay the write.
const STANDBY_POLL: Duration = Duration::from_millis(5);

/// Longest a standby may take over one statement (a checkpoint read or a query) before it is
/// taken out of rotation and the primary answers: a hung standby costs a caller at most this.
const STANDBY_TIMEOUT: Duration = Duration::from_secs(1);

/// The primary's read model `which` at its checkpoint.
pub(super) async fn current(state: &AppState, which: &str) -> Result<Read, Problem> {
    let model = state.projections.models.named(which);
    model
        .ok_or_else(Problem::unavailable)?
        .checkpoint()
        .await
        .map_err(read_model_down)?
        .map(|c| Read {
            standby: None,
            generation: c.generation,
            position: c.position,
        })
        .ok_or_else(Problem::unavailable)
}

/// A standby whose lag is within `ORDERS_READ_MAX_LAG`, at its replicated checkpoint.
pub(super) async fn on_fresh_standby(state: &AppState, which: &str) -> Option<Read> {
    let replica = state.replicas.as_ref()?.fresh()?;
    let (generation, position) = standby_checkpoint(&replica, which).await?;
    Some(Read {
        standby: Some(replica),
        generation,
        position,
    })
}

/// A standby once its replicated checkpoint has reached `position`, if that happens within
/// `ORDERS_READ_STANDBY_WAIT`. The checkpoint commits with the rows it covers and replicates with
/// them, so a standby at that checkpoint holds every write up to `position`: never stale.
pub(super) async fn on_standby_at(state: &AppState, which: &str, position: u64) -> Option<Read> {
    let replica = state.replicas.as_ref()?.any()?;
    let deadline = tokio::time::Instant::now() + state.standby_wait;
    loop {
        let (generation, reached) = standby_checkpoint(&replica, which).await?;
        if reached >= position {
            return Some(Read {
                standby: Some(replica),
                generation,
                position: reached,
            });
        }
        if tokio::time::Instant::now() >= deadline {
            metrics::counter!("read_standby_fallbacks_total", "reason" => "behind").increment(1);
            return None;
        }
        tokio::time::sleep(STANDBY_POLL).await;
    }
}

/// `which`'s checkpoint as `replica` has replayed it; a failure takes the standby out of
/// rotation (the caller then reads from the primary).
async fn standby_checkpoint(replica: &Replica, which: &str) -> Option<(i32, u64)> {
    match PgDialect::new(replica.pool().clone())
        .checkpoint(which)
        .await
    {
        Ok(checkpoint) => checkpoint.map(|c| (c.generation, c.position)),
        Err(error) => {
            replica.suspend(&format!("reading the checkpoint failed: {error}"));
            metrics::counter!("read_standby_fallbacks_total", "reason" => "error").increment(1);
            None
        }
    }
}

/// Runs `query` on the read models `read` names. A standby that fails it (down, hung past
/// [`STANDBY_TIMEOUT`], or the query cancelled for a conflict with replay) leaves rotation, and the primary answers instead, at its
/// own checkpoint, which is never behind a standby's: the caller sees no error.
pub(super) async fn answer<T, F>(
    state: &AppState,
    which: &'static str,
    read: Read,
    query: impl Fn(ReadModels, i32) -> F,
) -> Result<(T, Read), Problem>
where
    F: Future<Output = sqlx::Result<T>>,
{
    let model = which;
    let read = match &read.standby {
        Some(replica) => {
            let views = state.projections.models.on_standby(replica.pool().clone());
            let answered = tokio::time::timeout(STANDBY_TIMEOUT, query(views, read.generation))
                .await
                .unwrap_or_else(|_| {
                    Err(sqlx::Error::Protocol(format!(
                        "no answer within {STANDBY_TIMEOUT:?}"
                    )))
                });
            match answered {
                Ok(answer) => {
                    metrics::counter!("read_queries_total", "read_model" => model, "server" => "standby")
                        .increment(1);
                    return Ok((answer, read));
                }
                Err(error) => {
                    replica.suspend(&format!("a query failed: {error}"));
                    metrics::counter!("read_standby_fallbacks_total", "reason" => "error")
                        .increment(1);
                    current(state, which).await?
                }
            }
        }
        None => read,
    };
    let answer = query(state.projections.models.clone(), read.generation)
        .await
        .map_err(read_model_down)?;
    metrics::counter!("read_queries_total", "read_model" => model, "server" => "primary")
        .increment(1);
    Ok((answer, read))
}

/// Tells staff which server answered (`X-Served-By: primary|standby`); customers are not shown
/// the deployment.
pub(super) fn served_by(mut response: Response, read: &Read, principal: &Principal) -> Response {
    if principal.role() == Role::Staff {
        let server = if read.standby.is_some() {
            "standby"
        } else {
            "primary"
        };
        response
            .headers_mut()
            .insert("x-served-by", HeaderValue::from_static(server));
    }
    response
}

/// A read model that cannot be read: 503, the cause in the log.
pub(super) fn read_model_down(error: impl std::fmt::Display) -> Problem {
    tracing::error!(%error, "read model query failed");
    Problem::unavailable()
}
