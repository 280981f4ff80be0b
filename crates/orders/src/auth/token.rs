//! Signing and verifying tokens.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Principal, Role};

/// The claims of an `orders` token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Subject: the customer id (UUID) for customers.
    pub sub: String,
    /// Role.
    pub role: Role,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
}

/// Why a token was not accepted. HTTP 401.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not a valid, unexpired token signed with our secret.
    #[error("the bearer token is invalid or expired: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    /// A customer token whose subject is not a customer id.
    #[error("a customer token's subject must be the customer's UUID")]
    CustomerSubjectNotUuid,
    /// A TTL so long that the expiry does not fit the `exp` claim (seconds since 1970, a `u64`).
    #[error("a token cannot be valid for {0:?}: its expiry would be past the year 584 billion")]
    TtlTooLong(Duration),
}

/// The HS256 keys derived from the configured secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys(..)") // never print key material
    }
}

impl JwtKeys {
    /// Keys for `secret`.
    pub fn new(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// A signed token for `subject` with `role`, valid for `ttl`.
    pub fn issue(&self, subject: &str, role: Role, ttl: Duration) -> Result<String, TokenError> {
        if role == Role::Customer && Uuid::parse_str(subject).is_err() {
            return Err(TokenError::CustomerSubjectNotUuid);
        }
        let now = jsonwebtoken::get_current_timestamp();
        let exp = now
            .checked_add(ttl.as_secs())
            .ok_or(TokenError::TtlTooLong(ttl))?;
        let claims = Claims {
            sub: subject.to_owned(),
            role,
            iat: now,
            exp,
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// The caller a token names, if it is valid.
    pub fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)?.claims;
        if claims.role == Role::Customer && Uuid::parse_str(&claims.sub).is_err() {
            return Err(TokenError::CustomerSubjectNotUuid);
        }
        Ok(Principal {
            subject: claims.sub,
            role: claims.role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_token_verifies_to_its_principal() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef");
        let customer = Uuid::now_v7().to_string();
        let token = keys
            .issue(&customer, Role::Customer, Duration::from_secs(60))
            .unwrap();
        assert_eq!(
            keys.verify(&token).unwrap(),
            Principal {
                subject: customer,
                role: Role::Customer
            }
        );
    }

    #[test]
    fn a_token_signed_with_another_secret_is_rejected() {
        let token = JwtKeys::new(b"one secret, long enough to be ok")
            .issue("ops", Role::Staff, Duration::from_secs(60))
            .unwrap();
        assert!(
            JwtKeys::new(b"another secret, long enough too!")
                .verify(&token)
                .is_err()
        );
    }

    #[test]
    fn a_ttl_past_the_end_of_the_exp_claim_is_refused() {
        // Found by the fuzz target verify_token: `now + ttl` overflowed, a panic in debug builds
        // and, in release builds, an expiry in 1970 (a token that never worked).
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef");
        let ttl = Duration::from_secs(u64::MAX);
        assert!(matches!(
            keys.issue("ops", Role::Staff, ttl),
            Err(TokenError::TtlTooLong(refused)) if refused == ttl
        ));
        let century = Duration::from_secs(100 * 365 * 24 * 60 * 60);
        let token = keys.issue("ops", Role::Staff, century).unwrap();
        assert_eq!(keys.verify(&token).unwrap().subject, "ops");
    }

    #[test]
    fn customer_subjects_must_be_uuids() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef");
        assert!(matches!(
            keys.issue("alice", Role::Customer, Duration::from_secs(60)),
            Err(TokenError::CustomerSubjectNotUuid)
        ));
    }
}
