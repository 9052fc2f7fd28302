//! `/v1/buckets`: the tenant's S3 buckets, seen and set up natively — in
//! particular the pipeline a bucket stores its new objects through. Bucket
//! `B`'s object `K` is the native object `B/K` (`/v1/objects/B/K`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sluice_service::{Error, Service};

use crate::api::{BucketBody, BucketList, BucketRequest};
use crate::extract::Authed;
use crate::problem::{ApiResult, Problem};

/// `PUT /v1/buckets/{bucket}`: creates the bucket if the tenant has none
/// of that name (201), and sets its pipeline if the body names one
/// (`{"pipeline": "NAME"}`; `null`: the tenant's `default`).
pub async fn put(
    State(st): State<Service>,
    Authed(caller): Authed,
    Path(name): Path<String>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Response> {
    caller.require(sluice_service::Scope::Write)?;
    sluice_service::buckets::check_bucket_name(&name)?;
    let bytes = body.map_err(|e| Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", e.body_text()))?;
    let req: BucketRequest = if bytes.iter().all(u8::is_ascii_whitespace) {
        BucketRequest::default()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "invalid_json", format!("request body: {e}")))?
    };
    // The pipeline is checked before anything is created.
    if let Some(Some(p)) = &req.pipeline {
        st.pipeline(&caller, p).await?;
    }
    let (status, mut bucket) = match st.bucket(&caller, &name).await {
        Ok(b) => (StatusCode::OK, b),
        Err(Error::NotFound(_)) => (StatusCode::CREATED, st.create_bucket(&caller, &name).await?),
        Err(e) => return Err(e.into()),
    };
    if let Some(pipeline) = &req.pipeline {
        bucket = st.set_bucket_pipeline(&caller, &name, pipeline.as_deref()).await?;
    }
    Ok((status, axum::Json(BucketBody::from(&bucket))).into_response())
}

/// `GET /v1/buckets/{bucket}`.
pub async fn get(State(st): State<Service>, Authed(caller): Authed, Path(name): Path<String>) -> ApiResult<Response> {
    let b = st.bucket(&caller, &name).await?;
    Ok(axum::Json(BucketBody::from(&b)).into_response())
}

/// `DELETE /v1/buckets/{bucket}`: an empty bucket only (409
/// `bucket_not_empty` otherwise).
pub async fn delete(
    State(st): State<Service>,
    Authed(caller): Authed,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    st.delete_bucket(&caller, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v1/buckets`.
pub async fn list(State(st): State<Service>, Authed(caller): Authed) -> ApiResult<Response> {
    let list = st.buckets(&caller).await?;
    Ok(axum::Json(BucketList {
        buckets: list.iter().map(BucketBody::from).collect(),
    })
    .into_response())
}
