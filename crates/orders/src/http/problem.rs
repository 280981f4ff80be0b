//! RFC 9457 problem details: every error response of the API.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// An `application/problem+json` body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (stable; `code` is its last segment).
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short, human-readable summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this occurrence and what to do about it.
    pub detail: String,
    /// Stable machine-readable code, e.g. `invalid-transition`.
    pub code: String,
    /// The stream version the client's request was checked against, for version conflicts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
    #[serde(skip)]
    #[schema(ignore)]
    www_authenticate: bool,
}

impl Problem {
    /// A problem with `status`, a stable `code`, and a `detail` for the client.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            type_uri: format!("urn:orders:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_owned(),
            current_version: None,
            www_authenticate: false,
        }
    }

    /// Adds the stream's current version.
    pub fn with_current_version(mut self, version: u64) -> Self {
        self.current_version = Some(version);
        self
    }

    /// 400 with `code`.
    pub fn bad_request(code: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 401: missing or invalid credentials (adds `WWW-Authenticate: Bearer`).
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        let mut problem = Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail);
        problem.www_authenticate = true;
        problem
    }

    /// 403: authenticated, but the role may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 404 for an order the caller cannot see (it may not exist, or belong to someone else).
    pub fn order_not_found(id: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "order-not-found",
            format!("there is no order {id}"),
        )
    }

    /// 503 for a command whose commit may or may not have happened: the connection to the
    /// database was lost during it (a failover). The retry with the same key resolves it.
    pub fn outcome_unknown() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "commit-outcome-unknown",
            "the connection to the database was lost while this command was being committed, so \
             it may or may not have been applied; retry it with the same Idempotency-Key to get \
             its outcome (the original answer if it was applied, a fresh execution if not). \
             Without a key, read the order before sending it again",
        )
    }

    /// 503 with no internal detail: the details are in the log.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store-unavailable",
            "the event store is unavailable; retry later",
        )
    }

    /// 500 with no internal detail.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal-error",
            "the server failed to handle the request; the details are in its log",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.www_authenticate {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;

    use super::*;

    async fn sent(problem: Problem) -> (StatusCode, header::HeaderMap, serde_json::Value) {
        let response = problem.into_response();
        let (parts, body) = response.into_parts();
        let body = to_bytes(body, usize::MAX).await.expect("a problem body");
        let json = serde_json::from_slice(&body).expect("problem+json");
        (parts.status, parts.headers, json)
    }

    #[tokio::test]
    async fn a_problem_is_sent_as_problem_json_with_its_status() {
        let (status, headers, body) =
            sent(Problem::bad_request("bad-thing", "the thing is bad").with_current_version(4))
                .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
        assert!(headers.get(header::WWW_AUTHENTICATE).is_none());
        assert_eq!(
            body,
            serde_json::json!({
                "type": "urn:orders:problem:bad-thing",
                "title": "Bad Request",
                "status": 400,
                "detail": "the thing is bad",
                "code": "bad-thing",
                "current_version": 4,
            })
        );
    }

    #[tokio::test]
    async fn only_an_unauthorized_answer_asks_for_a_bearer_token() {
        let (status, headers, body) = sent(Problem::unauthorized("no token")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(body["code"], "unauthorized");
        assert!(body.get("current_version").is_none(), "{body}");
        for problem in [
            Problem::forbidden("no"),
            Problem::order_not_found("x"),
            Problem::unavailable(),
            Problem::internal(),
        ] {
            let (_, headers, _) = sent(problem).await;
            assert!(headers.get(header::WWW_AUTHENTICATE).is_none());
        }
    }

    #[test]
    fn each_constructor_has_its_status_and_code() {
        let cases = [
            (Problem::forbidden("no"), 403, "forbidden"),
            (Problem::order_not_found("o-1"), 404, "order-not-found"),
            (Problem::unavailable(), 503, "store-unavailable"),
            (Problem::internal(), 500, "internal-error"),
        ];
        for (problem, status, code) in cases {
            assert_eq!((problem.status, problem.code.as_str()), (status, code));
        }
        assert_eq!(
            Problem::order_not_found("o-1").detail,
            "there is no order o-1"
        );
    }
}
