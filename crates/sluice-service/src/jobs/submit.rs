//! Submitting a queued job, the one way every path does it (an upload that
//! is staged, a verify request, a completed resumable upload): admission
//! first (the queue's depth and the tenant's queued-jobs quota, before any
//! work is done for the job), then the row, then a wake-up for the
//! dispatchers.

use std::future::Future;

use sluice_store::{new_id, Job, JobKind, NewJob};

use crate::{Result, Service};

/// A queued job that was admitted but is not recorded yet.
#[must_use = "an admitted job is queued only once recorded"]
pub(crate) struct Admitted<'a> {
    st: &'a Service,
    /// The job to record.
    pub(crate) job: NewJob,
}

impl Service {
    /// A new job of `tenant_id`'s, with a fresh id and the configured
    /// attempt limit.
    pub(crate) fn new_job(&self, tenant_id: &str, kind: JobKind, object_key: &str, pipeline: &str) -> Result<NewJob> {
        Ok(NewJob {
            id: new_id()?,
            tenant_id: tenant_id.to_string(),
            kind,
            object_key: object_key.to_string(),
            pipeline: pipeline.to_string(),
            staging: None,
            expected_digest: None,
            max_attempts: i64::from(self.config.job_max_attempts),
            staged_bytes: 0,
            meta: None,
        })
    }

    /// Admits `job` into the queue, or refuses it: the whole queue is full
    /// (`queue_full`) or its tenant has its most queued jobs
    /// (`quota_queued`).
    pub(crate) fn admit(&self, job: NewJob) -> Result<Admitted<'_>> {
        let (depth, queued) = self.limits.counts(&job.tenant_id);
        self.limits.admit_queued(&job.tenant_id, depth, queued)?;
        Ok(Admitted { st: self, job })
    }

    /// Admits a job that runs at once, outside the queue (an upload
    /// processed as it streams in): only the queue's depth can refuse it.
    pub(crate) fn admit_running(&self, tenant_id: &str) -> Result<()> {
        let (depth, _) = self.limits.counts(tenant_id);
        Ok(self.limits.admit_queued(tenant_id, depth, 0)?)
    }
}

impl Admitted<'_> {
    /// Records the job as queued and wakes a dispatcher.
    pub(crate) async fn enqueue(self) -> Result<Job> {
        let db = self.st.db.clone();
        self.record(|job| async move { db.enqueue(&job).await }).await
    }

    /// Records the job with `insert` (which may write more in the same
    /// transaction, as completing a resumable upload does) and wakes a
    /// dispatcher.
    pub(crate) async fn record<F, Fut>(self, insert: F) -> Result<Job>
    where
        F: FnOnce(NewJob) -> Fut,
        Fut: Future<Output = sluice_store::Result<Job>>,
    {
        let job = insert(self.job).await?;
        self.st.limits.note_job(&job.tenant_id, true);
        self.st.job_queued.notify_one();
        tracing::info!(job = %job.id, kind = job.kind.as_str(), object = %job.object_key, "job queued");
        Ok(job)
    }
}
