//! `/healthz` (the process answers) and `/readyz` (database reachable,
//! storage writable, not shutting down).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sluice_service::Service;

use crate::problem::Problem;

/// `GET /healthz`.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`.
pub async fn readyz(State(st): State<Service>) -> Response {
    match st.readiness().await {
        Ok(()) => "ready\n".into_response(),
        Err(why) => Problem::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", why.to_string()).into_response(),
    }
}
