//! Authentication (bearer JWTs, HS256) and the roles that authorise order operations.

mod principal;
mod secret;
mod token;

pub use principal::{Principal, Role};
pub use secret::load_or_create_secret;
pub use token::{Claims, JwtKeys, TokenError};
