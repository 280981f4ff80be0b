//! Command load for the multi-instance tests: orders created against whichever instances are up,
//! every acknowledged one recorded, so that a test can check none of them was lost.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Creates orders (as staff, for a new customer each) round robin over the ports in `up`, one
/// every `pause`, until stopped; a test changes `up` as it kills and restarts instances.
pub struct CreateLoad {
    /// The ports of the instances to send to.
    pub up: Arc<Mutex<Vec<u16>>>,
    acknowledged: Arc<Mutex<Vec<Uuid>>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl CreateLoad {
    /// Starts the load on the current runtime.
    pub fn start(ports: Vec<u16>, staff_token: String, pause: Duration) -> Self {
        let up = Arc::new(Mutex::new(ports));
        let acknowledged: Arc<Mutex<Vec<Uuid>>> = Arc::default();
        let (stop, stopped) = watch::channel(false);
        let task = {
            let (up, acknowledged) = (up.clone(), acknowledged.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(2))
                    .build()
                    .expect("an HTTP client");
                let mut n = 0usize;
                while !*stopped.borrow() {
                    let ports = up.lock().expect("not poisoned").clone();
                    if let Some(port) = ports.get(n % ports.len().max(1)) {
                        n += 1;
                        if let Some(id) = create(&client, *port, &staff_token).await {
                            acknowledged.lock().expect("not poisoned").push(id);
                        }
                    }
                    tokio::time::sleep(pause).await;
                }
            })
        };
        Self {
            up,
            acknowledged,
            stop,
            task,
        }
    }

    /// The orders acknowledged so far.
    pub fn acknowledged(&self) -> Vec<Uuid> {
        self.acknowledged.lock().expect("not poisoned").clone()
    }

    /// Stops the load; every order it got acknowledged.
    pub async fn stop(self) -> Vec<Uuid> {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        self.acknowledged.lock().expect("not poisoned").clone()
    }
}

/// Creates one order on the instance at `port`; its id if the service acknowledged it (201).
async fn create(client: &reqwest::Client, port: u16, token: &str) -> Option<Uuid> {
    let body = serde_json::json!({
        "customer_id": Uuid::now_v7(),
        "currency": "EUR",
        "items": [{"product_id": Uuid::now_v7(), "sku": "SKU-1", "quantity": 1, "unit_price": 100}],
    });
    let response = client
        .post(format!("http://127.0.0.1:{port}/orders"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .ok()?;
    if response.status() != reqwest::StatusCode::CREATED {
        return None;
    }
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.ok()?).ok()?;
    body["id"].as_str()?.parse().ok()
}
