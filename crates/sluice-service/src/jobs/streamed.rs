//! Uploads processed while they stream in: for a client that waits
//! (`?wait=true`, S3 PUTs) when a job slot is free, the body goes straight
//! into the engine instead of to staging first, so receiving and
//! processing overlap.
//!
//! The job is recorded as running (attempt 1, with a lease its heartbeat
//! renews) before the first byte is processed, so it can be listed, watched
//! and cancelled like any other. The container is written under a name no
//! object points at and synced; only then does the usual fenced success
//! make it the object, in one transaction. A broken upload fails the job;
//! a crash leaves a running job whose lease expires and which a worker then
//! fails as interrupted (there is no staged copy to run again), plus an
//! unreferenced container for the reaper. The client, which got no answer
//! of success, uploads again. Staging exists to make an upload durable
//! before it is answered; here the answer comes only once the object
//! itself is durable.

use std::sync::Arc;
use std::time::Instant;

use sluice_engine::{CancelToken, Control, EncodeOptions, Progress};
use sluice_store::{Fenced, Job, JobProgress, JobState, NewJob, Objects};
use tracing::Instrument;

use super::attempt::{stored, Outcome};
use super::dispatcher::{heartbeat, progress_of};
use super::running::RunningJob;
use super::JobError;
use crate::body::{Body, BodyReader};
use crate::objects::encode::{encode_stream, Also, EncodeStop, Encoded};
use crate::objects::meta::Carried;
use crate::objects::LateChecksum;
use crate::telemetry::JobEnd;
use crate::tenants::limits::BodyLimit;
use crate::{Error, Result, Service};

impl Service {
    /// Runs `job` on `body` as it arrives; returns the job as recorded once
    /// its object is stored.
    /// `late` adds a checksum the face computed on the way to the object's
    /// metadata, once the body has ended.
    pub(crate) async fn process_streaming(
        &self,
        job: NewJob,
        body: Body,
        limit: BodyLimit,
        late: Option<LateChecksum>,
    ) -> Result<Job> {
        let span = tracing::info_span!("job", id = %job.id, tenant = %job.tenant_id);
        self.stream_and_record(job, body, limit, late).instrument(span).await
    }

    async fn stream_and_record(
        &self,
        job: NewJob,
        body: Body,
        limit: BodyLimit,
        late: Option<LateChecksum>,
    ) -> Result<Job> {
        let started = Instant::now();
        let opts = self
            .encode_options(&job.tenant_id, &job.pipeline)
            .await
            .map_err(Error::upload)?;
        let encrypted = opts.params.suite.is_encrypted();
        let lease_ms = self.config.job_lease.as_millis() as i64;
        let row = self.db.start_streamed(&job, lease_ms).await?;
        self.limits.note_job(&row.tenant_id, false);
        let failed = |error: JobError| Error::Job {
            job: Some(row.id.clone()),
            error,
        };
        // Fails the row if this future is dropped (the client went away).
        let mut guard = FailOnDrop {
            st: Some(self.clone()),
            job: row.clone(),
        };
        let location = Objects::container_path(&row.tenant_id, &row.id, row.attempts);
        // Unregistered when dropped, even if the client goes away mid-upload.
        let registered = self.running.register(&row.id);
        let RunningJob { cancel, progress } = registered.job.clone();
        let beat = heartbeat(self, &row, &cancel, &progress);
        let ran = self
            .run_streaming(&row, body, limit, opts, &location, cancel, Arc::clone(&progress))
            .await;
        drop(beat);
        drop(registered);
        let done = progress_of(&progress);
        guard.disarm();
        let outcome = match ran {
            Ok(encoded) => stored(&row, &location, encrypted, &encoded),
            Err(Some(error)) => Outcome::Failed(error),
            Err(None) => Outcome::Stopped,
        };
        let outcome = match outcome {
            // `stored` makes no small objects (their containers live in rows).
            Outcome::DoneSmall(..) => {
                Outcome::Failed(JobError::Internal("a streamed upload made a small object".into()))
            }
            other => other,
        };
        let object = match outcome {
            Outcome::Done(object) => object.map(|mut o| {
                o.meta = LateChecksum::apply(late.as_ref(), o.meta.take(), false);
                o
            }),
            Outcome::DoneSmall(..) => None,
            Outcome::Failed(error) => {
                // Fenced: a job the user cancelled stays cancelled.
                let _ = self.record_failure(&row, &error, Some(&location)).await;
                self.note_end(&row, JobEnd::Failed, Some(&error), started, &done);
                return Err(failed(error));
            }
            Outcome::Stopped => {
                let error = if self.is_shutting_down() {
                    JobError::Interrupted("the server shut down before the upload was stored; upload it again".into())
                } else {
                    self.why_stopped(&row).await
                };
                let _ = self.record_failure(&row, &error, Some(&location)).await;
                self.note_end(&row, JobEnd::Stopped, None, started, &done);
                return Err(failed(error));
            }
        };
        match self.commit_success(&row, done, object.as_ref(), None).await {
            Ok(Fenced::Done(_)) => {}
            Ok(Fenced::Lost) => {
                // Cancelled, or the lease lost, while the last bytes were stored.
                self.discard(Some(&location)).await;
                self.note_end(&row, JobEnd::Stopped, None, started, &done);
                return Err(failed(self.why_stopped(&row).await));
            }
            Err(e) => {
                // The commit's outcome is unknown: the connection may have
                // died after the database applied it. A fenced failure tells.
                let lost = JobError::Unavailable("recording the result failed".into());
                match self.db.fail(&row, lost.code(), lost.detail()).await {
                    Ok(Fenced::Done(())) => {
                        self.discard(Some(&location)).await;
                        return Err(e.into());
                    }
                    Ok(Fenced::Lost) => match self.db.job(&row.tenant_id, &row.id).await {
                        Ok(now) if now.state == JobState::Succeeded => {
                            tracing::info!(job = %row.id, "the result was recorded although its commit reported an error");
                        }
                        Ok(_) => {
                            // Cancelled or taken over, so the success never committed.
                            self.discard(Some(&location)).await;
                            return Err(failed(self.why_stopped(&row).await));
                        }
                        Err(_) => return Err(e.into()),
                    },
                    // Still unreachable: the reaper removes the container
                    // once this attempt is over, unless the commit landed.
                    Err(_) => return Err(e.into()),
                }
            }
        }
        self.note_end(&row, JobEnd::Succeeded, None, started, &done);
        tracing::info!(job = %row.id, bytes_in = done.bytes_in, bytes_out = done.bytes_out, "upload processed as it streamed in");
        Ok(self.db.job(&row.tenant_id, &row.id).await?)
    }

