//! Uploads processed while they stream in: for a client that waits
//! (`?wait=true`) when a job slot is free, the body goes straight into the
//! engine instead of to staging first, so receiving and processing overlap.
//!
//! The job is recorded as running (attempt 1, with a lease its heartbeat
//! renews) before the first byte is processed, so it can be listed, watched
//! and cancelled like any other. The container is written under a name no
//! object points at and synced; only then does the usual fenced success
//! make it the object, in one transaction. A broken upload fails the job;
//! a crash leaves a running job whose lease expires and which a worker then
//! fails as interrupted (there is no staged copy to run again), plus an
//! unreferenced container for the reaper. The client, which got no 201,
//! uploads again. Staging exists to make an upload durable before it is
//! answered; here the answer comes only once the object itself is durable.

use std::sync::Arc;

use axum::body::Body;
use axum::http::StatusCode;
use futures_util::StreamExt;
use sluice_engine::{CancelToken, Control, Progress};
use sluice_store::{now_ms, Fenced, Job, JobProgress, JobState, NewJob, ObjectInfo, Objects};
use tokio_util::sync::CancellationToken;

use crate::bridge::{reader_channel, Msg};
use crate::limits::BodyLimit;
use crate::problem::Problem;
use crate::sink::encode_into_container;
use crate::state::{AppState, RunningJob};
use crate::telemetry::JobEnd;
use crate::worker::{classify, encode_options, heartbeat, progress_of, Outcome};
use tracing::Instrument;

/// Runs `job` on `body` as it arrives; returns the job as recorded.
pub async fn process_streaming(st: &AppState, job: NewJob, body: Body, limit: BodyLimit) -> Result<Job, Problem> {
    let started = std::time::Instant::now();
    let tenant = job.tenant_id.clone();
    let span = tracing::info_span!("job", id = %job.id, tenant = %job.tenant_id);
    let result = stream_and_record(st, job, body, limit).instrument(span).await;
    let (end, code, done) = match &result {
        Ok(job) => (JobEnd::Succeeded, None, job.progress),
        Err(p) if matches!(p.code, "cancelled" | "interrupted") => (JobEnd::Stopped, None, JobProgress::default()),
        Err(p) => (JobEnd::Failed, Some(p.code), JobProgress::default()),
    };
    st.telemetry
        .job_finished(&tenant, "process", end, code, started.elapsed(), &done);
    result
}

async fn stream_and_record(st: &AppState, job: NewJob, body: Body, limit: BodyLimit) -> Result<Job, Problem> {
    let opts = encode_options(st, &job.tenant_id, &job.pipeline)
        .await
        .map_err(outcome_problem)?;
    let encrypted = opts.params.suite.is_encrypted();
    let lease_ms = st.config.job_lease.as_millis() as i64;
    let row = st.db.start_streamed(&job, lease_ms).await?;
    st.limits.note_job(&row.tenant_id, false);
    // Fails the row if this future is dropped (the client went away).
    let mut guard = FailOnDrop {
        st: Some(st.clone()),
        job: row.clone(),
    };
    let location = Objects::container_path(&row.tenant_id, &row.id, row.attempts);
    // Unregistered when dropped, even if the client goes away mid-upload.
    let registered = st.running.register(&row.id);
    let RunningJob { cancel, progress } = registered.job.clone();
    let beat = heartbeat(st, &row, &cancel, &progress);
    let result = run(st, body, limit, opts, &location, cancel, Arc::clone(&progress)).await;
    drop(beat);
    drop(registered);
    let done = progress_of(&progress);
    let summary = match result {
        Ok(s) => s,
        Err(p) => {
            let _ = st.objects.delete(&location).await;
            guard.disarm();
            let p = if p.code == "cancelled" && st.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "interrupted",
                    "the server shut down before the upload was stored; upload it again",
                )
            } else {
                p
            };
            // Fenced: a job the user cancelled stays cancelled.
            let _ = st.db.fail(&row, p.code, &p.detail).await;
            return Err(p);
        }
    };
    let digest = hex::encode(summary.digest);
    if let Some(expected) = &row.expected_digest {
        if *expected != digest {
            let _ = st.objects.delete(&location).await;
            let p = Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "digest_mismatch",
                format!("the upload's BLAKE3 is {digest}, the client expected {expected}"),
            );
            guard.disarm();
            let _ = st.db.fail(&row, p.code, &p.detail).await;
            return Err(p);
        }
    }
    let object = ObjectInfo {
        key: row.object_key.clone(),
        location: location.clone(),
        pipeline: row.pipeline.clone(),
        encrypted,
        container_len: summary.container_len as i64,
        plaintext_len: summary.plaintext_len as i64,
        chunk_count: summary.chunk_count as i64,
        digest,
        job_id: row.id.clone(),
        created_at: now_ms(),
    };
    let recorded = st.db.succeed(&row, done, Some(&object)).await;
    guard.disarm();
    match recorded {
        Ok(Fenced::Done(replaced)) => {
            if let Some(old) = replaced {
                st.opened.remove(&old);
                let _ = st.objects.delete(&old).await;
            }
        }
        Ok(Fenced::Lost) => {
            // Cancelled while the last bytes were stored.
            let _ = st.objects.delete(&location).await;
            return Err(outcome_problem(Outcome::Stopped));
        }
        Err(e) => {
            // The commit's outcome is unknown: the connection may have died
            // after the database applied it. The fenced failure tells.
            match st.db.fail(&row, "unavailable", "recording the result failed").await {
                Ok(Fenced::Done(())) => {
                    let _ = st.objects.delete(&location).await;
                    return Err(e.into());
                }
                Ok(Fenced::Lost) => match st.db.job(&row.tenant_id, &row.id).await {
                    Ok(now) if now.state == JobState::Succeeded => {
                        tracing::info!(job = %row.id, "the result was recorded although its commit reported an error");
                    }
                    Ok(_) => {
                        // Cancelled, so the success never committed.
                        let _ = st.objects.delete(&location).await;
                        return Err(outcome_problem(Outcome::Stopped));
                    }
                    Err(_) => return Err(e.into()),
                },
                // Still unreachable: the reaper removes the container once
                // this attempt is over, unless the commit landed.
                Err(_) => return Err(e.into()),
            }
        }
    }
    tracing::info!(job = %row.id, bytes_in = done.bytes_in, bytes_out = done.bytes_out, "upload processed as it streamed in");
    Ok(st.db.job(&row.tenant_id, &row.id).await?)
}

