//! `/v1/pipelines`: named per-tenant settings (compression, cipher, chunk
//! size, extra recipients). `default` always exists.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sluice_engine::format::{ChunkSize, Compression, Recipient, Suite};
use sluice_store::{Pipeline, Scope};

use crate::auth::Caller;
use crate::json;
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

/// Most extra recipients per pipeline.
const MAX_RECIPIENTS: usize = 64;

/// Body of `PUT /v1/pipelines/{name}` (every field optional).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineBody {
    /// e.g. `zstd:3`, `lz4`, `none`.
    pub compress: Option<String>,
    /// `aes256gcm`, `chacha20poly1305` or `none`.
    pub encrypt: Option<String>,
    /// e.g. `8MiB`.
    pub chunk_size: Option<String>,
    /// Extra recipients (`sluice1…`).
    pub recipients: Option<Vec<String>>,
}

fn check_name(name: &str) -> Result<(), Problem> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_name",
            "pipeline names are 1 to 64 of a-z, 0-9, '-' and '_'",
        ));
    }
    Ok(())
}

/// Checks a pipeline's settings the way a job will use them.
pub fn validate(p: &Pipeline) -> Result<(), Problem> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        Problem::new(StatusCode::BAD_REQUEST, "invalid_pipeline", format!("{what}: {e}"))
    };
    Compression::parse(&p.compress).map_err(|e| bad("compress", &e))?;
    Suite::from_name(&p.encrypt).map_err(|e| bad("encrypt", &e))?;
    ChunkSize::parse(&p.chunk_size).map_err(|e| bad("chunk_size", &e))?;
    if p.recipients.len() > MAX_RECIPIENTS {
        return Err(bad("recipients", &format!("at most {MAX_RECIPIENTS}")));
    }
    for r in &p.recipients {
        Recipient::parse(r).map_err(|e| bad("recipients", &e))?;
    }
    if !p.recipients.is_empty() && p.encrypt == "none" {
        return Err(bad("recipients", &"an unencrypted pipeline cannot have recipients"));
    }
    Ok(())
}

/// `PUT /v1/pipelines/{name}`.
pub async fn put(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Response> {
    let who = caller.require(Scope::Write)?;
    check_name(&name)?;
    // Any content type: `curl -d` sends a form type with JSON in it.
    let bytes = body.map_err(|e| Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", e.body_text()))?;
    let body: PipelineBody = serde_json::from_slice(&bytes)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "invalid_json", format!("request body: {e}")))?;
    let d = Pipeline::default_named(&name);
    let p = Pipeline {
        name: name.clone(),
        compress: body.compress.unwrap_or(d.compress),
        encrypt: body.encrypt.unwrap_or(d.encrypt),
        chunk_size: body.chunk_size.unwrap_or(d.chunk_size),
        recipients: body.recipients.unwrap_or_default(),
    };
    validate(&p)?;
    st.db.put_pipeline(&who.tenant_id, &p).await?;
    Ok(axum::Json(json::pipeline(&p)).into_response())
}

/// `GET /v1/pipelines/{name}`.
pub async fn get(State(st): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<Response> {
    let who = caller.require(Scope::Read)?;
    let p = st.db.pipeline(&who.tenant_id, &name).await?;
    Ok(axum::Json(json::pipeline(&p)).into_response())
}

/// `DELETE /v1/pipelines/{name}`.
pub async fn delete(State(st): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<Response> {
    let who = caller.require(Scope::Write)?;
    st.db.delete_pipeline(&who.tenant_id, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v1/pipelines`.
pub async fn list(State(st): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let who = caller.require(Scope::Read)?;
    let list = st.db.pipelines(&who.tenant_id).await?;
    Ok(axum::Json(serde_json::json!({
        "pipelines": list.iter().map(json::pipeline).collect::<Vec<_>>()
    }))
    .into_response())
}
