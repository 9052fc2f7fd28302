//! `/healthz` (the process answers), `/readyz` (database reachable, storage
//! writable) and the OpenAPI document.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::problem::Problem;
use crate::state::AppState;

/// The OpenAPI document, kept beside the routes (a test checks they agree).
pub const OPENAPI: &str = include_str!("../openapi.json");

/// `GET /healthz`.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`.
pub async fn readyz(State(st): State<AppState>) -> Response {
    if let Err(e) = st.db.ping().await {
        tracing::warn!(error = %e, "not ready: database");
        return Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "database unreachable").into_response();
    }
    if !st.objects.available() {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "object store failing (circuit breaker open)",
        )
        .into_response();
    }
    if let Err(e) = st.objects.check_writable().await {
        tracing::warn!(error = %e, "not ready: object store");
        return Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "storage not writable").into_response();
    }
    if st.shutting_down.load(std::sync::atomic::Ordering::Relaxed) {
        return Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "shutting down").into_response();
    }
    "ready\n".into_response()
}

/// `GET /v1/openapi.json`.
pub async fn openapi() -> Response {
    let mut resp = OPENAPI.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
