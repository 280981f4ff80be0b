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
    // The scheme is case-insensitive (RFC 9110 §11.1); the token is what follows the blank.
    header
        .to_str()
        .ok()
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| Problem::unauthorized("the Authorization header must be `Bearer <token>`"))
}

/// The `{id}` path segment as an order id; anything but a UUID is a 400 problem.
#[derive(Debug, Clone, Copy)]
pub struct OrderId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for OrderId {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        uuid_segment(parts, state, "an order id").await.map(OrderId)
    }
}

/// The `{id}` path segment as a customer id; anything but a UUID is a 400 problem.
#[derive(Debug, Clone, Copy)]
pub struct CustomerId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for CustomerId {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        uuid_segment(parts, state, "a customer id")
            .await
            .map(CustomerId)
    }
}

/// The `{id}` path segment as a webhook endpoint id; anything but a UUID is a 400 problem.
#[derive(Debug, Clone, Copy)]
pub struct WebhookId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for WebhookId {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        uuid_segment(parts, state, "a webhook endpoint id")
            .await
            .map(WebhookId)
    }
}

async fn uuid_segment<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    what: &str,
) -> Result<Uuid, Problem> {
    let Path(raw) = Path::<String>::from_request_parts(parts, state)
        .await
        .map_err(|rejection| Problem::bad_request("invalid-path", rejection.body_text()))?;
    Uuid::parse_str(&raw).map_err(|_| {
        Problem::bad_request("invalid-path", format!("{raw:?} is not {what} (a UUID)"))
    })
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

/// Whether a body counts as absent: empty, only ASCII whitespace, or JSON `null` (which the API
/// document allows for optional bodies).
fn is_blank(raw: &[u8]) -> bool {
    let trimmed = raw.trim_ascii();
    trimmed.is_empty() || trimmed == b"null"
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

/// The request headers that steer a command. Each is either used or refused with a 400 problem
/// naming it; none is silently dropped.
#[derive(Debug, Clone)]
pub struct CommandHeaders {
    /// From `X-Correlation-Id` (a UUID), else the request id if it is a UUID, else a new one.
    pub correlation_id: Uuid,
    /// The request id when it is a UUID (the server's own always are): the events' causation id.
    /// Another valid `X-Request-Id` is echoed and logged but is not a causation id.
    pub request_id: Option<Uuid>,
    /// `If-Match`, as a stream version.
    pub if_match: Option<u64>,
    /// `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// `traceparent`, checked against the W3C Trace Context format.
    pub traceparent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for CommandHeaders {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        Self::from_headers(&parts.headers)
    }
}

impl CommandHeaders {
    /// Reads the command headers from `headers`. A malformed `If-Match`, `Idempotency-Key`,
    /// `X-Correlation-Id` or `traceparent` is a 400 problem (the request id is checked, for
    /// every request, by [`check_request_id`]).
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, Problem> {
        let request_id = header_text(headers, "x-request-id", "invalid-request-id")?
            .and_then(|v| Uuid::parse_str(v).ok());
        let correlation_id =
            match header_text(headers, "x-correlation-id", "invalid-correlation-id")? {
                None => request_id.unwrap_or_else(Uuid::now_v7),
                Some(value) => parse_hyphenated_uuid(value).ok_or_else(|| {
                    Problem::bad_request(
                        "invalid-correlation-id",
                        format!("X-Correlation-Id must be a UUID; got {value:?}"),
                    )
                })?,
            };
        // An empty If-Match names no ETag: no precondition (RFC 9110 requires at least one for
        // the header to mean anything; clients that template it empty mean "none").
        let if_match = header_text(headers, "if-match", "invalid-if-match")?
            .filter(|value| !value.is_empty())
            .map(parse_if_match)
            .transpose()?;
        let idempotency_key = header_text(headers, "idempotency-key", "invalid-idempotency-key")?
            .map(parse_idempotency_key)
            .transpose()?;
        // Empty: no trace context, as with If-Match.
        let traceparent = header_text(headers, "traceparent", "invalid-traceparent")?
            .filter(|value| !value.is_empty())
            .map(parse_traceparent)
            .transpose()?;
        Ok(Self {
            correlation_id,
            request_id,
            if_match,
            idempotency_key,
            traceparent,
        })
    }
}

/// A UUID in its hyphenated form (`0190d3c8-6f2e-7c3a-9a4b-2f1e0d9c8b7a`), the one the API
/// document names `format: uuid`; the braced, URN and unhyphenated forms are refused.
fn parse_hyphenated_uuid(value: &str) -> Option<Uuid> {
    (value.len() == 36)
        .then(|| Uuid::parse_str(value).ok())
        .flatten()
}

/// The trimmed value of header `name`, `None` when absent. A value that is not visible ASCII (or
/// a header sent more than once) is a 400 problem of type `code`: refused, never dropped. An
/// empty value is passed on, for the caller to refuse (no header the service reads may be empty).
fn header_text<'h>(
    headers: &'h HeaderMap,
    name: &str,
    code: &'static str,
) -> Result<Option<&'h str>, Problem> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Problem::bad_request(code, format!("send {name} once")));
    }
    // `to_str` accepts exactly visible ASCII, space and tab, and refuses the rest.
    match value.to_str() {
        Ok(text) => Ok(Some(text.trim())),
        Err(_) => Err(Problem::bad_request(
            code,
            format!("{name} must be visible ASCII characters"),
        )),
    }
}

