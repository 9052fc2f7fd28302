//! `/v1/jobs`: a job's state and progress, the list, cancellation, retry,
//! and a live stream of progress and state changes (server-sent events).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use sluice_service::Service;

use super::job_response;
use crate::api::{JobBody, JobList};
use crate::extract::{Authed, Query};
use crate::problem::ApiResult;

/// Query of `GET /v1/jobs`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Only jobs in this state.
    pub state: Option<String>,
    /// Most jobs (1..=1000, default 100).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `GET /v1/jobs/{id}`.
pub async fn get(State(st): State<Service>, Authed(caller): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    let job = st.job(&caller, &id).await?;
    Ok(axum::Json(JobBody::new(&job, st.progress(&job))).into_response())
}

/// `GET /v1/jobs`.
pub async fn list(
    State(st): State<Service>,
    Authed(caller): Authed,
    Query(q): Query<ListQuery>,
) -> ApiResult<Response> {
    let page = st
        .jobs(&caller, q.state.as_deref(), q.cursor.as_deref(), q.limit)
        .await?;
    Ok(axum::Json(JobList {
        jobs: page.items.iter().map(|j| JobBody::new(j, st.progress(j))).collect(),
        next_cursor: page.next_cursor,
    })
    .into_response())
}

/// `DELETE /v1/jobs/{id}`: cancels a queued or running job (a running one
/// stops within a chunk). A finished job answers 409.
pub async fn cancel(State(st): State<Service>, Authed(caller): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    let job = st.cancel_job(&caller, &id).await?;
    Ok(axum::Json(JobBody::new(&job, st.progress(&job))).into_response())
}

/// `POST /v1/jobs/{id}/retry`: runs a failed or cancelled verify job again,
/// as a new job (202); a process job answers 409 `not_retryable`.
pub async fn retry(State(st): State<Service>, Authed(caller): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    let job = st.retry_job(&caller, &id).await?;
    Ok(job_response(&st, StatusCode::ACCEPTED, &job))
}

/// `GET /v1/jobs/{id}/events`: `progress` events while the job runs, a
/// `state` event on each change, and the stream ends after the final state.
pub async fn events(State(st): State<Service>, Authed(caller): Authed, Path(id): Path<String>) -> ApiResult<Response> {
    // One poller per followed job on this node, however many follow it.
    let follower = st.follow_job(&caller, &id).await?;
    struct Follow {
        follower: sluice_service::jobs::follow::Follower,
        last_state: Option<String>,
        last_progress: Option<crate::api::ProgressBody>,
        done: bool,
    }
    let start = Follow {
        follower,
        last_state: None,
        last_progress: None,
        done: false,
    };
    let stream = futures_util::stream::unfold(start, |mut f| async move {
        if f.done {
            return None;
        }
        let (job, progress) = f.follower.next().await?;
        let body = JobBody::new(&job, progress);
        let data = serde_json::to_string(&body).unwrap_or_default();
        let mut events: Vec<Result<Event, Infallible>> = Vec::new();
        if f.last_state.as_deref() != Some(body.state.as_str()) {
            events.push(Ok(Event::default().event("state").data(data)));
        } else if f.last_progress != Some(body.progress) {
            events.push(Ok(Event::default().event("progress").data(data)));
        }
        f.done = body.is_finished();
        f.last_progress = Some(body.progress);
        f.last_state = Some(body.state);
        Some((futures_util::stream::iter(events), f))
    });
    Ok(Sse::new(stream.flatten())
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}
