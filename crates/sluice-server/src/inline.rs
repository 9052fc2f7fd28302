//! Uploads processed while they stream in: for a client that waits
//! (`?wait=true`) when a job slot is free, the body goes straight into the
//! engine instead of to staging first, so receiving and processing overlap.
//!
//! Nothing is recorded until the end: the container is written under a name
//! no row points at, synced, and only then are the job (already succeeded)
//! and the object recorded in one transaction. A crash or a broken upload
//! before that leaves only an unreferenced container for the reaper; the
//! client, which got no 201, retries. Staging exists to make an upload
//! durable before it is answered; here the answer comes only once the
//! object itself is durable, so no staged copy is needed.

use std::sync::Arc;

use axum::body::Body;
use axum::http::StatusCode;
use futures_util::StreamExt;
use sluice_engine::{CancelToken, Control, Progress};
use sluice_store::{now_ms, Job, NewJob, ObjectInfo, Objects};

use crate::bridge::{reader_channel, Msg};
use crate::problem::Problem;
use crate::sink::encode_into_container;
use crate::state::{AppState, RunningJob};
use crate::worker::{classify, encode_options, progress_of, Outcome};

/// Runs `job` on `body` as it arrives; returns the recorded job.
pub async fn process_streaming(st: &AppState, job: NewJob, body: Body, limit: u64) -> Result<Job, Problem> {
    let started = now_ms();
    let opts = encode_options(st, &job.tenant_id, &job.pipeline)
        .await
        .map_err(outcome_problem)?;
    let encrypted = opts.params.suite.is_encrypted();
    let location = Objects::container_path(&job.tenant_id, &job.id, 1);
    // Unregistered when dropped, even if the client goes away mid-upload.
    let registered = st.running.register(&job.id);
    let RunningJob { cancel, progress } = registered.job.clone();
    let result = run(st, body, limit, opts, &location, cancel, Arc::clone(&progress)).await;
    drop(registered);
    let summary = match result {
        Ok(s) => s,
        Err(p) => {
            let _ = st.objects.delete(&location).await;
            return Err(p);
        }
    };
    let digest = hex::encode(summary.digest);
    if let Some(expected) = &job.expected_digest {
        if *expected != digest {
            let _ = st.objects.delete(&location).await;
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "digest_mismatch",
                format!("the upload's BLAKE3 is {digest}, the client expected {expected}"),
            ));
        }
    }
    let object = ObjectInfo {
        key: job.object_key.clone(),
        location: location.clone(),
        pipeline: job.pipeline.clone(),
        encrypted,
        container_len: summary.container_len as i64,
        plaintext_len: summary.plaintext_len as i64,
        chunk_count: summary.chunk_count as i64,
        digest,
        job_id: job.id.clone(),
        created_at: now_ms(),
    };
    let done = progress_of(&progress);
    let recorded = st.db.record_finished(&job, done, &object, started).await;
    let (job, replaced) = match recorded {
        Ok(r) => r,
        Err(e) => {
            let _ = st.objects.delete(&location).await;
            return Err(e.into());
        }
    };
    if let Some(old) = replaced {
        st.opened.remove(&old);
        let _ = st.objects.delete(&old).await;
    }
    tracing::info!(job = %job.id, bytes_in = done.bytes_in, bytes_out = done.bytes_out, "upload processed as it streamed in");
    Ok(job)
}

async fn run(
    st: &AppState,
    body: Body,
    limit: u64,
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
    while let Some(frame) = stream.next().await {
        match frame {
            Ok(data) => {
                received += data.len() as u64;
                if received > limit {
                    upload_error = Some(Problem::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "upload_too_large",
                        format!("uploads are limited to {limit} bytes"),
                    ));
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
                upload_error = Some(Problem::bad_request(format!("upload interrupted: {e}")));
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
