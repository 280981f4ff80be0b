//! A worker per endpoint: the supervisor lists the endpoints (every few seconds, and at once
//! when this instance's API changed one) and starts a worker for each new one. A worker stops by
//! itself when its endpoint is gone; every worker is woken when anything changed, so a pause,
//! a replay or a delete takes effect at once on this instance and within the poll elsewhere.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use read_model::Dialect;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::worker::{Shared, Worker};

/// How often the endpoints are listed without a wake-up (another instance's registration).
const RESCAN: Duration = Duration::from_secs(2);

pub(crate) async fn run<D: Dialect>(
    shared: Arc<Shared<D>>,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut workers: HashMap<Uuid, (Arc<Notify>, JoinHandle<()>)> = HashMap::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        workers.retain(|_, (_, handle)| !handle.is_finished());
        match shared.table.list().await {
            Ok(endpoints) => {
                for endpoint in endpoints {
                    workers.entry(endpoint.id).or_insert_with(|| {
                        let notify = Arc::new(Notify::new());
                        let worker = Worker::new(
                            endpoint.id,
                            shared.clone(),
                            notify.clone(),
                            shutdown.clone(),
                        );
                        (notify, tokio::spawn(worker.run()))
                    });
                }
            }
            Err(error) => tracing::warn!(%error, "cannot list the webhook endpoints; retrying"),
        }
        metrics::gauge!("webhook_workers").set(workers.len() as f64);
        tokio::select! {
            () = wake.notified() => {
                for (notify, _) in workers.values() {
                    notify.notify_one();
                }
            }
            () = tokio::time::sleep(RESCAN) => {}
            _ = shutdown.changed() => {}
        }
    }
    // Let the workers release their leases, so that another instance takes over at once.
    for (_, (notify, handle)) in workers {
        notify.notify_one();
        let _ = tokio::time::timeout(Duration::from_secs(2), handle).await;
    }
}
