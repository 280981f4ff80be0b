//! The request headers the service reads: `If-Match`, `Idempotency-Key`, `traceparent` and the
//! correlation ids (`orders::http::CommandHeaders::from_headers`), `Authorization`
//! (`orders::http::bearer_token`), and consistency tokens (`orders::http::consistency`).
//!
//! Input: a header block, one `name: value` per line, as a client could send it. Checks that
//! nothing panics, that a refusal is a 400 (a 401 for `Authorization`), that what is accepted has
//! the shape the rest of the service relies on, and that the ETags and consistency tokens the
//! service issues parse back to what they name.
#![no_main]

use std::str::FromStr;

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use orders::http::consistency::{ConsistencyToken, MAX_TOKENS, parse_tokens};
use orders::http::{CommandHeaders, bearer_token, parse_if_match};
use uuid::Uuid;

/// Longest `Idempotency-Key` the service takes (`MAX_IDEMPOTENCY_KEY_LEN` in extract.rs).
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for line in data.split(|&byte| byte == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&byte| byte == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if let Ok(value) = std::str::from_utf8(value) {
            // A header value, a query parameter or a path segment may end up in these parsers.
            check_if_match(value);
            check_consistency_tokens(value);
        }
        // What HTTP/1.1 parsing lets through; anything else never reaches a handler.
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    check_command_headers(&headers);
    check_bearer_token(&headers);
});

fn check_command_headers(headers: &HeaderMap) {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
    };
    let parsed = match CommandHeaders::from_headers(headers) {
        Ok(parsed) => parsed,
        Err(problem) => {
            assert_eq!(problem.status, 400, "{problem:?}");
            assert!(
                [
                    "invalid-if-match",
                    "invalid-idempotency-key",
                    "invalid-correlation-id",
                    "invalid-request-id",
                    "invalid-traceparent",
                ]
                .contains(&problem.code.as_str()),
                "{problem:?}"
            );
            return;
        }
    };
    match (&parsed.if_match, text("if-match")) {
        (Some(version), Some(value)) => assert_eq!(parse_if_match(value).ok(), Some(*version)),
        (None, None | Some("")) => {} // empty: no precondition
        (if_match, value) => panic!("If-Match {value:?} read as {if_match:?}"),
    }
    if let Some(key) = &parsed.idempotency_key {
        assert_eq!(Some(key.as_str()), text("idempotency-key"));
        assert!(
            (1..=MAX_IDEMPOTENCY_KEY_LEN).contains(&key.len()),
            "{key:?}"
        );
        assert!(key.bytes().all(|byte| byte.is_ascii_graphic()), "{key:?}");
    }
    assert_eq!(
        parsed.traceparent.as_deref(),
        text("traceparent").filter(|value| !value.is_empty())
    );
    let uuid = |name: &str| text(name).and_then(|value| Uuid::parse_str(value).ok());
    assert_eq!(parsed.request_id, uuid("x-request-id"));
    if let Some(correlation_id) = uuid("x-correlation-id").or(parsed.request_id) {
        assert_eq!(parsed.correlation_id, correlation_id);
    }
}

fn check_bearer_token(headers: &HeaderMap) {
    match bearer_token(headers) {
        Ok(token) => {
            let value = headers
                .get(http::header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_else(|| panic!("a token {token:?} without a readable header"));
            let (scheme, rest) = value.split_once(' ').unwrap_or_default();
            assert!(scheme.eq_ignore_ascii_case("bearer"), "{value:?}");
            assert_eq!(rest.trim(), token);
            assert!(!token.is_empty());
        }
        Err(problem) => assert_eq!(problem.status, 401, "{problem:?}"),
    }
}

/// An accepted `If-Match` names a version whose ETag, as the service issues it, reads back the same.
fn check_if_match(value: &str) {
    match parse_if_match(value) {
        Ok(version) => {
            assert_eq!(
                parse_if_match(&format!("\"{version}\"")).ok(),
                Some(version)
            );
            assert_eq!(
                parse_if_match(&format!("W/\"{version}\"")).ok(),
                Some(version)
            );
        }
        Err(problem) => assert_eq!(problem.status, 400, "{problem:?}"),
    }
}

/// Accepted tokens are few, name real versions, and print back to text that parses the same.
fn check_consistency_tokens(value: &str) {
    if let Ok(token) = ConsistencyToken::from_str(value) {
        assert_eq!(ConsistencyToken::from_str(&token.to_string()), Ok(token));
    }
    let tokens = match parse_tokens(value) {
        Ok(tokens) => tokens,
        Err(problem) => return assert_eq!(problem.status, 400, "{problem:?}"),
    };
    assert!(
        (1..=MAX_TOKENS).contains(&tokens.len()),
        "{} tokens",
        tokens.len()
    );
    for token in &tokens {
        assert!((1..=i64::MAX as u64).contains(&token.version), "{token:?}");
    }
    let printed = tokens
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(parse_tokens(&printed).ok(), Some(tokens));
}
