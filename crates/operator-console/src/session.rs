//! Who may use the console: one-time login links, the session cookie and CSRF tokens.
//!
//! All three are signed with a key derived from the token secret for the console alone
//! (HMAC-SHA256 of the secret and a label), so a console credential is never an API token and
//! an API token is never a console credential, whatever their claims say.

use std::time::Duration;

use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

/// Name of the session cookie.
pub const COOKIE: &str = "orders_console";

/// How long a session lasts after login.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 60 * 60);

/// How long a login link stays valid unless asked otherwise.
pub const DEFAULT_LINK_TTL: Duration = Duration::from_secs(5 * 60);

/// The longest a login link may stay valid.
pub const MAX_LINK_TTL: Duration = Duration::from_secs(15 * 60);

/// The label the console's key is derived under; a new label invalidates every link and session.
const KEY_LABEL: &[u8] = b"orders/console/v1";

/// What a signed console credential is for: a link is never a session and a session never a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Purpose {
    Login,
    Session,
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The staff member (e.g. `ops`): recorded as the user of every command sent from the console.
    sub: String,
    /// Unique per link or session: a link's is how its one use is recorded.
    jti: Uuid,
    purpose: Purpose,
    iat: u64,
    exp: u64,
}

/// Why a link or session was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleAuthError {
    /// Not signed by this service's console key, malformed, expired or for another purpose.
    #[error(
        "the link or session is invalid or expired; ask for a new link with `orders console-link`"
    )]
    Invalid,
    /// A link used before.
    #[error("this login link was used already; ask for a new one with `orders console-link`")]
    Used,
    /// A subject that names nobody.
    #[error("a console user's name must not be empty")]
    EmptySubject,
    /// A link asked to live longer than [`MAX_LINK_TTL`].
    #[error("a login link may be valid for at most {MAX_LINK_TTL:?}, not {0:?}")]
    LinkTooLong(Duration),
}

/// A staff member logged in to the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The staff member's name.
    pub subject: String,
    /// The session's id (what its CSRF token is bound to).
    pub id: Uuid,
}

/// A verified, not yet used, login link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Who it logs in.
    pub subject: String,
    /// Its id, recorded when it is used.
    pub id: Uuid,
    /// When it stops working (seconds since the epoch).
    pub expires_at: u64,
}

/// The console's signing key.
#[derive(Clone)]
pub struct ConsoleKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    mac: [u8; 32],
}

impl std::fmt::Debug for ConsoleKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConsoleKeys(..)") // never print key material
    }
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length.
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(message);
    mac.finalize().into_bytes().into()
}

impl ConsoleKeys {
    /// The console's key for the service's token `secret`.
    pub fn derive(secret: &[u8]) -> Self {
        let key = hmac(secret, KEY_LABEL);
        Self {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            mac: hmac(&key, b"csrf"),
        }
    }

    fn sign(
        &self,
        subject: &str,
        purpose: Purpose,
        ttl: Duration,
    ) -> Result<String, ConsoleAuthError> {
        if subject.trim().is_empty() {
            return Err(ConsoleAuthError::EmptySubject);
        }
        let now = jsonwebtoken::get_current_timestamp();
        let claims = Claims {
            sub: subject.to_owned(),
            jti: Uuid::now_v7(),
            purpose,
            iat: now,
            exp: now.saturating_add(ttl.as_secs()),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|_| ConsoleAuthError::Invalid)
    }

