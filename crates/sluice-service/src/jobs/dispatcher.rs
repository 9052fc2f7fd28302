//! The dispatcher: claims as many queued jobs as this node has free job
//! slots (in one transaction), runs each attempt on its own task (the
//! engine's CPU work on its pool, never on the async workers), renews each
//! lease while it runs, and records the outcome — fenced, so a job is
//! stored once.
//!
//! Failures are sorted by [`JobError::is_transient`]: storage failures are
//! retried with exponential backoff and jitter up to the job's attempt
//! limit (without using one up while the store's breaker is open); the
//! rest fail at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_engine::{CancelToken, Progress};
use sluice_store::{Fenced, Job, JobKind, JobProgress, JobState};
use tokio::task::JoinHandle;

use super::attempt::Outcome;
use super::record::{backoff_ms, container_of};
use super::running::RunningJob;
use super::JobError;
use crate::telemetry::JobEnd;
use crate::Service;

/// Starts the dispatcher. It stops claiming once shutdown begins; the
/// handle finishes when the jobs it started have.
pub(crate) fn start(st: &Service) -> JoinHandle<()> {
    let st = st.clone();
    tokio::spawn(async move { dispatch(st).await })
}

async fn dispatch(st: Service) {
    let slots = Arc::clone(&st.job_slots);
    let mut tasks = tokio::task::JoinSet::new();
    let mut backoff = Duration::from_millis(100);
    loop {
        while tasks.try_join_next().is_some() {}
        if st.is_shutting_down() {
            break;
        }
        // Wait for a free slot (or shutdown).
        let first = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = st.job_queued.notified() => continue,
        };
        // While the object store's breaker is open, jobs stay queued
        // instead of failing against it.
        if !st.objects.available() {
            drop(first);
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        // While requests crowd in, queued work runs one job at a time: the
        // request path comes first, the backlog catches up when it calms.
        let busy = st.config.busy_requests;
        let running = st.config.max_running_jobs.saturating_sub(slots.available_permits() + 1);
        if busy > 0 && running >= 1 && st.short_requests_in_flight() > busy {
            drop(first);
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let mut permits = vec![first];
        if !(busy > 0 && st.short_requests_in_flight() > busy) {
            while let Ok(p) = Arc::clone(&slots).try_acquire_owned() {
                permits.push(p);
            }
        }
        let lease_ms = st.config.job_lease.as_millis() as i64;
        match st.db.claim(permits.len() as u32, lease_ms).await {
            Ok(jobs) if !jobs.is_empty() => {
                backoff = Duration::from_millis(100);
                for job in jobs {
                    let Some(permit) = permits.pop() else { break };
                    let st = st.clone();
                    tasks.spawn(async move {
                        run_job(&st, job).await;
                        drop(permit);
                    });
                }
            }
            Ok(_) => {
                drop(permits);
                tokio::select! {
                    _ = st.job_queued.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            Err(e) => {
                drop(permits);
                tracing::warn!(error = %e, "claiming jobs failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// A job's counters as the queue stores them.
pub(crate) fn progress_of(p: &Progress) -> JobProgress {
    JobProgress {
        bytes_in: p.bytes_in() as i64,
        bytes_out: p.bytes_out() as i64,
        chunks: p.chunks() as i64,
    }
}

#[tracing::instrument(name = "job", skip_all, fields(id = %job.id, tenant = %job.tenant_id, attempt = job.attempts))]
async fn run_job(st: &Service, job: Job) {
    let started = Instant::now();
    if job.counted_attempts() > job.max_attempts {
        let error = JobError::AttemptsExhausted(format!("gave up after {} attempts", job.max_attempts));
        let _ = st.record_failure(&job, &error, None).await;
        st.note_end(&job, JobEnd::Failed, Some(&error), started, &JobProgress::default());
        tracing::warn!("{error}");
        return;
    }
    tracing::info!(kind = job.kind.as_str(), object = %job.object_key, "job started");
    let registered = st.running.register(&job.id);
    let RunningJob { cancel, progress } = registered.job.clone();
    let beat = heartbeat(st, &job, &cancel, &progress);
    let container = container_of(&job);
    let outcome = match job.kind {
        JobKind::Process => {
            let location = container.as_deref().unwrap_or_default();
            st.process_staged(&job, location, cancel.clone(), Arc::clone(&progress))
                .await
        }
        JobKind::Verify => st.verify_stored(&job, cancel.clone(), Arc::clone(&progress)).await,
    };
    drop(beat);
    let done = progress_of(&progress);
    drop(registered);
    let container = container.as_deref();
    match outcome {
        Outcome::Done(object) => succeeded(st, &job, done, object, None, container, started).await,
        Outcome::DoneSmall(object, bytes) => {
            succeeded(st, &job, done, Some(object), Some(bytes), container, started).await
        }
        Outcome::Failed(error) if error.is_transient() => {
            st.discard(container).await;
            if !st.objects.available() {
                // The store is down (breaker open): wait it out in the
                // queue, without using up an attempt.
                let delay = backoff_ms(job.storage_waits + 1);
                let _ = st.db.requeue_waiting(&job, delay, error.detail()).await;
                st.note_end(&job, JobEnd::Retried, None, started, &done);
                tracing::info!(error = %error, retry_in_ms = delay, "object store unavailable; job waits");
            } else if job.counted_attempts() >= job.max_attempts {
                let error = JobError::Unavailable(format!("{} (after {} attempts)", error.detail(), job.attempts));
                let _ = st.record_failure(&job, &error, None).await;
                st.note_end(&job, JobEnd::Failed, Some(&error), started, &done);
                tracing::warn!(error = %error, "job failed after its last attempt");
            } else {
                let delay = backoff_ms(job.counted_attempts());
                let _ = st.db.requeue(&job, delay, Some(error.detail())).await;
                st.note_end(&job, JobEnd::Retried, None, started, &done);
                tracing::info!(error = %error, retry_in_ms = delay, "job will be retried");
            }
        }
        Outcome::Failed(error) => {
            let _ = st.record_failure(&job, &error, container).await;
            st.note_end(&job, JobEnd::Failed, Some(&error), started, &done);
            tracing::warn!(code = error.code(), error = %error, "job failed");
        }
        Outcome::Stopped => {
            st.discard(container).await;
            st.note_end(&job, JobEnd::Stopped, None, started, &done);
            if st.is_shutting_down() {
                // Released for another worker (or this node after restart).
                let _ = st.db.requeue(&job, 0, None).await;
                tracing::info!("job released at shutdown");
            } else {
                // Cancelled by a user (the row already says so) or lease lost.
                if let Ok(now) = st.db.job(&job.tenant_id, &job.id).await {
                    if now.state == JobState::Cancelled {
                        st.release_staging(&job).await;
                    }
                }
                tracing::info!("job stopped");
            }
        }
    }
}

/// Renews `job`'s lease every third of it with its progress, and cancels
/// it once the lease is lost or the job was cancelled; aborted when the
/// returned guard is dropped.
/// Records an attempt's success (a small object's through the group
/// commit, with its container).
async fn succeeded(
    st: &Service,
    job: &Job,
    done: JobProgress,
    object: Option<sluice_store::ObjectInfo>,
    small: Option<bytes::Bytes>,
    container: Option<&str>,
    started: Instant,
) {
    match st.commit_success(job, done, object.as_ref(), small).await {
        Ok(Fenced::Done(_)) => {
            st.note_end(job, JobEnd::Succeeded, None, started, &done);
            tracing::info!(bytes_in = done.bytes_in, bytes_out = done.bytes_out, "job succeeded");
        }
        Ok(Fenced::Lost) => {
            tracing::info!("job finished after losing its lease or being cancelled; result discarded");
            st.discard(container).await;
        }
        Err(e) => {
            // The container stays (see `commit_success`); unless the
            // commit landed, the lease expires and the job runs again.
            tracing::warn!(error = %e, "recording success failed; the job will be retried unless it was recorded");
        }
    }
}

pub(crate) fn heartbeat(st: &Service, job: &Job, cancel: &CancelToken, progress: &Arc<Progress>) -> AbortOnDrop {
    let st = st.clone();
    let job = job.clone();
    let cancel = cancel.clone();
    let progress = Arc::clone(progress);
    AbortOnDrop(tokio::spawn(async move {
        let lease_ms = st.config.job_lease.as_millis() as i64;
        let every = st.config.job_lease / 3;
        loop {
            tokio::time::sleep(every).await;
            match st
                .db
                .heartbeat(&job.id, job.attempts, lease_ms, progress_of(&progress))
                .await
            {
                Ok(Fenced::Done(())) => {}
                Ok(Fenced::Lost) => {
                    tracing::info!(job = %job.id, "lease lost or job cancelled; stopping");
                    cancel.cancel();
                    return;
                }
                Err(e) => tracing::warn!(job = %job.id, error = %e, "heartbeat failed"),
            }
        }
    }))
}

/// A task aborted when this is dropped (also when the future holding it is).
pub(crate) struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
