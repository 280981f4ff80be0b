//! Signatures per the Standard Webhooks specification (<https://www.standardwebhooks.com>), so
//! that a receiver verifies a delivery with that specification's libraries.
//!
//! A delivery carries `webhook-id` (the event's id: the same on every retry, the receiver's
//! dedupe key), `webhook-timestamp` (seconds since the epoch, when it was sent) and
//! `webhook-signature`: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one per secret
//! that is valid, separated by spaces (during a rotation, the new secret's and the old one's).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of a secret's text form.
const PREFIX: &str = "whsec_";

/// Bytes of a generated secret (the specification asks for 24 to 64).
const SECRET_LEN: usize = 32;

/// An endpoint's signing secret. Its text form (`whsec_` and base64) is shown once, when it is
/// generated; `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(Vec<u8>);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(..)")
    }
}

impl SigningSecret {
    /// A fresh random secret.
    pub fn generate() -> anyhow::Result<Self> {
        let mut bytes = vec![0; SECRET_LEN];
        getrandom::fill(&mut bytes)
            .map_err(|e| anyhow::anyhow!("the system's random source failed: {e}"))?;
        Ok(Self(bytes))
    }

    /// The secret of its raw bytes (as unwrapped from storage).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The raw bytes (to wrap for storage; never log them).
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The text form a receiver configures: `whsec_<base64>`.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Option<Self> {
        STANDARD
            .decode(text.strip_prefix(PREFIX).unwrap_or(text))
            .ok()
            .map(Self)
    }

    /// `v1,<signature>` of a message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC takes a key of any length.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts any key");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header's value: one signature per secret, space-separated.
pub fn signature_header(
    secrets: &[&SigningSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|secret| secret.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the specification's reference libraries.
    #[test]
    fn signs_the_specifications_example() {
        let secret =
            SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("a secret");
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_are_random_round_trip_and_do_not_print() {
        let a = SigningSecret::generate().expect("random");
        let b = SigningSecret::generate().expect("random");
        assert_ne!(a, b);
        assert_eq!(a.bytes().len(), SECRET_LEN);
        assert!(a.expose().starts_with("whsec_"));
        assert_eq!(SigningSecret::parse(&a.expose()), Some(a.clone()));
        assert_eq!(format!("{a:?}"), "SigningSecret(..)");
    }

    #[test]
    fn a_rotation_signs_with_both_secrets() {
        let old = SigningSecret::from_bytes(vec![1; 32]);
        let new = SigningSecret::from_bytes(vec![2; 32]);
        let header = signature_header(&[&new, &old], "e", 7, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(
            parts,
            vec![new.sign("e", 7, b"{}"), old.sign("e", 7, b"{}")]
        );
        assert_ne!(parts[0], parts[1]);
    }
}
