//! A job's life: submitted (`submit.rs`), claimed and run
//! (`dispatcher.rs`, one attempt at a time: `attempt.rs`), or run
//! while its upload streams in (`streamed.rs`); its outcome recorded with
//! fencing (`record.rs`); what it leaves behind reaped (`reaper.rs`).
//! Failures are one table, [`JobError`]. Here too: what a caller may do
//! with jobs (read, list, cancel, retry).

pub(crate) mod attempt;
pub(crate) mod dispatcher;
mod error;
pub mod follow;
pub(crate) mod group_commit;
pub(crate) mod reaper;
pub(crate) mod record;
pub(crate) mod running;
pub(crate) mod streamed;
pub(crate) mod submit;

pub use error::JobError;
pub use sluice_store::{Job, JobKind, JobProgress, JobState};

use std::time::Duration;

use sluice_store::Scope;

use crate::auth::Caller;
use crate::error::Conflict;
use crate::{Error, Result, Service};

/// Most items a listing page holds.
pub const MAX_PAGE: u32 = 1000;
/// Items a listing page holds unless the caller asks for another number.
pub const DEFAULT_PAGE: u32 = 100;

/// A page of a listing: its items, and the cursor of the next page if
/// there may be one.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The items, in order.
    pub items: Vec<T>,
    /// Where the next page starts (`None`: this was the last).
    pub next_cursor: Option<String>,
}

/// The page size asked for, checked.
pub(crate) fn page_size(limit: Option<u32>) -> Result<u32> {
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if (1..=MAX_PAGE).contains(&limit) {
        Ok(limit)
    } else {
        Err(Error::BadRequest(format!("limit must be 1..={MAX_PAGE}")))
    }
}

/// The page of `items` of size `limit`, whose cursor is its last item's.
pub(crate) fn page<T>(items: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> String) -> Page<T> {
    let next_cursor = (items.len() == limit as usize)
        .then(|| items.last().map(cursor_of))
        .flatten();
    Page { items, next_cursor }
}

/// Why a finished job did not succeed, as recorded.
pub fn failure_of(job: &Job) -> JobError {
    if job.state == JobState::Cancelled {
        return JobError::Cancelled("the job was cancelled".into());
    }
    JobError::from_stored(
        job.error_code.as_deref().unwrap_or(""),
        job.error.as_deref().unwrap_or("no detail"),
    )
}

impl Service {
    /// One of the caller's jobs.
    pub async fn job(&self, caller: &Caller, id: &str) -> Result<Job> {
        let who = caller.require(Scope::Read)?;
        Ok(self.db.job(&who.tenant_id, id).await?)
    }

    /// The caller's jobs, newest first, optionally only those in `state`.
    pub async fn jobs(
        &self,
        caller: &Caller,
        state: Option<&str>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<Job>> {
        let who = caller.require(Scope::Read)?;
        let state = match state {
            None | Some("") => None,
            Some(s) => Some(JobState::parse(s).ok_or_else(|| {
                Error::BadRequest(format!(
                    "unknown state {s:?} (queued, running, succeeded, failed, cancelled)"
                ))
            })?),
        };
        let limit = page_size(limit)?;
        let jobs = self.db.jobs(&who.tenant_id, state, cursor, limit).await?;
        Ok(page(jobs, limit, |j| j.id.clone()))
    }

    /// A job's progress: live if it runs on this node, else as last
    /// recorded.
    pub fn progress(&self, job: &Job) -> JobProgress {
        match self.running.get(&job.id) {
            Some(r) => dispatcher::progress_of(&r.progress),
            None => job.progress,
        }
    }

    /// Cancels a queued or running job (a running one stops within a
    /// chunk); a finished one is a conflict.
    pub async fn cancel_job(&self, caller: &Caller, id: &str) -> Result<Job> {
        let who = caller.require(Scope::Write)?;
        let before = self.db.job(&who.tenant_id, id).await?;
        if before.state.is_terminal() {
            return Err(Error::Conflict {
                kind: Conflict::AlreadyFinished,
                detail: format!("job {id} already {}", before.state.as_str()),
            });
        }
        let job = self.db.cancel(&who.tenant_id, id).await?;
        if let Some(r) = self.running.get(id) {
            r.cancel.cancel();
        }
        tracing::info!(job = %id, tenant = %who.tenant_name, "job cancelled");
        Ok(job)
    }

    /// Runs a failed or cancelled verify job again, as a new job. An
    /// upload's data is not kept once its job failed or was cancelled, so
    /// a process job cannot be retried: the client uploads again.
    pub async fn retry_job(&self, caller: &Caller, id: &str) -> Result<Job> {
        let who = caller.require(Scope::Write)?;
        let job = self.db.job(&who.tenant_id, id).await?;
        if !matches!(job.state, JobState::Failed | JobState::Cancelled) {
            return Err(Error::Conflict {
                kind: Conflict::NotFinished,
                detail: format!(
                    "job {id} is {}; only failed or cancelled jobs are retried",
                    job.state.as_str()
                ),
            });
        }
        match job.kind {
            JobKind::Verify => self.verify_object(caller, &job.object_key).await,
            JobKind::Process => Err(Error::Conflict {
                kind: Conflict::NotRetryable,
                detail: "an upload's data is not kept after its job failed or was cancelled; upload it again".into(),
            }),
        }
    }

    /// Waits until `id` finished: the job if it succeeded, its failure if
    /// not.
    pub(crate) async fn wait_for_job(&self, tenant_id: &str, id: &str) -> Result<Job> {
        loop {
            let job = self.db.job(tenant_id, id).await?;
            if job.state.is_terminal() {
                if job.state == JobState::Succeeded {
                    return Ok(job);
                }
                return Err(Error::Job {
                    job: Some(job.id.clone()),
                    error: failure_of(&job),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
