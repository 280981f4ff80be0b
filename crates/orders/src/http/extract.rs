//! Extractors: authenticated caller, JSON bodies with problem+json rejections, and the headers
//! that steer a command (`If-Match`, `Idempotency-Key`, `X-Correlation-Id`).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{AppState, Problem};
use crate::auth::Principal;

/// Longest accepted `Idempotency-Key`; enough for a UUID or a client's own scheme.
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

impl FromRequestParts<AppState> for Principal {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let token = bearer_token(&parts.headers)?;
        state
            .keys
            .verify(token)
            .map_err(|e| Problem::unauthorized(e.to_string()))
    }
}

/// The token of the `Authorization: Bearer <token>` header, trimmed; a missing header or another
/// scheme is a 401 problem. The token itself is not checked here (see [`crate::auth::JwtKeys`]).
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, Problem> {
    let header = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        Problem::unauthorized("send `Authorization: Bearer <token>`; mint one with `orders token`")
    })?;
    header
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| Problem::unauthorized("the Authorization header must be `Bearer <token>`"))
}

/// The `{id}` path segment as an order id; anything but a UUID is a 400 problem.
#[derive(Debug, Clone, Copy)]
pub struct OrderId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for OrderId {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| Problem::bad_request("invalid-path", rejection.body_text()))?;
        Uuid::parse_str(&raw).map(OrderId).map_err(|_| {
            Problem::bad_request(
                "invalid-path",
                format!("{raw:?} is not an order id (a UUID)"),
            )
        })
    }
}

/// Query parameters; a malformed query string is a 400 problem.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Self(value))
            .map_err(|rejection| Problem::bad_request("invalid-query", rejection.body_text()))
    }
}

/// A JSON body, keeping its raw bytes for the idempotency fingerprint.
#[derive(Debug)]
pub struct JsonBody<T> {
    /// The parsed value.
    pub value: T,
    /// The bytes as received.
    pub raw: Bytes,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        if !is_json(request.headers()) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let raw = read_body(request, state).await?;
        let value = parse_json(&raw)?;
        Ok(Self { value, raw })
    }
}

/// A body that may be empty (then `T::default()`), and must be JSON otherwise.
#[derive(Debug)]
pub struct OptionalJsonBody<T> {
    /// The parsed value, or the default for an empty body.
    pub value: T,
    /// The bytes as received.
    pub raw: Bytes,
}

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let json = is_json(request.headers());
        let raw = read_body(request, state).await?;
        if !json && !is_blank(&raw) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "send the body as JSON with `Content-Type: application/json`, or send no body",
            ));
        }
        Ok(Self {
            value: parse_optional_json(&raw)?,
            raw,
        })
    }
}

/// Whether a body counts as absent: empty or only ASCII whitespace.
fn is_blank(raw: &[u8]) -> bool {
    raw.iter().all(u8::is_ascii_whitespace)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

async fn read_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, Problem> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body-too-large",
                    rejection.body_text(),
                )
            } else {
                Problem::bad_request("unreadable-body", rejection.body_text())
            }
        })
}

/// Parses a request body as JSON into `T`: a body that is not JSON is a 400 problem
/// (`malformed-json`), JSON that does not fit `T` a 422 (`invalid-body`).
pub fn parse_json<T: DeserializeOwned>(raw: &[u8]) -> Result<T, Problem> {
    serde_json::from_slice(raw).map_err(|error| match error.classify() {
        serde_json::error::Category::Data => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-body",
            format!("the body does not match the schema: {error}"),
        ),
        _ => Problem::bad_request(
            "malformed-json",
            format!("the body is not valid JSON: {error}"),
        ),
    })
}

/// Parses an optional JSON body: a blank one (see [`OptionalJsonBody`]) is `T::default()`, any
/// other is parsed by [`parse_json`].
pub fn parse_optional_json<T: DeserializeOwned + Default>(raw: &[u8]) -> Result<T, Problem> {
    if is_blank(raw) {
        Ok(T::default())
    } else {
        parse_json(raw)
    }
}

