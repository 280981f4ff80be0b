//! The console's doors: the session cookie read on every page, the CSRF check on every form,
//! and the headers every console answer carries.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cookie::{Cookie, SameSite};

use super::ConsoleState;
use super::pages::layout;
use super::session::{COOKIE, SESSION_TTL};

pub use crate::session::Staff;

/// No valid session: the login page, and nothing else, with 401.
#[derive(Debug)]
pub struct LoginRequired;

impl IntoResponse for LoginRequired {
    fn into_response(self) -> Response {
        let page = layout::login_page(None, None);
        secured((StatusCode::UNAUTHORIZED, page).into_response())
    }
}

impl FromRequestParts<ConsoleState> for Staff {
    type Rejection = LoginRequired;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        let value = session_cookie(&parts.headers).ok_or(LoginRequired)?;
        let session = state
            .console
            .keys
            .verify_session(&value)
            .map_err(|_| LoginRequired)?;
        let csrf = state.console.keys.csrf_token(&session);
        Ok(Self { session, csrf })
    }
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == COOKIE)
        .map(|cookie| cookie.value().to_owned())
}

/// Why a form was refused before it did anything.
#[derive(Debug)]
pub struct Forbidden(&'static str);

impl IntoResponse for Forbidden {
    fn into_response(self) -> Response {
        let page = layout::message_page("Refused", self.0);
        secured((StatusCode::FORBIDDEN, page).into_response())
    }
}

impl Staff {
    /// Refuses a form whose CSRF token is not this session's, or that comes from another
    /// origin. The cookie is `SameSite=Strict` as well; this holds without it.
    pub fn check_form(
        &self,
        state: &ConsoleState,
        headers: &HeaderMap,
        csrf: &str,
    ) -> Result<(), Forbidden> {
        if !same_origin(headers) {
            return Err(Forbidden("this form was sent from another site"));
        }
        if !state.console.keys.check_csrf(&self.session, csrf) {
            return Err(Forbidden(
                "this form's security token does not belong to your session; reload the page and try again",
            ));
        }
        Ok(())
    }
}

/// An `Origin` header, when the browser sends one, must name the host the form was posted to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest);
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// The session cookie for `value`: HttpOnly, SameSite=Strict, only under `/console`, and
/// `Secure` unless the console is reached on a loopback address (where browsers allow plain
/// HTTP; anywhere else the console belongs behind TLS).
pub fn session_cookie_header(value: &str, headers: &HeaderMap) -> Option<HeaderValue> {
    let cookie = Cookie::build((COOKIE, value.to_owned()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/console")
        .secure(!is_loopback(headers))
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(SESSION_TTL.as_secs()).unwrap_or(i64::MAX),
        ))
        .build();
    HeaderValue::from_str(&cookie.to_string()).ok()
}

/// A cookie that ends the session in the browser.
pub fn cleared_cookie_header(headers: &HeaderMap) -> Option<HeaderValue> {
    let cookie = Cookie::build((COOKIE, ""))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/console")
        .secure(!is_loopback(headers))
        .max_age(cookie::time::Duration::ZERO)
        .build();
    HeaderValue::from_str(&cookie.to_string()).ok()
}

fn is_loopback(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    matches!(name, "localhost" | "127.0.0.1" | "[::1]")
}

/// The headers of every console answer: no caching of pages, no framing, no referrer to other sites (a login
/// link's token must not leak in one), and only the console's own script and styles.
pub fn secured(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let fixed = [
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ];
    for (name, value) in fixed {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn a_form_from_another_origin_is_refused() {
        assert!(same_origin(&headers(&[("host", "ops.example:8080")])));
        assert!(same_origin(&headers(&[
            ("host", "ops.example:8080"),
            ("origin", "https://ops.example:8080")
        ])));
        assert!(!same_origin(&headers(&[
            ("host", "ops.example:8080"),
            ("origin", "https://evil.example")
        ])));
        assert!(!same_origin(&headers(&[("origin", "https://ops.example")])));
        assert!(!same_origin(&headers(&[
            ("host", "ops.example"),
            ("origin", "null")
        ])));
    }

    #[test]
    fn the_cookie_is_secure_except_on_loopback() {
        let local = session_cookie_header("v", &headers(&[("host", "127.0.0.1:8080")])).unwrap();
        let local = local.to_str().unwrap();
        assert!(
            local.contains("HttpOnly")
                && local.contains("SameSite=Strict")
                && local.contains("Path=/console")
        );
        assert!(!local.contains("Secure"));
        let remote = session_cookie_header("v", &headers(&[("host", "ops.example")])).unwrap();
        assert!(remote.to_str().unwrap().contains("Secure"));
        let tricky =
            session_cookie_header("v", &headers(&[("host", "localhost.evil.example")])).unwrap();
        assert!(tricky.to_str().unwrap().contains("Secure"));
    }

    #[test]
    fn the_session_is_read_from_its_cookie_among_others() {
        let map = headers(&[("cookie", "a=1; orders_console=abc.def; b=2")]);
        assert_eq!(session_cookie(&map).as_deref(), Some("abc.def"));
        assert_eq!(session_cookie(&headers(&[("cookie", "a=1")])), None);
    }
}