fn parse_idempotency_key(key: &str) -> Result<String, Problem> {
    if key.is_empty()
        || key.len() > MAX_IDEMPOTENCY_KEY_LEN
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Problem::bad_request(
            "invalid-idempotency-key",
            format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
            ),
        ));
    }
    Ok(key.to_owned())
}

/// Longest accepted `X-Request-Id`.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Checks a client's `X-Request-Id` before it is echoed or logged: 1 to [`MAX_REQUEST_ID_LEN`]
/// characters from `A–Z a–z 0–9 - _ . : / + = @`. Anything else is a 400 problem.
pub fn check_request_id(headers: &HeaderMap) -> Result<(), Problem> {
    let Some(value) = header_text(headers, "x-request-id", "invalid-request-id")? else {
        return Ok(());
    };
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b);
    if value.is_empty() || value.len() > MAX_REQUEST_ID_LEN || !value.bytes().all(allowed) {
        return Err(Problem::bad_request(
            "invalid-request-id",
            format!(
                "X-Request-Id must be 1 to {MAX_REQUEST_ID_LEN} characters from A-Z a-z 0-9 - _ . : / + = @"
            ),
        ));
    }
    Ok(())
}

/// Parses a W3C Trace Context `traceparent`: `version-traceid-parentid-flags` in lowercase hex,
/// with non-zero ids. Version `ff` is invalid; a later version may append fields after the flags.
pub fn parse_traceparent(value: &str) -> Result<String, Problem> {
    let invalid = || {
        Problem::bad_request(
            "invalid-traceparent",
            format!(
                "traceparent must be a W3C Trace Context value like \"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\"; got {value:?}"
            ),
        )
    };
    let hex = |part: &str, len: usize| {
        part.len() == len
            && part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let mut parts = value.split('-');
    let (Some(version), Some(trace_id), Some(parent_id), Some(flags)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let rest_ok = if version == "00" {
        parts.next().is_none()
    } else {
        true
    };
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace_id, 32)
        && trace_id.bytes().any(|b| b != b'0')
        && hex(parent_id, 16)
        && parent_id.bytes().any(|b| b != b'0')
        && hex(flags, 2)
        && rest_ok;
    if valid {
        Ok(value.to_owned())
    } else {
        Err(invalid())
    }
}

/// Parses an `If-Match` value carrying one ETag as this API issues them: `"3"` (or the weak form
/// `W/"3"`): a decimal version of 1 to 18 digits. Anything else (`*`, a list, a bare number) is
/// a 400 problem: the API document states exactly this grammar.
pub fn parse_if_match(value: &str) -> Result<u64, Problem> {
    let tag = value.strip_prefix("W/").unwrap_or(value);
    let digits = tag.strip_prefix('"').and_then(|t| t.strip_suffix('"'));
    match digits {
        Some(digits)
            if (1..=18).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) =>
        {
            digits.parse().map_err(|_| invalid_if_match(value))
        }
        _ => Err(invalid_if_match(value)),
    }
}

