//! Recording how a job attempt ended, shared by queued jobs and uploads
//! processed as they stream in. Every write is fenced: it lands only if
//! the attempt still holds the job (its lease was not reclaimed, nobody
//! cancelled it), so a job is stored once and a cancel always wins.

use std::time::Instant;

use sluice_store::{now_ms, Fenced, Job, JobKind, JobProgress, ObjectInfo, Placed};

use super::group_commit::Entry;
use super::JobError;
use crate::telemetry::JobEnd;
use crate::Service;

impl Service {
    /// Marks an attempt succeeded and, for a process job, makes `object`
    /// the visible object under its key (one transaction) — unless a write
    /// to the key accepted later already took effect: then the job is
    /// superseded and its container deleted. What an object replaced is
    /// retired (the reaper deletes it after the grace period, so readers
    /// that looked the old object up can finish). The staged upload is
    /// deleted. On `Err` the commit's
    /// outcome is unknown (the connection may have died after the database
    /// applied it), so the container is left in place: if the commit
    /// landed it is the object, otherwise the reaper removes it once the
    /// attempt is over.
    pub(crate) async fn commit_success(
        &self,
        job: &Job,
        done: JobProgress,
        object: Option<&ObjectInfo>,
        container: Option<bytes::Bytes>,
    ) -> sluice_store::Result<Fenced<Placed>> {
        let placed = match container {
            // A small object: with others, in the group commit.
            Some(container) => {
                let entry = Entry::Attempt {
                    job: job.clone(),
                    progress: done,
                    object: object.cloned(),
                    container: Some(container),
                };
                match self.commits.record(entry).await? {
                    Fenced::Done((placed, _)) => Fenced::Done(placed),
                    Fenced::Lost => Fenced::Lost,
                }
            }
            None => self.db.succeed(job, done, object).await?,
        };
        if let Fenced::Done(placed) = placed {
            if placed == Placed::Superseded {
                tracing::info!(job = %job.id, "superseded: a later write to the key took effect first");
                self.discard(object.map(|o| o.location.as_str())).await;
            }
            // The row already forgot it (one commit less per job).
            if let Some(staging) = &job.staging {
                let _ = self.objects.delete_staging(staging).await;
            }
        }
        Ok(placed)
    }

    /// Fails an attempt for good with `error`: its container (if any) is
    /// deleted first, its staged upload after. Fenced: a job a user
    /// cancelled stays cancelled.
    pub(crate) async fn record_failure(
        &self,
        job: &Job,
        error: &JobError,
        container: Option<&str>,
    ) -> sluice_store::Result<Fenced<()>> {
        self.discard(container).await;
        let recorded = self.db.fail(job, error.code(), error.detail()).await;
        self.release_staging(job).await;
        recorded
    }

    /// Deletes an attempt's container that will not become an object.
    pub(crate) async fn discard(&self, container: Option<&str>) {
        if let Some(location) = container {
            let _ = self.objects.delete(location).await;
        }
    }

    /// Deletes a finished job's staged upload and forgets it.
    pub(crate) async fn release_staging(&self, job: &Job) {
        if let Some(staging) = &job.staging {
            if self.objects.delete_staging(staging).await.is_ok() {
                let _ = self.db.clear_staging(&job.id).await;
            }
        }
    }

    /// Counts a job attempt's end in the metrics.
    pub(crate) fn note_end(
        &self,
        job: &Job,
        end: JobEnd,
        error: Option<&JobError>,
        started: Instant,
        done: &JobProgress,
    ) {
        self.telemetry.job_finished(
            &job.tenant_id,
            job.kind.as_str(),
            end,
            error.map(JobError::code),
            started.elapsed(),
            done,
        );
    }
}

/// The container a process job's attempt writes (none for verify jobs).
pub(crate) fn container_of(job: &Job) -> Option<String> {
    (job.kind == JobKind::Process).then(|| sluice_store::Objects::container_path(&job.tenant_id, &job.id, job.attempts))
}

/// Exponential backoff with jitter: about 1 s, 2 s, 4 s … capped at 60 s.
pub(crate) fn backoff_ms(attempt: i64) -> i64 {
    let base = 1000i64.saturating_mul(1 << attempt.clamp(1, 6).saturating_sub(1));
    let jitter = now_ms().rem_euclid(base / 2 + 1);
    (base + jitter).min(60_000)
}
