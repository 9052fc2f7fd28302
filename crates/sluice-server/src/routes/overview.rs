//! `GET /v1/overview`: one tenant's summary for the dashboard's overview
//! (the service's `status::Overview`, as JSON).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use sluice_service::Service;

use crate::extract::Authed;
use crate::problem::ApiResult;

/// `GET /v1/overview`.
pub async fn get(State(st): State<Service>, Authed(caller): Authed) -> ApiResult<Response> {
    Ok(axum::Json(st.overview(&caller).await?).into_response())
}
