//! `/v1/uploads`: resumable uploads (the protocol is the service's
//! `uploads` module): open a session, send parts in any order, ask which
//! arrived, complete it into a job, or abort it.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sluice_service::uploads::{Completed, NewSession};
use sluice_service::Service;

use super::job_response;
use super::objects::{body_stream, declared_len};
use crate::api::{PartBody, SessionBody, SessionRequest};
use crate::extract::{json, Authed};
use crate::problem::ApiResult;

/// `POST /v1/uploads`: opens a session (201).
pub async fn create(
    State(st): State<Service>,
    Authed(caller): Authed,
    body: Result<axum::Json<SessionRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    let req = json(body)?;
    let upload = st
        .open_upload(
            &caller,
            NewSession {
                key: req.key,
                size: req.size,
                pipeline: req.pipeline,
                part_size: req.part_size,
                blake3: req.blake3,
            },
        )
        .await?;
    let mut resp = (StatusCode::CREATED, axum::Json(SessionBody::new(&upload, &[]))).into_response();
    if let Ok(loc) = header::HeaderValue::from_str(&format!("/v1/uploads/{}", upload.id)) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

/// `GET /v1/uploads/{id}`: the session and the parts that arrived.
pub async fn status(State(st): State<Service>, Authed(caller): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    let (upload, parts) = st.upload_status(&caller, &id).await?;
    Ok(axum::Json(SessionBody::new(&upload, &parts)).into_response())
}

/// `PUT /v1/uploads/{id}/parts/{n}`: stores part `n`.
pub async fn put_part(
    State(st): State<Service>,
    Authed(caller): Authed,
    Path((id, number)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let part = st
        .put_part(&caller, &id, &number, declared_len(&headers), body_stream(body))
        .await?;
    Ok(axum::Json(PartBody {
        number: part.number,
        size: part.size,
        blake3: part.digest,
    })
    .into_response())
}

/// `POST /v1/uploads/{id}/complete`: every part arrived → a queued job
/// (202, like an upload). Completing again answers the same job (200).
pub async fn complete(
    State(st): State<Service>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(match st.complete_upload(&caller, &id).await? {
        Completed::Queued(job) => job_response(&st, StatusCode::ACCEPTED, &job),
        Completed::Before(job) => job_response(&st, StatusCode::OK, &job),
    })
}

/// `DELETE /v1/uploads/{id}`: gives a session up and deletes its parts.
pub async fn abort(State(st): State<Service>, Authed(caller): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    st.abort_upload(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
