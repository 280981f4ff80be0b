//! The response of a command, and the `ETag` every order response carries.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::dto::OrderResponse;

/// The response of an accepted command: JSON body, `ETag`, and `Location` for a creation.
pub(super) fn command_response(status: StatusCode, body: OrderResponse) -> Response {
    let (id, version) = (body.id, body.version);
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::CREATED
        && let Ok(location) = HeaderValue::from_str(&format!("/orders/{id}"))
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    with_etag(response, version)
}

pub(super) fn with_etag(mut response: Response, version: u64) -> Response {
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}