/// Fails a streamed job's row unless disarmed: the handler's future was
/// dropped (the client went away) before it recorded an outcome.
struct FailOnDrop {
    st: Option<AppState>,
    job: Job,
}

impl FailOnDrop {
    fn disarm(&mut self) {
        self.st = None;
    }
}

impl Drop for FailOnDrop {
    fn drop(&mut self) {
        let Some(st) = self.st.take() else { return };
        let job = self.job.clone();
        tokio::spawn(async move {
            let location = Objects::container_path(&job.tenant_id, &job.id, job.attempts);
            let _ = st.objects.delete(&location).await;
            let _ = st
                .db
                .fail(&job, "interrupted", "the client went away before the upload was stored")
                .await;
        });
    }
}

async fn run(
    st: &AppState,
    body: Body,
    limit: BodyLimit,
    opts: sluice_engine::EncodeOptions,
    location: &str,
    cancel: CancelToken,
    progress: Arc<Progress>,
) -> Result<sluice_engine::EncodeSummary, Problem> {
    let (tx, input) = reader_channel();
    let objects = st.objects.clone();
    let location_owned = location.to_string();
    let engine = st.engine.clone();
    let rt = tokio::runtime::Handle::current();
    let engine_cancel = cancel.clone();
    let encoding = tokio::task::spawn_blocking(move || {
        let ctl = Control {
            cancel: engine_cancel,
            progress,
        };
        encode_into_container(&engine, &objects, &location_owned, input, &opts, &ctl, rt)
    });
    // Feed the body; a send fails only once the engine stopped (its error wins).
    let mut stream = body.into_data_stream();
    let mut received = 0u64;
    let mut upload_error: Option<Problem> = None;
    // A cancel (user, lease lost, shutdown) must not wait for a client that
    // sends nothing: it also stops this loop, which fails the engine's input.
    let idle = st.config.idle_body_timeout;
    let stop = CancellationToken::new();
    cancel.on_cancel({
        let stop = stop.clone();
        move || stop.cancel()
    });
    loop {
        let frame = tokio::select! {
            f = tokio::time::timeout(idle, stream.next()) => match f {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(_) => {
                    upload_error = Some(crate::routes::objects::idle_timeout(idle));
                    break;
                }
            },
            () = stop.cancelled() => {
                upload_error = Some(outcome_problem(Outcome::Stopped));
                break;
            }
        };
        match frame {
            Ok(data) => {
                received += data.len() as u64;
                if received > limit.bytes {
                    upload_error = Some(limit.exceeded());
                    break;
                }
                if data.is_empty() {
                    continue;
                }
                if tx.send(Msg::Data(data)).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                upload_error = Some(Problem::new(
                    StatusCode::BAD_REQUEST,
                    "interrupted",
                    format!("the upload was interrupted: {e}"),
                ));
                break;
            }
        }
    }
    match &upload_error {
        Some(p) => {
            let _ = tx.send(Msg::Fail(p.detail.clone())).await;
            cancel.cancel();
        }
        None => {
            let _ = tx.send(Msg::End).await;
        }
    }
    drop(tx);
    let encoded = encoding.await.map_err(Problem::internal)?;
    if let Some(p) = upload_error {
        return Err(p);
    }
    // Durable on success (encode_into_container): the database may point at it.
    encoded.map_err(|e| outcome_problem(classify(&e)))
}

fn outcome_problem(o: Outcome) -> Problem {
    match o {
        Outcome::Permanent(code, msg) => {
            let status = match code {
                "limit" => StatusCode::PAYLOAD_TOO_LARGE,
                "internal" => return Problem::internal(msg),
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let code = match code {
                "bad_request" => "bad_request",
                "integrity" => "integrity",
                "key" => "key",
                "limit" => "limit",
                "not_found" => "not_found",
                _ => "job_failed",
            };
            Problem::new(status, code, msg)
        }
        Outcome::Transient(msg) => {
            tracing::warn!(error = %msg, "streaming upload failed");
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "storage temporarily unavailable",
            )
        }
        Outcome::Stopped => Problem::new(StatusCode::CONFLICT, "cancelled", "the job was cancelled"),
        Outcome::Done(_) => Problem::internal("unexpected outcome"),
    }
}
