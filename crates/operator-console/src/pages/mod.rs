//! One file per page of the console.

pub mod feed;
pub mod health;
pub mod layout;
pub mod login;
pub mod operations;
pub mod order;
pub mod orders;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Any other path under `/console`.
pub async fn not_found() -> Response {
    let page = layout::message_page("Not found", "There is no such page in the console.");
    (StatusCode::NOT_FOUND, page).into_response()
}
