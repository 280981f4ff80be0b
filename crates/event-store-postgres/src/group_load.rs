//! Group loads: the loads of concurrent commands share one statement.
//!
//! The counterpart of [`crate::group_commit`] for reads. A command's load is queued to a loader
//! task that takes whatever loads are waiting (no timer: a lone load goes out at once) and runs
//! them as one [`crate::load`] statement. Each load still reads one consistent snapshot of the
//! database, with the plan of its own, index-only lookups; sharing the statement only saves the
//! per-statement work (a round trip, parse, bind, executor start-up) that dominates a load of a
//! few rows.

use std::sync::Arc;

use event_store::{EventStoreError, LoadRequest, Result, StreamLoad};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::connections::{CommandConnections, release_after};
use crate::errors::{unavailable, unavailable_because};
use crate::load::load_streams;

/// Most loads in one statement.
const MAX_BATCH_LOADS: usize = 128;

/// Load statements running at once, each on its own connection: one runs while the next fills.
const IN_FLIGHT: usize = 2;

struct Pending {
    request: LoadRequest,
    reply: oneshot::Sender<Result<StreamLoad>>,
}

/// The handle loads are queued on; dropping every handle stops the loader.
#[derive(Debug, Clone)]
pub(crate) struct GroupLoad {
    queue: mpsc::UnboundedSender<Pending>,
}

impl GroupLoad {
    /// Starts the loader on the current runtime.
    pub(crate) fn spawn(connections: CommandConnections) -> Self {
        let (queue, receiver) = mpsc::unbounded_channel();
        tokio::spawn(loader(connections, receiver));
        Self { queue }
    }

    /// Queues `request` and waits for its answer.
    pub(crate) async fn load(&self, request: LoadRequest) -> Result<StreamLoad> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { request, reply })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> EventStoreError {
    EventStoreError::unavailable(std::io::Error::other(
        "the group-load task has stopped (runtime shutting down)",
    ))
}

async fn loader(connections: CommandConnections, mut queue: mpsc::UnboundedReceiver<Pending>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = queue.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_LOADS {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let connections = connections.clone();
        tokio::spawn(async move {
            run(&connections, batch).await;
            drop(slot);
        });
    }
}

async fn run(connections: &CommandConnections, batch: Vec<Pending>) {
    metrics::histogram!("event_store_group_load_loads").record(batch.len() as f64);
    let mut connection = match connections.get().await {
        Ok(connection) => connection,
        Err(error) => {
            let why = error.to_string();
            for pending in batch {
                let _ = pending.reply.send(Err(unavailable_because(&why)));
            }
            return;
        }
    };
    let requests: Vec<&LoadRequest> = batch.iter().map(|p| &p.request).collect();
    match load_streams(&mut connection, &requests).await {
        Ok(answers) => {
            release_after(connection, None);
            for (pending, answer) in batch.into_iter().zip(answers) {
                let _ = pending.reply.send(answer);
            }
        }
        Err(error) => {
            let why = error.to_string();
            release_after(connection, Some(&error));
            drop(unavailable(error)); // logs it once for the batch
            for pending in batch {
                let _ = pending.reply.send(Err(unavailable_because(&why)));
            }
        }
    }
}