    /// Why a streamed upload's attempt was stopped while the server runs:
    /// a user cancelled the job, or this node lost the job's lease (it
    /// stalled past the lease, and another node failed the job since its
    /// body could not be had again). The second is the server's fault, not
    /// the client's: 503, send it again.
    async fn why_stopped(&self, row: &Job) -> JobError {
        match self.db.job(&row.tenant_id, &row.id).await {
            Ok(now) if now.state == JobState::Cancelled => JobError::Cancelled("the job was cancelled".into()),
            Ok(_) => JobError::Unavailable(
                "this node stalled past the job's lease and another took it over before the upload was \
                 stored; upload it again"
                    .into(),
            ),
            Err(_) => {
                JobError::Unavailable("the job's lease was lost and its state cannot be read; upload it again".into())
            }
        }
    }

    /// Encodes `body` into the container at `location` as it arrives, on
    /// the CPU pool in the tenant's lane; no thread waits for the client.
    /// `Err(None)`: stopped by its cancel token.
    #[allow(clippy::too_many_arguments)]
    async fn run_streaming(
        &self,
        row: &Job,
        body: Body,
        limit: BodyLimit,
        opts: EncodeOptions,
        location: &str,
        cancel: CancelToken,
        progress: Arc<Progress>,
    ) -> std::result::Result<Encoded, Option<JobError>> {
        let tenant_id = &row.tenant_id;
        let also = Also {
            md5: Carried::from_row(row.meta.as_deref()).md5,
            hashes_from: None,
        };
        let reader = BodyReader::new(body, self.config.idle_body_timeout, &limit);
        let source = Box::pin(reader.into_stream());
        let lanes = self.encode_lanes(tenant_id, &opts);
        let ctl = Control { cancel, progress };
        // Durable on success: the database may point at it.
        encode_stream(&self.objects, location, lanes, source, opts, also, &ctl)
            .await
            .map_err(EncodeStop::into_job_error)
    }
}

/// Fails a streamed job's row unless disarmed: the future running it was
/// dropped (the client went away) before it recorded an outcome.
struct FailOnDrop {
    st: Option<Service>,
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
            let error = JobError::Interrupted("the client went away before the upload was stored".into());
            let _ = st.record_failure(&job, &error, Some(&location)).await;
            st.note_end(&job, JobEnd::Stopped, None, Instant::now(), &JobProgress::default());
        });
    }
}
