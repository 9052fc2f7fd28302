//! `/v1/pipelines`: named per-tenant settings (compression, cipher, chunk
//! size, extra recipients). `default` always exists.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sluice_service::pipelines::PipelineChange;
use sluice_service::Service;

use crate::api::{PipelineBody, PipelineList, PipelineRequest};
use crate::extract::Authed;
use crate::problem::{ApiResult, Problem};

/// `PUT /v1/pipelines/{name}`.
pub async fn put(
    State(st): State<Service>,
    Authed(caller): Authed,
    Path(name): Path<String>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Response> {
    // Scope and name are checked before the body is read.
    caller.require(sluice_service::Scope::Write)?;
    sluice_service::pipelines::check_name(&name)?;
    // Any content type: `curl -d` sends a form type with JSON in it.
    let bytes = body.map_err(|e| Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", e.body_text()))?;
    let req: PipelineRequest = serde_json::from_slice(&bytes)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "invalid_json", format!("request body: {e}")))?;
    let change = PipelineChange {
        compress: req.compress,
        encrypt: req.encrypt,
        chunk_size: req.chunk_size,
        recipients: req.recipients,
    };
    let p = st.put_pipeline(&caller, &name, change).await?;
    Ok(axum::Json(PipelineBody::from(&p)).into_response())
}

/// `GET /v1/pipelines/{name}`.
pub async fn get(State(st): State<Service>, Authed(caller): Authed, Path(name): Path<String>) -> ApiResult<Response> {
    let p = st.pipeline(&caller, &name).await?;
    Ok(axum::Json(PipelineBody::from(&p)).into_response())
}

/// `DELETE /v1/pipelines/{name}`.
pub async fn delete(
    State(st): State<Service>,
    Authed(caller): Authed,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    st.delete_pipeline(&caller, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v1/pipelines`.
pub async fn list(State(st): State<Service>, Authed(caller): Authed) -> ApiResult<Response> {
    let list = st.pipelines(&caller).await?;
    Ok(axum::Json(PipelineList {
        pipelines: list.iter().map(PipelineBody::from).collect(),
    })
    .into_response())
}