    fn open(&self, token: &str, purpose: Purpose) -> Result<Claims, ConsoleAuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iat", "sub", "jti"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| ConsoleAuthError::Invalid)?
            .claims;
        if claims.purpose != purpose || claims.sub.trim().is_empty() {
            return Err(ConsoleAuthError::Invalid);
        }
        Ok(claims)
    }

    /// A login link's token for `subject`, valid for `ttl` (at most [`MAX_LINK_TTL`]) and once.
    pub fn issue_link(&self, subject: &str, ttl: Duration) -> Result<String, ConsoleAuthError> {
        if ttl > MAX_LINK_TTL {
            return Err(ConsoleAuthError::LinkTooLong(ttl));
        }
        self.sign(subject, Purpose::Login, ttl)
    }

    /// The link `token` names, if it is one of ours and unexpired (whether it was used is the
    /// [`LinkTable`](super::LinkTable)'s to say).
    pub fn verify_link(&self, token: &str) -> Result<Link, ConsoleAuthError> {
        let claims = self.open(token, Purpose::Login)?;
        Ok(Link {
            subject: claims.sub,
            id: claims.jti,
            expires_at: claims.exp,
        })
    }

    /// A new session for `subject`: the cookie's value.
    pub fn issue_session(&self, subject: &str) -> Result<String, ConsoleAuthError> {
        self.sign(subject, Purpose::Session, SESSION_TTL)
    }

    /// The session a cookie's value names.
    pub fn verify_session(&self, token: &str) -> Result<Session, ConsoleAuthError> {
        let claims = self.open(token, Purpose::Session)?;
        Ok(Session {
            subject: claims.sub,
            id: claims.jti,
        })
    }

    /// The CSRF token of `session`, which every form of the session carries.
    pub fn csrf_token(&self, session: &Session) -> String {
        hex::encode(hmac(&self.mac, session.id.as_bytes()))
    }

    /// Whether `token` is `session`'s CSRF token (compared in constant time).
    pub fn check_csrf(&self, session: &Session, token: &str) -> bool {
        let Ok(bytes) = hex::decode(token) else {
            return false;
        };
        let Ok(mut mac) = HmacSha256::new_from_slice(&self.mac) else {
            return false;
        };
        mac.update(session.id.as_bytes());
        mac.verify_slice(&bytes).is_ok()
    }
}

/// A request from a logged-in staff member, with the CSRF token its forms carry.
#[derive(Debug, Clone)]
pub struct Staff {
    /// The session.
    pub session: Session,
    /// The session's CSRF token.
    pub csrf: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test-secret-that-is-long-enough-for-hs256";

    #[test]
    fn a_link_verifies_once_issued_and_is_not_a_session() {
        let keys = ConsoleKeys::derive(SECRET);
        let link = keys.issue_link("ops", DEFAULT_LINK_TTL).unwrap();
        assert_eq!(keys.verify_link(&link).unwrap().subject, "ops");
        assert!(keys.verify_session(&link).is_err());
        let session = keys.issue_session("ops").unwrap();
        assert!(keys.verify_link(&session).is_err());
        assert_eq!(keys.verify_session(&session).unwrap().subject, "ops");
    }

    #[test]
    fn an_expired_link_is_refused() {
        let keys = ConsoleKeys::derive(SECRET);
        let link = keys.issue_link("ops", Duration::ZERO).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert!(matches!(
            keys.verify_link(&link),
            Err(ConsoleAuthError::Invalid)
        ));
    }

    #[test]
    fn links_are_short_lived_and_name_someone() {
        let keys = ConsoleKeys::derive(SECRET);
        assert!(matches!(
            keys.issue_link("ops", MAX_LINK_TTL + Duration::from_secs(1)),
            Err(ConsoleAuthError::LinkTooLong(_))
        ));
        assert!(matches!(
            keys.issue_link(" ", DEFAULT_LINK_TTL),
            Err(ConsoleAuthError::EmptySubject)
        ));
    }

    #[test]
    fn a_csrf_token_belongs_to_its_session() {
        let keys = ConsoleKeys::derive(SECRET);
        let one = keys
            .verify_session(&keys.issue_session("ops").unwrap())
            .unwrap();
        let two = keys
            .verify_session(&keys.issue_session("ops").unwrap())
            .unwrap();
        let token = keys.csrf_token(&one);
        assert!(keys.check_csrf(&one, &token));
        assert!(!keys.check_csrf(&two, &token));
        assert!(!keys.check_csrf(&one, "not hex"));
        assert!(!keys.check_csrf(&one, ""));
    }
}
