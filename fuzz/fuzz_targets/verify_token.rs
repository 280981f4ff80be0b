//! Bearer token verification: `orders::auth::JwtKeys::verify` on arbitrary tokens, and the tokens
//! `orders token` issues (`JwtKeys::issue`, with the TTL parsed as the CLI parses it).
//!
//! Input, by its first line:
//! - `raw\n<token>`: the token as a client sends it;
//! - `signed\n<header JSON>\n<claims JSON>`: signed with the service's secret (by `orders_fuzz::jwt`,
//!   not jsonwebtoken), so the claims and header checks are reached;
//! - `forged\n<header JSON>\n<claims JSON>`: the same, signed with another secret;
//! - `issue\n<role>\n<ttl>\n<subject>`: issued by the service.
//!
//! Checks that nothing panics; that a token is accepted only if it is HS256, signed with the
//! secret, unexpired, and names a valid role (and a UUID for a customer), and then as the
//! principal its claims name; that a token signed with another secret is never accepted; and that
//! an issued token is accepted as its subject and role.
#![no_main]

use libfuzzer_sys::fuzz_target;
use orders::auth::{JwtKeys, Principal, Role, TokenError};
use orders_fuzz::input::{split_at_newline, split_line};
use orders_fuzz::jwt;
use uuid::Uuid;

/// The service's secret in this target.
const SECRET: &[u8] = b"fuzz-secret-0123456789abcdef-0123456789";

/// Seconds an expired token is still accepted (`validation.leeway` in auth/token.rs).
const LEEWAY_SECS: u64 = 5;

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = split_line(data) else {
        return;
    };
    let keys = JwtKeys::new(SECRET);
    match mode {
        "raw" => {
            if let Ok(token) = std::str::from_utf8(rest) {
                check_verify(&keys, token);
            }
        }
        "signed" | "forged" => {
            let Some((header, claims)) = split_at_newline(rest) else {
                return;
            };
            if mode == "signed" {
                check_verify(&keys, &jwt::sign(SECRET, header, claims));
            } else {
                let forged = jwt::sign(b"not the service's secret", header, claims);
                assert!(
                    keys.verify(&forged).is_err(),
                    "forged token accepted: {forged}"
                );
            }
        }
        "issue" => check_issue(&keys, rest),
        _ => {}
    }
});

/// `verify` accepts `token` only if an independent HS256 check does, and as the claims' principal.
fn check_verify(keys: &JwtKeys, token: &str) {
    let now = unix_now(); // before verify reads its clock
    let Ok(principal) = keys.verify(token) else {
        return;
    };
    let Some((header, claims)) = jwt::signed_parts(SECRET, token) else {
        panic!("accepted a token that is not signed with the secret: {token:?}");
    };
    assert_eq!(
        header["alg"], "HS256",
        "accepted another algorithm: {header}"
    );
    let exp = claims["exp"].as_u64();
    assert!(
        exp.is_some_and(|exp| exp.saturating_add(LEEWAY_SECS) >= now),
        "accepted an expired token: {claims}"
    );
    // A customer is its id (whatever spelling of the UUID the token used); staff its subject.
    match &principal {
        Principal::Customer(id) => {
            assert_eq!(claims["role"].as_str(), Some("customer"), "{claims}");
            let sub = claims["sub"].as_str().and_then(|s| Uuid::parse_str(s).ok());
            assert_eq!(sub, Some(*id), "{claims}");
        }
        Principal::Staff(subject) => {
            assert_eq!(claims["role"].as_str(), Some("staff"), "{claims}");
            assert_eq!(claims["sub"].as_str(), Some(subject.as_str()), "{claims}");
        }
    }
}

/// An issued token verifies as its subject and role; only a customer subject that is not a UUID
/// is refused.
fn check_issue(keys: &JwtKeys, input: &[u8]) {
    let Some((role, rest)) = split_line(input) else {
        return;
    };
    let Some((ttl, subject)) = split_line(rest) else {
        return;
    };
    let role = match role {
        "customer" => Role::Customer,
        "staff" => Role::Staff,
        _ => return,
    };
    let Ok(ttl) = common::config::parse_duration(ttl) else {
        return;
    };
    let Ok(subject) = std::str::from_utf8(subject) else {
        return;
    };
    match keys.issue(subject, role, ttl) {
        Ok(token) => {
            assert!(
                jwt::signed_parts(SECRET, &token).is_some(),
                "an issued token fails the independent check: {token}"
            );
            let expected = match role {
                Role::Customer => Principal::Customer(
                    Uuid::parse_str(subject).expect("issued only for a UUID subject"),
                ),
                Role::Staff => Principal::Staff(subject.to_owned()),
            };
            assert_eq!(keys.verify(&token).ok(), Some(expected), "{token}");
        }
        Err(TokenError::CustomerSubjectNotUuid) => {
            assert_eq!(role, Role::Customer);
            assert!(Uuid::parse_str(subject).is_err());
        }
        Err(TokenError::EmptySubject) => assert!(subject.trim().is_empty()),
        Err(TokenError::LifetimeTooLong { ttl: refused, max }) => {
            assert_eq!(refused, ttl);
            assert!(ttl > max, "{ttl:?} refused although the maximum is {max:?}");
        }
        Err(TokenError::TtlTooLong(refused)) => {
            assert_eq!(refused, ttl);
            // The clock read after `issue`, so at least the one it added the TTL to.
            assert!(ttl.as_secs().checked_add(unix_now()).is_none(), "{ttl:?}");
        }
        Err(error) => panic!("issuing for {subject:?} with a TTL of {ttl:?} failed: {error}"),
    }
}

/// Seconds since the Unix epoch: the clock `verify` compares `exp` with.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or_default()
}
