//! HS256 tokens (RFC 7515 and 7519) made and checked without jsonwebtoken, to judge what
//! `orders::auth::JwtKeys::verify` accepts.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// `base64url(header).base64url(claims).base64url(HMAC-SHA256(secret, the first two))`, whatever
/// bytes `header` and `claims` hold.
pub fn sign(secret: &[u8], header: &[u8], claims: &[u8]) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = URL_SAFE_NO_PAD.encode(mac(secret, &signing_input).finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// The header and claims of `token`, if it is three base64url segments whose last is the
/// HMAC-SHA256 of the first two under `secret`, and the first two are JSON. `None` otherwise.
pub fn signed_parts(secret: &[u8], token: &str) -> Option<(Value, Value)> {
    let mut segments = token.split('.');
    let (header, claims, signature) = (segments.next()?, segments.next()?, segments.next()?);
    if segments.next().is_some() {
        return None;
    }
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    mac(secret, &format!("{header}.{claims}"))
        .verify_slice(&signature)
        .ok()?;
    Some((json_segment(header)?, json_segment(claims)?))
}

fn mac(secret: &[u8], signing_input: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(signing_input.as_bytes());
    mac
}

fn json_segment(segment: &str) -> Option<Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).ok()?).ok()
}
