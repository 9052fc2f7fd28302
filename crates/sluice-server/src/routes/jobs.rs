//! `/v1/jobs`: a job's state and progress, the list, cancellation, and a
//! live stream of progress and state changes (server-sent events).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sluice_store::{JobKind, JobState, Scope};

use crate::auth::Caller;
use crate::json;
use crate::problem::{ApiResult, Problem};
use crate::query::Query;
use crate::state::AppState;

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
pub async fn get(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let who = caller.require(Scope::Read)?;
    let job = st.db.job(&who.tenant_id, &id).await?;
    Ok(axum::Json(json::job(&job, &st.running)).into_response())
}

/// `GET /v1/jobs`.
pub async fn list(State(st): State<AppState>, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult<Response> {
    let who = caller.require(Scope::Read)?;
    let state = match q.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(JobState::parse(s).ok_or_else(|| {
            Problem::bad_request(format!(
                "unknown state {s:?} (queued, running, succeeded, failed, cancelled)"
            ))
        })?),
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::bad_request("limit must be 1..=1000"));
    }
    let jobs = st.db.jobs(&who.tenant_id, state, q.cursor.as_deref(), limit).await?;
    let next = (jobs.len() == limit as usize)
        .then(|| jobs.last().map(|j| j.id.clone()))
        .flatten();
    Ok(axum::Json(serde_json::json!({
        "jobs": jobs.iter().map(|j| json::job(j, &st.running)).collect::<Vec<_>>(),
        "next_cursor": next,
    }))
    .into_response())
}

/// `DELETE /v1/jobs/{id}`: cancels a queued or running job (a running one
/// stops within a chunk). A finished job answers 409.
pub async fn cancel(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let who = caller.require(Scope::Write)?;
    let before = st.db.job(&who.tenant_id, &id).await?;
    if before.state.is_terminal() {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "already_finished",
            format!("job {id} already {}", before.state.as_str()),
        ));
    }
    let job = st.db.cancel(&who.tenant_id, &id).await?;
    if let Some(r) = st.running.get(&id) {
        r.cancel.cancel();
    }
    tracing::info!(job = %id, tenant = %who.tenant_name, "job cancelled");
    Ok(axum::Json(json::job(&job, &st.running)).into_response())
}

/// `POST /v1/jobs/{id}/retry`: runs a failed or cancelled verify job again,
/// as a new job (202). An upload's data is not kept once its job failed or
/// was cancelled, so a process job answers 409 `not_retryable`: upload again.
pub async fn retry(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let who = caller.require(Scope::Write)?;
    let job = st.db.job(&who.tenant_id, &id).await?;
    if !matches!(job.state, JobState::Failed | JobState::Cancelled) {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "not_finished",
            format!(
                "job {id} is {}; only failed or cancelled jobs are retried",
                job.state.as_str()
            ),
        ));
    }
    match job.kind {
        JobKind::Verify => crate::routes::objects::verify(st, caller, &job.object_key).await,
        JobKind::Process => Err(Problem::new(
            StatusCode::CONFLICT,
            "not_retryable",
            "an upload's data is not kept after its job failed or was cancelled; upload it again",
        )),
    }
}

/// `GET /v1/jobs/{id}/events`: `progress` events while the job runs, a
/// `state` event on each change, and the stream ends after the final state.
pub async fn events(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let who = caller.require(Scope::Read)?;
    let first = st.db.job(&who.tenant_id, &id).await?;
    let tenant = who.tenant_id.clone();
    let stream = futures_util::stream::unfold(
        (
            st,
            tenant,
            id,
            None::<String>,
            None::<serde_json::Value>,
            false,
            first.state,
        ),
        |(st, tenant, id, last_state, last_progress, done, _)| async move {
            if done {
                return None;
            }
            if last_state.is_some() {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            let job = match st.db.job(&tenant, &id).await {
                Ok(j) => j,
                Err(_) => return None,
            };
            let body = json::job(&job, &st.running);
            let state = job.state.as_str().to_string();
            let progress = body.get("progress").cloned();
            let mut events = Vec::new();
            if last_state.as_deref() != Some(state.as_str()) {
                events.push(Event::default().event("state").data(body.to_string()));
            } else if progress != last_progress {
                events.push(Event::default().event("progress").data(body.to_string()));
            }
            let finished = job.state.is_terminal();
            let items: Vec<Result<Event, Infallible>> = events.into_iter().map(Ok).collect();
            Some((
                futures_util::stream::iter(items),
                (st, tenant, id, Some(state), progress, finished, job.state),
            ))
        },
    );
    use futures_util::StreamExt;
    Ok(Sse::new(stream.flatten())
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}