fn invalid_if_match(value: &str) -> Problem {
    Problem::bad_request(
        "invalid-if-match",
        format!("If-Match must be one ETag as returned by this API, like \"3\"; got {value:?}"),
    )
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
        assert_eq!(parse_if_match("\"0\"").unwrap(), 0);
        let largest = "9".repeat(18);
        assert_eq!(
            parse_if_match(&format!("\"{largest}\"")).unwrap(),
            999_999_999_999_999_999
        );
        assert_eq!(parse_if_match("\"007\"").unwrap(), 7);
        for refused in [
            "*",
            "\"abc\"",
            "7",
            "\"\"",
            "\"1\", \"2\"",
            "\"+1\"",
            "w/\"1\"",
        ] {
            assert!(parse_if_match(refused).is_err(), "{refused:?}");
        }
        assert!(
            parse_if_match(&format!("\"{largest}9\"")).is_err(),
            "19 digits"
        );
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
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bEARER xyz"),
        );
        assert_eq!(
            bearer_token(&headers).unwrap(),
            "xyz",
            "the scheme is case-insensitive"
        );
        for refused in [
            "Basic abc",
            "Bearer",
            "Bearer   ",
            "Bearerabc",
            "Bearer\tabc",
        ] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(refused));
            assert_eq!(
                bearer_token(&headers).unwrap_err().status,
                401,
                "{refused:?}"
            );
        }
    }

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_bytes(value).unwrap());
        }
        headers
    }

    fn refused_as(pairs: &[(&'static str, &[u8])]) -> String {
        let problem = CommandHeaders::from_headers(&headers(pairs)).unwrap_err();
        assert_eq!(problem.status, 400);
        problem.code.clone()
    }

    #[test]
    fn every_command_header_is_used_or_refused() {
        let parsed = CommandHeaders::from_headers(&headers(&[
            ("idempotency-key", b" key-1 "),
            ("if-match", b"\"2\""),
            ("x-correlation-id", b"0190d3c8-6f2e-7c3a-9a4b-2f1e0d9c8b7a"),
            ("x-request-id", b"0190d3c8-6f2e-7c3a-9a4b-000000000001"),
            (
                "traceparent",
                b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        ]))
        .unwrap();
        assert_eq!(parsed.idempotency_key.as_deref(), Some("key-1"));
        assert_eq!(parsed.if_match, Some(2));
        assert_eq!(
            parsed.correlation_id.to_string(),
            "0190d3c8-6f2e-7c3a-9a4b-2f1e0d9c8b7a"
        );
        assert_eq!(
            parsed.request_id.map(|id| id.to_string()).as_deref(),
            Some("0190d3c8-6f2e-7c3a-9a4b-000000000001")
        );
        assert!(parsed.traceparent.is_some());

        assert_eq!(
            refused_as(&[("idempotency-key", "réf-42".as_bytes())]),
            "invalid-idempotency-key"
        );
        assert_eq!(
            refused_as(&[("idempotency-key", b"a b")]),
            "invalid-idempotency-key"
        );
        assert_eq!(
            refused_as(&[("idempotency-key", b"")]),
            "invalid-idempotency-key"
        );
        let empty = CommandHeaders::from_headers(&headers(&[("if-match", b" ")])).unwrap();
        assert_eq!(
            empty.if_match, None,
            "an empty If-Match sets no precondition"
        );
        let empty = CommandHeaders::from_headers(&headers(&[("traceparent", b"")])).unwrap();
        assert_eq!(
            empty.traceparent, None,
            "an empty traceparent carries no context"
        );
        assert_eq!(
            refused_as(&[("x-correlation-id", b"")]),
            "invalid-correlation-id"
        );
        assert_eq!(
            refused_as(&[("idempotency-key", &[b'k'; 256])]),
            "invalid-idempotency-key"
        );
        assert!(
            CommandHeaders::from_headers(&headers(&[("idempotency-key", &[b'k'; 255])])).is_ok()
        );
        // Blanks around a value are allowed and trimmed.
        let tabbed = CommandHeaders::from_headers(&headers(&[("if-match", b"\t\"5\" ")])).unwrap();
        assert_eq!(tabbed.if_match, Some(5));
        assert_eq!(
            refused_as(&[("idempotency-key", b"a"), ("idempotency-key", b"b")]),
            "invalid-idempotency-key"
        );
        assert_eq!(
            refused_as(&[("if-match", "\"é\"".as_bytes())]),
            "invalid-if-match"
        );
        assert_eq!(
            refused_as(&[("x-correlation-id", b"order-42")]),
            "invalid-correlation-id"
        );
        assert_eq!(
            refused_as(&[("x-correlation-id", b"0190d3c86f2e7c3a9a4b2f1e0d9c8b7a")]),
            "invalid-correlation-id"
        );
        assert_eq!(
            refused_as(&[("traceparent", b"hello")]),
            "invalid-traceparent"
        );
        // A request id that is valid but not a UUID is no causation id; the correlation is new.
        let parsed = CommandHeaders::from_headers(&headers(&[("x-request-id", b"req-7")])).unwrap();
        assert_eq!(parsed.request_id, None);
    }

    #[test]
    fn traceparent_follows_the_w3c_format() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(parse_traceparent(ok).unwrap(), ok);
        // A later version may carry more fields.
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra")
                .is_ok()
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(parse_traceparent(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_request_id_is_checked_before_it_is_echoed() {
        assert!(check_request_id(&headers(&[])).is_ok());
        assert!(check_request_id(&headers(&[("x-request-id", b"abc-1.2:3/4+5=6@7_8")])).is_ok());
        assert!(
            check_request_id(&headers(&[("x-request-id", &[b'a'; MAX_REQUEST_ID_LEN])])).is_ok()
        );
        for bad in [
            &b""[..],
            b"a b",
            b"<script>",
            b"a\"b",
            &[b'a'; MAX_REQUEST_ID_LEN + 1],
        ] {
            let problem = check_request_id(&headers(&[("x-request-id", bad)])).unwrap_err();
            assert_eq!(
                (problem.status, problem.code.as_str()),
                (400, "invalid-request-id")
            );
        }
    }

    #[test]
    fn a_blank_optional_body_is_the_default_and_any_other_must_be_json() {
        assert_eq!(
            parse_optional_json::<Vec<u8>>(b" \r\n").unwrap(),
            Vec::<u8>::new()
        );
        assert_eq!(
            parse_optional_json::<Vec<u8>>(b" null ").unwrap(),
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

    #[test]
    fn json_is_application_json_or_a_json_suffix_under_application() {
        let cases: [(&[u8], bool); 11] = [
            (b"application/json", true),
            (b"Application/JSON; charset=utf-8", true),
            (b" application/json ; q=1", true),
            (b"application/problem+json", true),
            (b"application/merge-patch+json", true),
            (b"text/plain+json", false),
            (b"application/jsonp", false),
            (b"application/xml", false),
            (b"text/json", false),
            (b"", false),
            (b"application/json\xff", false),
        ];
        for (value, json) in cases {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_bytes(value).expect("a header value"),
            );
            assert_eq!(
                is_json(&headers),
                json,
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
        assert!(!is_json(&HeaderMap::new()));
    }

    /// The extractors in a router, as the service uses them.
    mod extractors {
        use axum::Router;
        use axum::body::{Body, to_bytes};
        use axum::routing::{get, post};
        use serde::Deserialize;
        use tower::ServiceExt;

        use super::super::*;

        #[derive(Debug, Deserialize)]
        struct Page {
            limit: u32,
        }

        fn app() -> Router {
            Router::new()
                .route(
                    "/json",
                    post(|body: JsonBody<serde_json::Value>| async move {
                        format!("{}|{}", body.value, body.raw.len())
                    }),
                )
                .route(
                    "/optional",
                    post(
                        |body: OptionalJsonBody<Option<serde_json::Value>>| async move {
                            format!("{:?}|{}", body.value, body.raw.len())
                        },
                    ),
                )
                .route(
                    "/orders/{id}",
                    get(|OrderId(id): OrderId| async move { id.to_string() }),
                )
                .route(
                    "/customers/{id}",
                    get(|CustomerId(id): CustomerId| async move { id.to_string() }),
                )
                .route(
                    "/page",
                    get(|ApiQuery(page): ApiQuery<Page>| async move { page.limit.to_string() }),
                )
        }

        /// Status, problem code (or the body, for a success) of `request`.
        async fn answer(request: Request) -> (u16, String) {
            let response = app().oneshot(request).await.expect("the router answers");
            let status = response.status().as_u16();
            let body = to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("a body");
            let text = String::from_utf8_lossy(&body).into_owned();
            if status == 200 {
                return (status, text);
            }
            let problem: serde_json::Value = serde_json::from_str(&text).expect("problem+json");
            (
                status,
                problem["code"].as_str().unwrap_or_default().to_owned(),
            )
        }

        fn post_body(uri: &str, content_type: Option<&str>, body: impl Into<Body>) -> Request {
            let mut request = Request::post(uri);
            if let Some(content_type) = content_type {
                request = request.header(header::CONTENT_TYPE, content_type);
            }
            request.body(body.into()).expect("a request")
        }

        fn get_uri(uri: &str) -> Request {
            Request::get(uri).body(Body::empty()).expect("a request")
        }

        const JSON: Option<&str> = Some("application/json");

        #[tokio::test]
        async fn a_json_body_must_say_it_is_json_and_be_json() {
            assert_eq!(
                answer(post_body("/json", JSON, r#"{"a":1}"#)).await,
                (200, r#"{"a":1}|7"#.to_owned())
            );
            assert_eq!(
                answer(post_body("/json", None, r#"{"a":1}"#)).await,
                (415, "unsupported-media-type".to_owned())
            );
            assert_eq!(
                answer(post_body("/json", JSON, "{")).await,
                (400, "malformed-json".to_owned())
            );
        }

        #[tokio::test]
        async fn an_optional_body_may_be_absent_and_must_be_json_otherwise() {
            let cases = [
                (None, "", (200, "None|0")),
                (None, "  ", (200, "None|2")),
                (Some("text/plain"), "null", (200, "None|4")),
                (
                    JSON,
                    r#"{"a":1}"#,
                    (200, r#"Some(Object {"a": Number(1)})|7"#),
                ),
                (
                    Some("text/plain"),
                    r#"{"a":1}"#,
                    (415, "unsupported-media-type"),
                ),
                (JSON, "{", (400, "malformed-json")),
            ];
            for (content_type, body, (status, code)) in cases {
                assert_eq!(
                    answer(post_body("/optional", content_type, body)).await,
                    (status, code.to_owned()),
                    "{content_type:?} {body:?}"
                );
            }
        }

        #[tokio::test]
        async fn a_body_over_the_limit_or_cut_off_is_a_client_error() {
            let huge = vec![b' '; 2 * 1024 * 1024 + 1];
            assert_eq!(
                answer(post_body("/json", JSON, huge)).await,
                (413, "body-too-large".to_owned())
            );
            let broken = Body::from_stream(futures::stream::iter([Err::<Bytes, _>(
                std::io::Error::other("connection reset"),
            )]));
            assert_eq!(
                answer(post_body("/json", JSON, broken)).await,
                (400, "unreadable-body".to_owned())
            );
        }

        #[tokio::test]
        async fn path_ids_must_be_uuids() {
            let id = Uuid::now_v7();
            for path in ["orders", "customers"] {
                assert_eq!(
                    answer(get_uri(&format!("/{path}/{id}"))).await,
                    (200, id.to_string())
                );
                assert_eq!(
                    answer(get_uri(&format!("/{path}/not-a-uuid"))).await,
                    (400, "invalid-path".to_owned())
                );
            }
        }

        #[tokio::test]
        async fn a_malformed_query_is_a_bad_request() {
            assert_eq!(
                answer(get_uri("/page?limit=5")).await,
                (200, "5".to_owned())
            );
            assert_eq!(
                answer(get_uri("/page?limit=many")).await,
                (400, "invalid-query".to_owned())
            );
        }
    }
}
