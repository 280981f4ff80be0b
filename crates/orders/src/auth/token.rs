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
    /// Not valid before, seconds since the epoch (checked when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// The longest lifetime of a token unless configured otherwise (`--token-max-ttl`): 30 days.
pub const DEFAULT_MAX_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Why a token was not accepted. HTTP 401.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not a valid, unexpired token signed with our secret.
    #[error("the bearer token is invalid or expired: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    /// A customer token whose subject is not a customer id.
    #[error("a customer token's subject must be the customer's UUID")]
    CustomerSubjectNotUuid,
    /// A subject that is empty or only whitespace names nobody.
    #[error("a token's subject must not be empty")]
    EmptySubject,
    /// A token valid for longer (from `iat` to `exp`) than the service allows.
    #[error("a token may be valid for at most {max:?}; this one would be for {ttl:?}")]
    LifetimeTooLong {
        /// The lifetime asked for (issuing) or found (verifying).
        ttl: Duration,
        /// The configured maximum.
        max: Duration,
    },
    /// A TTL so long that the expiry does not fit the `exp` claim (seconds since 1970, a `u64`).
    #[error("a token cannot be valid for {0:?}: its expiry would be past the year 584 billion")]
    TtlTooLong(Duration),
}

/// The HS256 keys derived from the configured secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    max_ttl: Duration,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys(..)") // never print key material
    }
}

