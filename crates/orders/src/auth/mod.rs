//! Authentication (bearer JWTs, HS256) and the roles that authorise order operations.

mod principal;
mod secret;
mod token;

pub use principal::{Principal, Role, StaffOnly};
pub use secret::{SECRET_FILE, load_or_create_secret, load_secret};
pub use token::{Claims, DEFAULT_MAX_TOKEN_TTL, JwtKeys, TokenError};
