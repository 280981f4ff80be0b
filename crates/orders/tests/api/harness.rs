//! `spawn_app`: the service on a free port with a fresh database, and typed helpers to call it.

use std::net::SocketAddr;
use std::time::Duration;

use common::{DatabaseConfig, ServerConfig};
use orders::app::{AppConfig, Application};
use orders::auth::{JwtKeys, Role};
use orders::cache::CacheConfig;
use orders::commands::HandlerConfig;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Which database the service runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A running service.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub config: AppConfig,
    /// For PostgreSQL: the database URL (tests may sabotage it).
    pub database_url: Option<String>,
    keys: JwtKeys,
    shutdown: watch::Sender<bool>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    _data_dir: tempfile::TempDir,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Like [`spawn_app`], after `customize` had its say on the configuration.
pub async fn spawn_app_with(backend: Backend, customize: impl FnOnce(&mut AppConfig)) -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    let database_url = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(test_support::postgres::fresh_database_url().await),
    };
    let config = AppConfig {
        database: DatabaseConfig {
            database_url: database_url.clone(),
            data_dir: data_dir.path().to_path_buf(),
            max_connections: 8,
            group_commit: true,
        },
        server: ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            request_timeout: Duration::from_secs(30),
            body_limit: 64 * 1024,
            shutdown_grace: Duration::from_secs(5),
            header_read_timeout: Duration::from_secs(10),
            max_http_connections: 1024,
        },
        jwt_secret: Some("test-secret-that-is-long-enough-for-hs256".into()),
        master_key: None,
        token_max_ttl: orders::auth::DEFAULT_MAX_TOKEN_TTL,
        handler: HandlerConfig {
            snapshot_every: 3,
            max_attempts: 5,
            ..HandlerConfig::default()
        },
        idempotency_retention: Duration::from_secs(24 * 3600),
        redis_url: Some(test_support::redis::url()),
        cache: CacheConfig {
            prefix: test_support::redis::unique_prefix(),
            timeout: Duration::from_millis(100),
            ttl: Duration::from_secs(60),
        },
        read_replicas: Default::default(),
        read_wait: Duration::from_secs(3),
        projection_on_error: order_views::OnError::Park,
        instance_id: orders::app::default_instance_id(),
        kafka: Default::default(),
        webhooks: Default::default(),
    };
    let mut config = config;
    customize(&mut config);
    start(config, database_url, data_dir).await
}

async fn start(
    config: AppConfig,
    database_url: Option<String>,
    data_dir: tempfile::TempDir,
) -> TestApp {
    let app = Application::build(config.clone()).await.unwrap();
    let addr = app.local_addr();
    let keys = app.keys();
    let shutdown = app.shutdown_handle();
    let server = tokio::spawn(app.run());
    TestApp {
        addr,
        client: reqwest::Client::new(),
        config,
        database_url,
        keys,
        shutdown,
        server: Some(server),
        _data_dir: data_dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn staff(&self) -> String {
        self.keys
            .issue("ops", Role::Staff, Duration::from_secs(600))
            .unwrap()
    }

    pub fn customer(&self, id: Uuid) -> String {
        self.keys
            .issue(&id.to_string(), Role::Customer, Duration::from_secs(600))
            .unwrap()
    }

    /// Stops the service gracefully and starts it again on the same database.
    pub async fn restart(self) -> TestApp {
        self.restart_with(|_| {}).await
    }

    /// [`Self::restart`] with a changed configuration.
    pub async fn restart_with(mut self, customize: impl FnOnce(&mut AppConfig)) -> TestApp {
        let _ = self.shutdown.send(true);
        self.server.take().unwrap().await.unwrap().unwrap();
        let mut config = self.config.clone();
        customize(&mut config);
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        let data_dir = std::mem::replace(&mut self._data_dir, tempfile::tempdir().unwrap());
        start(config, self.database_url.clone(), data_dir).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Option<Value>) -> Response {
        let mut request = self.client.post(self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    /// The status of an unauthenticated `GET` (health checks, docs).
    pub async fn status_of(&self, path: &str) -> StatusCode {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .status()
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Creates an order for `customer` and returns its id.
    pub async fn create_order(&self, customer: Uuid) -> Uuid {
        let response = self
            .post("/orders", &self.customer(customer), Some(order_body()))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().parse().unwrap()
    }

    /// The global position of the write whose response body is `written`: its `position` when
    /// the store numbered it at commit (SQLite), otherwise read from the order's events once the
    /// feed has numbered it (PostgreSQL numbers a moment after the commit; generous deadline).
    pub async fn feed_position(&self, written: &Value) -> u64 {
        if let Some(position) = written["position"].as_u64() {
            return position;
        }
        let (id, version) = (
            written["id"].as_str().unwrap(),
            written["version"].as_u64().unwrap(),
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let page = self
                .query(
                    &format!("/orders/{id}/events?from_version={version}&limit=1"),
                    &self.staff(),
                )
                .await;
            if let Some(position) = page["events"][0]["position"].as_u64() {
                return position;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{id}:{version} was never numbered"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// The read model of the service's database (a second handle on it).
    pub async fn read_model(&self) -> order_views::ReadModel {
        let store = store::Store::open(&self.config.database).await.unwrap();
        order_views::ReadModel::for_store(&store)
    }

    /// `GET` with query parameters, as staff unless a token is given.
    pub async fn query(&self, path: &str, token: &str) -> Value {
        let response = self.get(path, token).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.json().await.unwrap()
    }

    /// The event types of an order's stream, read as staff.
    pub async fn event_types(&self, order: Uuid) -> Vec<String> {
        let response = self
            .get(&format!("/orders/{order}/events?limit=1000"), &self.staff())
            .await;
        if response.status() == StatusCode::NOT_FOUND {
            return vec![];
        }
        let page: Value = response.json().await.unwrap();
        page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_type"].as_str().unwrap().to_owned())
            .collect()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// A valid order body (customer_id omitted: the customer's own).
pub fn order_body() -> Value {
    json!({
        "currency": "EUR",
        "items": [
            { "product_id": Uuid::now_v7(), "sku": "SKU-001", "quantity": 2, "unit_price": 1050 },
            { "product_id": Uuid::now_v7(), "sku": "SKU-002", "quantity": 1, "unit_price": 399 }
        ],
        "shipping_address": {
            "recipient_name": "Ada Lovelace", "line1": "Unter den Linden 1", "postal_code": "10117",
            "city": "Berlin", "country": "DE"
        }
    })
}

/// Asserts a problem+json response with `status` and `code`; returns the body.
pub async fn assert_problem(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    body
}
