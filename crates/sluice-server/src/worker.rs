//! The worker pool: claims jobs from the queue, runs them through the
//! engine on a blocking thread (the engine's CPU work stays on its own
//! pool), renews the lease while they run, and records the outcome —
//! conditional on still holding the lease, so a job is stored once.
//!
//! Failures are sorted by the engine's error class: I/O and storage
//! failures are retried with exponential backoff and jitter up to the
//! job's attempt limit; bad input fails at once with the engine's message.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use sluice_engine::format::{ChunkSize, Compression, ErrorClass, FileParams, Recipient, SlotSpec, Suite};
use sluice_engine::{CancelToken, Control, EncodeOptions, Progress};
use sluice_store::{now_ms, Fenced, Job, JobKind, JobProgress, JobState, ObjectInfo, Objects, UploadState};
use tokio::task::JoinHandle;
use tokio_util::io::SyncIoBridge;

use crate::routes::objects::keyring_for;
use crate::sink::encode_into_container;
use crate::state::{AppState, RunningJob};
use crate::telemetry::JobEnd;

/// How a job attempt ended.
pub(crate) enum Outcome {
    /// Stored (process) or verified.
    Done(Option<ObjectInfo>),
    /// Worth another attempt later.
    Transient(String),
    /// Will not get better: fail with this code and message.
    Permanent(&'static str, String),
    /// Stopped by its cancel token (user cancel, lost lease or shutdown).
    Stopped,
}

/// Starts the dispatcher: it claims as many jobs as there are free slots
/// (`max_running_jobs`), in one transaction, and runs each on its own task.
/// It stops claiming once shutdown begins; the handle finishes when the
/// jobs it started have.
pub fn start(state: &AppState) -> JoinHandle<()> {
    let st = state.clone();
    tokio::spawn(async move { dispatch(st).await })
}

async fn dispatch(st: AppState) {
    let slots = Arc::clone(&st.job_slots);
    let mut tasks = tokio::task::JoinSet::new();
    let mut backoff = Duration::from_millis(100);
    loop {
        while tasks.try_join_next().is_some() {}
        if st.shutting_down.load(Ordering::SeqCst) {
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
        if busy > 0 && running >= 1 && st.requests_in_flight.load(Ordering::Relaxed) > busy {
            drop(first);
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let mut permits = vec![first];
        let busy_now = busy > 0 && st.requests_in_flight.load(Ordering::Relaxed) > busy;
        if !busy_now {
            while let Ok(p) = Arc::clone(&slots).try_acquire_owned() {
                permits.push(p);
            }
        }
        let lease_ms = st.config.job_lease.as_millis() as i64;
        let claimed = st.db.claim(permits.len() as u32, lease_ms).await;
        match claimed {
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
                drop(permits);
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
async fn run_job(st: &AppState, job: Job) {
    if job.counted_attempts() > job.max_attempts {
        let msg = format!("gave up after {} attempts", job.max_attempts);
        let _ = st.db.fail(&job, "attempts_exhausted", &msg).await;
        st.telemetry.job_finished(
            &job.tenant_id,
            job.kind.as_str(),
            JobEnd::Failed,
            Some("attempts_exhausted"),
            Duration::ZERO,
            &JobProgress::default(),
        );
        tracing::warn!("{msg}");
        return;
    }
    tracing::info!(kind = job.kind.as_str(), object = %job.object_key, "job started");
    let started = std::time::Instant::now();
    let kind = job.kind.as_str();
    let finished = |end: JobEnd, code: Option<&str>, done: &JobProgress| {
        st.telemetry
            .job_finished(&job.tenant_id, kind, end, code, started.elapsed(), done)
    };
    let registered = st.running.register(&job.id);
    let RunningJob { cancel, progress } = registered.job.clone();
    let heartbeat = heartbeat(st, &job, &cancel, &progress);
    let location = Objects::container_path(&job.tenant_id, &job.id, job.attempts);
    let outcome = match job.kind {
        JobKind::Process => process(st, &job, &location, cancel.clone(), Arc::clone(&progress)).await,
        JobKind::Verify => verify(st, &job, cancel.clone(), Arc::clone(&progress)).await,
    };
    drop(heartbeat);
    let done = progress_of(&progress);
    drop(registered);
    let wrote_container = job.kind == JobKind::Process;
    let discard = |st: &AppState| {
        let objects = st.objects.clone();
        let location = location.clone();
        async move {
            if wrote_container {
                let _ = objects.delete(&location).await;
            }
        }
    };
    if matches!(outcome, Outcome::Stopped) {
        finished(JobEnd::Stopped, None, &done);
    }
    match outcome {
        Outcome::Done(object) => match st.db.succeed(&job, done, object.as_ref()).await {
            Ok(Fenced::Done(replaced)) => {
                if let Some(old) = replaced {
                    st.opened.remove(&old);
                    let _ = st.objects.delete(&old).await;
                }
                // The row already forgot it (one commit less per job).
                if let Some(staging) = &job.staging {
                    let _ = st.objects.delete_staging(staging).await;
                }
                finished(JobEnd::Succeeded, None, &done);
                tracing::info!(bytes_in = done.bytes_in, bytes_out = done.bytes_out, "job succeeded");
            }
            Ok(Fenced::Lost) => {
                tracing::info!("job finished after losing its lease or being cancelled; result discarded");
                discard(st).await;
            }
            Err(e) => {
                // The commit's outcome is unknown (the connection may have
                // died after the database applied it), so the container
                // stays: if the commit landed it is the object. Otherwise
                // the lease expires, the job runs again, and the reaper
                // removes the container once this attempt is over.
                tracing::warn!(error = %e, "recording success failed; the job will be retried unless it was recorded");
            }
        },
        Outcome::Permanent(code, msg) => {
            discard(st).await;
            let _ = st.db.fail(&job, code, &msg).await;
            cleanup_staging(st, &job).await;
            finished(JobEnd::Failed, Some(code), &done);
            tracing::warn!(code, error = %msg, "job failed");
        }
        Outcome::Transient(msg) if !st.objects.available() => {
            // The store is down (breaker open): wait it out in the queue,
            // without using up an attempt.
            discard(st).await;
            let delay = backoff_ms(job.storage_waits + 1);
            let _ = st.db.requeue_waiting(&job, delay, &msg).await;
            finished(JobEnd::Retried, None, &done);
            tracing::info!(error = %msg, retry_in_ms = delay, "object store unavailable; job waits");
        }
        Outcome::Transient(msg) => {
            discard(st).await;
            if job.counted_attempts() >= job.max_attempts {
                let _ = st
                    .db
                    .fail(&job, "io", &format!("{msg} (after {} attempts)", job.attempts))
                    .await;
                cleanup_staging(st, &job).await;
                finished(JobEnd::Failed, Some("io"), &done);
                tracing::warn!(error = %msg, "job failed after its last attempt");
            } else {
                let delay = backoff_ms(job.counted_attempts());
                let _ = st.db.requeue(&job, delay, Some(&msg)).await;
                finished(JobEnd::Retried, None, &done);
                tracing::info!(error = %msg, retry_in_ms = delay, "job will be retried");
            }
        }
        Outcome::Stopped => {
            discard(st).await;
            if st.shutting_down.load(Ordering::SeqCst) {
                // Released for another worker (or this node after restart).
                let _ = st.db.requeue(&job, 0, None).await;
                tracing::info!("job released at shutdown");
            } else {
                // Cancelled by a user (the row already says so) or lease lost.
                if let Ok(now) = st.db.job(&job.tenant_id, &job.id).await {
                    if now.state == JobState::Cancelled {
                        cleanup_staging(st, &job).await;
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
pub(crate) fn heartbeat(st: &AppState, job: &Job, cancel: &CancelToken, progress: &Arc<Progress>) -> AbortOnDrop {
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

/// Exponential backoff with jitter: about 1 s, 2 s, 4 s … capped at 60 s.
fn backoff_ms(attempt: i64) -> i64 {
    let base = 1000i64.saturating_mul(1 << attempt.clamp(1, 6).saturating_sub(1));
    let jitter = now_ms().rem_euclid(base / 2 + 1);
    (base + jitter).min(60_000)
}

async fn cleanup_staging(st: &AppState, job: &Job) {
    if let Some(staging) = &job.staging {
        if st.objects.delete_staging(staging).await.is_ok() {
            let _ = st.db.clear_staging(&job.id).await;
        }
    }
}

pub(crate) fn classify(e: &sluice_engine::Error) -> Outcome {
    match e.class() {
        ErrorClass::Cancelled => Outcome::Stopped,
        ErrorClass::Io => Outcome::Transient(error_chain(e)),
        ErrorClass::Integrity => Outcome::Permanent("integrity", e.to_string()),
        ErrorClass::Key => Outcome::Permanent("key", e.to_string()),
        ErrorClass::Limit => Outcome::Permanent("limit", e.to_string()),
        ErrorClass::Usage => Outcome::Permanent("bad_request", e.to_string()),
        _ => Outcome::Permanent("internal", e.to_string()),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// The engine settings of a tenant's pipeline: its codec, cipher and chunk
/// size, and key slots for the tenant's identity and the pipeline's recipients.
pub(crate) async fn encode_options(
    st: &AppState,
    tenant_id: &str,
    pipeline_name: &str,
) -> Result<EncodeOptions, Outcome> {
    let pipeline = match st.db.pipeline(tenant_id, pipeline_name).await {
        Ok(p) => p,
        Err(sluice_store::Error::NotFound(_)) => {
            return Err(Outcome::Permanent(
                "bad_request",
                format!("pipeline {pipeline_name:?} no longer exists"),
            ))
        }
        Err(e) => return Err(Outcome::Transient(e.to_string())),
    };
    let tenant = st
        .db
        .tenant(tenant_id)
        .await
        .map_err(|e| Outcome::Transient(e.to_string()))?;
    let params = match (
        Suite::from_name(&pipeline.encrypt),
        Compression::parse(&pipeline.compress),
        ChunkSize::parse(&pipeline.chunk_size),
    ) {
        (Ok(suite), Ok(compression), Ok(chunk_size)) => FileParams {
            suite,
            compression,
            chunk_size,
        },
        _ => {
            return Err(Outcome::Permanent(
                "bad_request",
                format!("pipeline {:?} has invalid settings", pipeline.name),
            ))
        }
    };
    let mut slots = Vec::new();
    if params.suite.is_encrypted() {
        for r in std::iter::once(&tenant.recipient).chain(pipeline.recipients.iter()) {
            match Recipient::parse(r) {
                Ok(r) => slots.push(SlotSpec::Recipient(r)),
                Err(e) => return Err(Outcome::Permanent("bad_request", format!("recipient {r:?}: {e}"))),
            }
        }
    }
    Ok(EncodeOptions {
        params,
        slots,
        adaptive: true,
    })
}

async fn process(st: &AppState, job: &Job, location: &str, cancel: CancelToken, progress: Arc<Progress>) -> Outcome {
    let Some(staging) = job.staging.clone() else {
        // Only uploads processed as they streamed in have no staged copy;
        // this one's node stopped before it was stored.
        return Outcome::Permanent(
            "interrupted",
            "the upload was interrupted before it was stored (the server stopped); upload it again".into(),
        );
    };
    let opts = match encode_options(st, &job.tenant_id, &job.pipeline).await {
        Ok(o) => o,
        Err(outcome) => return outcome,
    };
    let params = opts.params;
    // One staged object, or the parts of a resumable upload in order.
    let opened = if staging.ends_with('/') {
        st.objects
            .staged_stream(&staging, job.staged_bytes.max(0) as u64)
            .await
            .map(|parts| {
                let parts = parts.map_err(std::io::Error::other);
                Box::pin(tokio_util::io::StreamReader::new(parts))
                    as std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>
            })
    } else {
        st.objects
            .reader(&staging)
            .await
            .map(|(r, _)| Box::pin(r) as std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>)
    };
    let reader = match opened {
        Ok(r) => r,
        Err(sluice_store::Error::NotFound(_)) => {
            return Outcome::Permanent("internal", "the staged upload is missing".into())
        }
        Err(e) => return Outcome::Transient(e.to_string()),
    };
    let objects = st.objects.clone();
    let location_owned = location.to_string();
    let engine = st.engine.clone();
    let rt = tokio::runtime::Handle::current();
    let ran = tokio::task::spawn_blocking(move || {
        let ctl = Control { cancel, progress };
        let input = SyncIoBridge::new_with_handle(reader, rt.clone());
        encode_into_container(&engine, &objects, &location_owned, input, &opts, &ctl, rt)
    })
    .await;
    let summary = match ran {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return classify(&e),
        Err(e) => return Outcome::Permanent("internal", format!("worker thread failed: {e}")),
    };
    let digest = hex::encode(summary.digest);
    if let Some(expected) = &job.expected_digest {
        if *expected != digest {
            return Outcome::Permanent(
                "digest_mismatch",
                format!("the upload's BLAKE3 is {digest}, the client expected {expected}"),
            );
        }
    }
    Outcome::Done(Some(ObjectInfo {
        key: job.object_key.clone(),
        location: location.to_string(),
        pipeline: job.pipeline.clone(),
        encrypted: params.suite.is_encrypted(),
        container_len: summary.container_len as i64,
        plaintext_len: summary.plaintext_len as i64,
        chunk_count: summary.chunk_count as i64,
        digest,
        job_id: job.id.clone(),
        created_at: now_ms(),
    }))
}

async fn verify(st: &AppState, job: &Job, cancel: CancelToken, progress: Arc<Progress>) -> Outcome {
    let object = match st.db.object(&job.tenant_id, &job.object_key).await {
        Ok(o) => o,
        Err(sluice_store::Error::NotFound(_)) => {
            return Outcome::Permanent("not_found", format!("object {:?} no longer exists", job.object_key))
        }
        Err(e) => return Outcome::Transient(e.to_string()),
    };
    let keys = match keyring_for(st, &job.tenant_id, object.encrypted).await {
        Ok(k) => k,
        Err(p) => return Outcome::Transient(p.detail),
    };
    let (reader, _) = match st.objects.reader(&object.location).await {
        Ok(r) => r,
        Err(sluice_store::Error::NotFound(_)) => {
            return Outcome::Permanent("integrity", "the stored container is missing".into())
        }
        Err(e) => return Outcome::Transient(e.to_string()),
    };
    let engine = st.engine.clone();
    let rt = tokio::runtime::Handle::current();
    let ran = tokio::task::spawn_blocking(move || {
        let ctl = Control { cancel, progress };
        engine.verify(SyncIoBridge::new_with_handle(reader, rt), &keys, &ctl)
    })
    .await;
    match ran {
        Ok(Ok(summary)) if hex::encode(summary.digest) == object.digest => Outcome::Done(None),
        Ok(Ok(_)) => Outcome::Permanent(
            "integrity",
            "the container's digest differs from the one recorded".into(),
        ),
        Ok(Err(e)) => classify(&e),
        Err(e) => Outcome::Permanent("internal", format!("worker thread failed: {e}")),
    }
}

/// Background cleanup, every `reaper_interval` (default a minute): staged
/// uploads of finished jobs; staged uploads no job refers to (an upload cut
/// off by a crash); and containers no object refers to (an attempt that lost
/// its lease, a streamed upload cut off), each only once older than
/// `reaper_min_age` (default an hour, far longer than any write in progress
/// goes without touching its file); and S3 multipart uploads whose writer
/// sent no part for `reaper_multipart_age` (default an hour).
pub fn start_reaper(st: &AppState) -> JoinHandle<()> {
    let st = st.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(st.config.reaper_interval).await;
            if st.shutting_down.load(Ordering::SeqCst) {
                return;
            }
            if let Err(e) = reap(&st, st.config.reaper_min_age).await {
                tracing::warn!(error = %e, "reaper pass failed");
            }
        }
    })
}

/// One reaper pass; `age` is how old an unreferenced object must be.
pub async fn reap(st: &AppState, age: Duration) -> sluice_store::Result<usize> {
    let mut removed = 0;
    for (job_id, staging) in st.db.stale_staging(500).await? {
        st.objects.delete_staging(&staging).await?;
        st.db.clear_staging(&job_id).await?;
        removed += 1;
    }
    // Resumable uploads not completed in time: closed first (a late part or
    // completion is then refused), then their parts deleted.
    for (_tenant_id, id) in st.db.expired_uploads(500).await? {
        if st.db.close_upload(&id, UploadState::Expired).await? {
            crate::routes::uploads::release(st, &st.db.upload_by_id(&id).await?).await?;
            tracing::info!(upload = %id, "resumable upload expired; its parts were reclaimed");
            removed += 1;
        }
    }
    // Multipart uploads whose writer went silent (a node killed mid-write).
    for (location, marker) in st.objects.abandoned_multipart(st.config.reaper_multipart_age).await? {
        st.objects.abort_abandoned(&location, &marker).await?;
        tracing::info!(path = %marker.path, "aborted an abandoned multipart upload");
        removed += 1;
    }
    // Closed sessions whose S3 multipart upload could not be aborted then
    // (the store was down): aborted now.
    for u in st.db.closed_uploads_with_multipart(500).await? {
        crate::routes::uploads::release(st, &u).await?;
        tracing::info!(upload = %u.id, "a closed upload's multipart upload was aborted");
        removed += 1;
    }
    for (location, job_id) in st.objects.old_staging(age).await? {
        if !st.db.staging_in_use(&job_id, &location).await? {
            st.objects.delete(&location).await?;
            removed += 1;
        }
    }
    for location in st.objects.old_containers(age).await? {
        if !st.db.location_in_use(&location).await? {
            st.objects.delete(&location).await?;
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(removed, "reaper removed unreferenced objects");
    }
    Ok(removed)
}
