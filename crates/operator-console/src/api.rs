//! The console reads and writes through the service's own API, in process: every page sees what
//! a staff client of `/orders` would (authorisation, validation, read-your-writes, the cache,
//! personal fields revealed by the API's `reveal` layer), and every action is the API's command
//! with its `If-Match`, so there is one owner of each rule.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

use super::session::Session;
use crate::MintStaffToken;

/// Lifetime of the staff token minted for one internal call.
const CALL_TOKEN_TTL: Duration = Duration::from_secs(60);

/// Largest answer the console reads from the API.
const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// The API, as the console calls it.
#[derive(Clone)]
pub struct Api {
    router: Router,
    mint: MintStaffToken,
}

/// What the API answered.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its JSON body (`Null` when empty), a problem document when the status is an error.
    pub body: Value,
}

impl Answer {
    /// The problem's `detail`, for a page to show, when the API refused.
    pub fn detail(&self) -> String {
        self.body["detail"]
            .as_str()
            .or_else(|| self.body["title"].as_str())
            .unwrap_or("the service could not answer; the details are in its log")
            .to_owned()
    }
}

impl Api {
    /// Calls into `router` (the API without the console) as staff, with tokens from `mint`.
    pub fn new(router: Router, mint: MintStaffToken) -> Self {
        Self { router, mint }
    }

    /// `GET path` as the session's staff member.
    pub async fn get(&self, session: &Session, path: &str) -> Answer {
        self.call(session, Method::GET, path, None, None).await
    }

    /// `POST path` with `body`, pinned to `if_match` when given, as the session's staff member.
    pub async fn post(
        &self,
        session: &Session,
        path: &str,
        if_match: Option<u64>,
        body: Option<Value>,
    ) -> Answer {
        self.call(session, Method::POST, path, if_match, body).await
    }

    async fn call(
        &self,
        session: &Session,
        method: Method,
        path: &str,
        if_match: Option<u64>,
        body: Option<Value>,
    ) -> Answer {
        let Some(token) = (self.mint)(&session.subject, CALL_TOKEN_TTL) else {
            return unavailable();
        };
        let mut request = Request::builder().method(method).uri(path);
        if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
            request = request.header(header::AUTHORIZATION, value);
        }
        if let Some(version) = if_match {
            request = request.header(header::IF_MATCH, format!("\"{version}\""));
        }
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(json.to_string())
            }
            None => Body::empty(),
        };
        let Ok(request) = request.body(body) else {
            return unavailable();
        };
        let Ok(response) = self.router.clone().oneshot(request).await;
        let status = response.status();
        let Ok(bytes) = axum::body::to_bytes(response.into_body(), MAX_ANSWER).await else {
            return unavailable();
        };
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Answer { status, body }
    }
}

fn unavailable() -> Answer {
    Answer {
        status: StatusCode::SERVICE_UNAVAILABLE,
        body: Value::Null,
    }
}