impl JwtKeys {
    /// Keys for `secret`, accepting tokens valid for up to [`DEFAULT_MAX_TOKEN_TTL`].
    pub fn new(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            max_ttl: DEFAULT_MAX_TOKEN_TTL,
        }
    }

    /// The same keys, issuing and accepting tokens valid for at most `max_ttl`.
    pub fn with_max_ttl(mut self, max_ttl: Duration) -> Self {
        self.max_ttl = max_ttl;
        self
    }

    /// A signed token for `subject` with `role`, valid for `ttl` (at most the maximum).
    pub fn issue(&self, subject: &str, role: Role, ttl: Duration) -> Result<String, TokenError> {
        if subject.trim().is_empty() {
            return Err(TokenError::EmptySubject);
        }
        if role == Role::Customer && Uuid::parse_str(subject).is_err() {
            return Err(TokenError::CustomerSubjectNotUuid);
        }
        if ttl > self.max_ttl {
            return Err(TokenError::LifetimeTooLong {
                ttl,
                max: self.max_ttl,
            });
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
            nbf: Some(now),
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
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)?.claims;
        if claims.sub.trim().is_empty() {
            return Err(TokenError::EmptySubject);
        }
        let principal =
            Principal::parse(&claims.sub, claims.role).ok_or(TokenError::CustomerSubjectNotUuid)?;
        let lifetime = Duration::from_secs(claims.exp.saturating_sub(claims.iat));
        if lifetime > self.max_ttl {
            return Err(TokenError::LifetimeTooLong {
                ttl: lifetime,
                max: self.max_ttl,
            });
        }
        Ok(principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The console's keys are derived from the same secret; neither accepts the other's tokens.
    const MIX_SECRET: &[u8] = b"test-secret-that-is-long-enough-for-hs256";

    #[test]
    fn console_credentials_and_api_tokens_do_not_mix() {
        let console = operator_console::ConsoleKeys::derive(MIX_SECRET);
        let api = JwtKeys::new(MIX_SECRET);
        let staff_token = api
            .issue("ops", Role::Staff, Duration::from_secs(60))
            .unwrap();
        assert!(console.verify_session(&staff_token).is_err());
        assert!(console.verify_link(&staff_token).is_err());
        let session = console.issue_session("ops").unwrap();
        assert!(api.verify(&session).is_err());
        let other =
            operator_console::ConsoleKeys::derive(b"another secret that is long enough for hs256");
        assert!(other.verify_session(&session).is_err());
    }

    #[test]
    fn an_issued_token_verifies_to_its_principal() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef");
        let customer = Uuid::now_v7();
        let token = keys
            .issue(
                &customer.to_string(),
                Role::Customer,
                Duration::from_secs(60),
            )
            .unwrap();
        assert_eq!(keys.verify(&token).unwrap(), Principal::Customer(customer));
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
        // (Without a maximum: the default one refuses such a TTL before the sum.)
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef").with_max_ttl(Duration::MAX);
        let ttl = Duration::from_secs(u64::MAX);
        let century = Duration::from_secs(100 * 365 * 24 * 60 * 60);
        assert!(matches!(
            keys.issue("ops", Role::Staff, ttl),
            Err(TokenError::TtlTooLong(refused)) if refused == ttl
        ));
        let token = keys.issue("ops", Role::Staff, century).unwrap();
        assert_eq!(keys.verify(&token).unwrap().subject(), "ops");
    }

    #[test]
    fn customer_subjects_must_be_uuids() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef");
        assert!(matches!(
            keys.issue("alice", Role::Customer, Duration::from_secs(60)),
            Err(TokenError::CustomerSubjectNotUuid)
        ));
    }

    fn signed(keys: &JwtKeys, claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &keys.encoding).unwrap()
    }

    #[test]
    fn tokens_live_at_most_the_configured_maximum() {
        let day = Duration::from_secs(86_400);
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef").with_max_ttl(day);
        assert!(keys.issue("ops", Role::Staff, day).is_ok());
        let longer = day + Duration::from_secs(1);
        assert!(matches!(
            keys.issue("ops", Role::Staff, longer),
            Err(TokenError::LifetimeTooLong { ttl, max }) if ttl == longer && max == day
        ));
        // A token minted elsewhere with the same secret is held to the same rule.
        let now = jsonwebtoken::get_current_timestamp();
        let token = signed(
            &keys,
            &serde_json::json!({"sub": "ops", "role": "staff", "iat": now, "exp": now + 86_401}),
        );
        assert!(matches!(
            keys.verify(&token),
            Err(TokenError::LifetimeTooLong { .. })
        ));
        assert_eq!(DEFAULT_MAX_TOKEN_TTL, 30 * day);
    }

    #[test]
    fn not_before_is_checked_and_a_subject_is_required() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef");
        let now = jsonwebtoken::get_current_timestamp();
        let claims = |extra: serde_json::Value| {
            let mut claims =
                serde_json::json!({"sub": "ops", "role": "staff", "iat": now, "exp": now + 600});
            claims
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            claims
        };
        assert!(
            keys.verify(&signed(&keys, &claims(serde_json::json!({}))))
                .is_ok()
        );
        assert!(
            keys.verify(&signed(&keys, &claims(serde_json::json!({"nbf": now}))))
                .is_ok()
        );
        assert!(matches!(
            keys.verify(&signed(
                &keys,
                &claims(serde_json::json!({"nbf": now + 300}))
            )),
            Err(TokenError::Invalid(_))
        ));
        for blank in ["", "   ", "\t"] {
            assert!(matches!(
                keys.verify(&signed(&keys, &claims(serde_json::json!({"sub": blank})))),
                Err(TokenError::EmptySubject)
            ));
            assert!(matches!(
                keys.issue(blank, Role::Staff, Duration::from_secs(60)),
                Err(TokenError::EmptySubject)
            ));
        }
        let mut no_iat = claims(serde_json::json!({}));
        no_iat.as_object_mut().unwrap().remove("iat");
        assert!(keys.verify(&signed(&keys, &no_iat)).is_err());
    }

    #[test]
    fn a_token_minted_elsewhere_is_held_to_the_same_rules() {
        let day = Duration::from_secs(86_400);
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef").with_max_ttl(day);
        let now = jsonwebtoken::get_current_timestamp();
        // Exactly the maximum is allowed.
        let token = signed(
            &keys,
            &serde_json::json!({"sub": "ops", "role": "staff", "iat": now, "exp": now + 86_400}),
        );
        assert_eq!(keys.verify(&token).unwrap().subject(), "ops");
        let token = signed(
            &keys,
            &serde_json::json!({"sub": "alice", "role": "customer", "iat": now, "exp": now + 60}),
        );
        assert!(matches!(
            keys.verify(&token),
            Err(TokenError::CustomerSubjectNotUuid)
        ));
    }

    #[test]
    fn keys_never_show_their_secret() {
        let keys = JwtKeys::new(b"a secret that must stay hidden!!");
        assert_eq!(format!("{keys:?}"), "JwtKeys(..)");
    }
}