/// The request headers that steer a command.
#[derive(Debug, Clone)]
pub struct CommandHeaders {
    /// From `X-Correlation-Id` if it is a UUID, else the request id.
    pub correlation_id: Uuid,
    /// The request id (`X-Request-Id`, set by the server when the client sent none).
    pub request_id: Option<Uuid>,
    /// `If-Match`, as a stream version.
    pub if_match: Option<u64>,
    /// `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// `traceparent`.
    pub traceparent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for CommandHeaders {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        Self::from_headers(&parts.headers)
    }
}

impl CommandHeaders {
    /// Reads the command headers from `headers`. A malformed `If-Match` or `Idempotency-Key` is a
    /// 400 problem; a correlation or request id that is not a UUID is ignored.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, Problem> {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let request_id = text("x-request-id").and_then(|v| Uuid::parse_str(v).ok());
        let correlation_id = text("x-correlation-id")
            .and_then(|v| Uuid::parse_str(v).ok())
            .or(request_id)
            .unwrap_or_else(Uuid::now_v7);
        let if_match = match headers.get(header::IF_MATCH) {
            None => None,
            Some(value) => Some(parse_if_match(value.to_str().unwrap_or(""))?),
        };
        let idempotency_key = match text("idempotency-key") {
            None => None,
            Some(key)
                if key.is_empty()
                    || key.len() > MAX_IDEMPOTENCY_KEY_LEN
                    || !key.chars().all(|c| c.is_ascii_graphic()) =>
            {
                return Err(Problem::bad_request(
                    "invalid-idempotency-key",
                    format!(
                        "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
                    ),
                ));
            }
            Some(key) => Some(key.to_owned()),
        };
        let traceparent = text("traceparent").map(str::to_owned);
        Ok(Self {
            correlation_id,
            request_id,
            if_match,
            idempotency_key,
            traceparent,
        })
    }
}

/// Parses an `If-Match` value carrying one ETag as this API issues them: `"3"` (or `W/"3"`, `3`).
pub fn parse_if_match(value: &str) -> Result<u64, Problem> {
    let tag = value.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    let tag = tag
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(tag);
    tag.parse().map_err(|_| {
        Problem::bad_request(
            "invalid-if-match",
            format!("If-Match must be one ETag as returned by this API, like \"3\"; got {value:?}"),
        )
    })
}

/// The fingerprint of a request for idempotency: method, path and body.
pub fn request_hash(method: &str, path: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    for part in [method.as_bytes(), b"\n", path.as_bytes(), b"\n", body] {
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn if_match_accepts_the_etags_we_issue() {
        assert_eq!(parse_if_match("\"3\"").unwrap(), 3);
        assert_eq!(parse_if_match("W/\"12\"").unwrap(), 12);
        assert_eq!(parse_if_match(" 7 ").unwrap(), 7);
        assert!(parse_if_match("*").is_err());
        assert!(parse_if_match("\"abc\"").is_err());
    }

    #[test]
    fn the_bearer_token_is_the_trimmed_rest_of_the_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers).unwrap_err().status, 401);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer  abc.def.ghi "),
        );
        assert_eq!(bearer_token(&headers).unwrap(), "abc.def.ghi");
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&headers).unwrap_err().status, 401);
    }

    #[test]
    fn a_blank_optional_body_is_the_default_and_any_other_must_be_json() {
        assert_eq!(
            parse_optional_json::<Vec<u8>>(b" \r\n").unwrap(),
            Vec::<u8>::new()
        );
        assert_eq!(parse_optional_json::<Vec<u8>>(b"[1]").unwrap(), vec![1]);
        assert_eq!(
            parse_optional_json::<Vec<u8>>(b"[").unwrap_err().status,
            400
        );
        assert_eq!(
            parse_optional_json::<Vec<u8>>(b"{}").unwrap_err().status,
            422
        );
    }

    #[test]
    fn the_request_hash_covers_method_path_and_body() {
        let base = request_hash("POST", "/orders", b"{}");
        assert_eq!(base, request_hash("POST", "/orders", b"{}"));
        assert_ne!(base, request_hash("POST", "/orders", b"{ }"));
        assert_ne!(base, request_hash("POST", "/orders/1/cancel", b"{}"));
    }
}
