//! The OpenAPI document of the native API, kept beside the routes (a test
//! checks that it lists exactly the routes served).

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

/// The OpenAPI document.
pub const OPENAPI: &str = include_str!("openapi.json");

/// `GET /v1/openapi.json`.
pub async fn get() -> Response {
    let mut resp = OPENAPI.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
