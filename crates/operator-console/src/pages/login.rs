//! Signing in with a one-time link, and signing out.
//!
//! Opening a link shows a button; only pressing it (a POST) uses the link, so a mail scanner or
//! a browser's prefetch that opens the link does not burn it.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::layout;
use crate::ConsoleState;
use crate::guard::{self, Staff};
use crate::links::UseError;

/// The link's query, or the sign-in form.
#[derive(Debug, Deserialize)]
pub struct LinkToken {
    token: Option<String>,
}

/// `GET /console/login?token=…`: the sign-in button (nothing is used yet).
pub async fn show(Query(query): Query<LinkToken>) -> Response {
    layout::login_page(query.token.as_deref(), None).into_response()
}

/// `POST /console/login`: uses the link and starts a session.
pub async fn sign_in(
    State(state): State<ConsoleState>,
    headers: HeaderMap,
    Form(form): Form<LinkToken>,
) -> Response {
    let refused = |status: StatusCode, why: &str| {
        (status, layout::login_page(None, Some(why))).into_response()
    };
    let Some(token) = form.token.filter(|t| !t.is_empty()) else {
        return refused(StatusCode::BAD_REQUEST, "The form carried no link.");
    };
    let keys = &state.console.keys;
    let link = match keys.verify_link(&token) {
        Ok(link) => link,
        Err(error) => return refused(StatusCode::UNAUTHORIZED, &error.to_string()),
    };
    match state.console.links.use_once(&link).await {
        Ok(()) => {}
        Err(UseError::Refused(error)) => {
            tracing::warn!(subject = %link.subject, link_id = %link.id, "a console link was presented again");
            return refused(StatusCode::UNAUTHORIZED, &error.to_string());
        }
        Err(UseError::Database(error)) => {
            tracing::error!(%error, "cannot record a console link's use");
            return refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "The database did not answer; try the link again in a moment.",
            );
        }
    }
    let Ok(session) = keys.issue_session(&link.subject) else {
        return refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Could not start a session.",
        );
    };
    let Some(cookie) = guard::session_cookie_header(&session, &headers) else {
        return refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Could not start a session.",
        );
    };
    tracing::info!(subject = %link.subject, link_id = %link.id, "console session started");
    let mut response = Redirect::to("/console/orders").into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

/// The sign-out form.
#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    csrf: String,
}

/// `POST /console/logout`: forgets the session in the browser.
pub async fn sign_out(
    State(state): State<ConsoleState>,
    staff: Staff,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Err(refused) = staff.check_form(&state, &headers, &form.csrf) {
        return refused.into_response();
    }
    let mut response = (
        StatusCode::OK,
        layout::message_page(
            "Signed out",
            "You are signed out. Ask for a new link to come back.",
        ),
    )
        .into_response();
    if let Some(cookie) = guard::cleared_cookie_header(&headers) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}
