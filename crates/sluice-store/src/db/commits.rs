//! Group commits: the successes of many jobs recorded in one transaction,
//! so that one database commit (one sync of its log) makes all of them
//! durable. Each success is recorded exactly as it would be alone
//! ([`Db::succeed`], or a job added already succeeded), in the order given.

use super::jobs::{arrived_in, succeed_in, Fenced, NewJob};
use super::objects::Placed;
use super::Db;
use crate::error::Result;
use crate::model::{Job, JobProgress, ObjectInfo};

/// One job's success, for [`Db::record_successes`].
#[derive(Debug, Clone, Copy)]
pub enum Success<'a> {
    /// A job that ran from its upload's arrival to its end outside the
    /// queue (a small upload processed on arrival): added already
    /// succeeded, its upload accepted now.
    Arrived {
        /// The job.
        job: &'a NewJob,
        /// What it did.
        progress: JobProgress,
        /// The object it stored.
        object: &'a ObjectInfo,
        /// The object's container, when it is kept in its row.
        container: Option<&'a [u8]>,
    },
    /// A running attempt's success, fenced as [`Db::succeed`]'s.
    Attempt {
        /// The job, as its attempt claimed it.
        job: &'a Job,
        /// What it did.
        progress: JobProgress,
        /// The object it stored (process jobs).
        object: Option<&'a ObjectInfo>,
        /// The object's container, when it is kept in its row.
        container: Option<&'a [u8]>,
    },
}

impl Db {
    /// Records every success of `batch` in one transaction, in order: for
    /// each, the job as it now is and whether its object took its key
    /// (`Lost`: an attempt that no longer held its job; nothing of it was
    /// written). An error means none was recorded.
    pub async fn record_successes(&self, batch: &[Success<'_>]) -> Result<Vec<Fenced<(Placed, Job)>>> {
        let mut tx = self.begin_write().await?;
        let mut done = Vec::with_capacity(batch.len());
        for success in batch {
            done.push(match *success {
                Success::Arrived {
                    job,
                    progress,
                    object,
                    container,
                } => Fenced::Done(arrived_in(&mut tx, self.backend, job, progress, object, container).await?),
                Success::Attempt {
                    job,
                    progress,
                    object,
                    container,
                } => succeed_in(&mut tx, self.backend, job, progress, object, container).await?,
            });
        }
        tx.commit().await?;
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_dbs;
    use crate::model::{JobKind, JobState};
    use crate::{new_id, now_ms, Objects};

    fn small(tenant: &str, key: &str) -> (NewJob, ObjectInfo) {
        let id = new_id().unwrap();
        let job = NewJob {
            id: id.clone(),
            tenant_id: tenant.into(),
            kind: JobKind::Process,
            object_key: key.into(),
            pipeline: "default".into(),
            staging: None,
            expected_digest: None,
            max_attempts: 3,
            staged_bytes: 0,
            meta: None,
        };
        let object = ObjectInfo {
            key: key.into(),
            location: Objects::inline_path(tenant, &id, 1),
            pipeline: "default".into(),
            encrypted: true,
            container_len: 3,
            plaintext_len: 1,
            chunk_count: 1,
            digest: "00".repeat(32),
            job_id: id,
            created_at: now_ms(),
            meta: None,
            etag: None,
        };
        (job, object)
    }

    #[tokio::test]
    async fn many_successes_commit_together_in_order() {
        for (db, _dir) in test_dbs().await {
            let t = db.create_tenant("acme", b"sealed", "sluice1x").await.unwrap();
            let (a, oa) = small(&t.id, "k");
            let (b, ob) = small(&t.id, "k");
            let (c, oc) = small(&t.id, "other");
            let batch = [
                Success::Arrived {
                    job: &a,
                    progress: JobProgress::default(),
                    object: &oa,
                    container: Some(b"one"),
                },
                Success::Arrived {
                    job: &b,
                    progress: JobProgress::default(),
                    object: &ob,
                    container: Some(b"two"),
                },
                Success::Arrived {
                    job: &c,
                    progress: JobProgress::default(),
                    object: &oc,
                    container: Some(b"three"),
                },
            ];
            let done = db.record_successes(&batch).await.unwrap();
            assert_eq!(done.len(), 3);
            for d in &done {
                match d {
                    Fenced::Done((Placed::Stored, job)) => assert_eq!(job.state, JobState::Succeeded),
                    other => panic!("{other:?}"),
                }
            }
            // The later of two writes to one key is the object; its
            // container comes with its row.
            let (o, container) = db.object_with_container(&t.id, "k").await.unwrap();
            assert_eq!(
                (o.job_id.as_str(), container.as_deref()),
                (b.id.as_str(), Some(&b"two"[..]))
            );
            let job = db.job(&t.id, &a.id).await.unwrap();
            assert_eq!(job.state, JobState::Succeeded);
            // Nothing to retire for a container that lived in its row.
            assert!(db.retired_before(now_ms() + 1, 10).await.unwrap().is_empty());
            db.delete_object(&t.id, "other").await.unwrap();
            assert!(db.retired_before(now_ms() + 1, 10).await.unwrap().is_empty());
            // A fenced attempt that lost its job writes nothing.
            let mut stale = job.clone();
            stale.state = JobState::Running;
            let lost = db
                .record_successes(&[Success::Attempt {
                    job: &stale,
                    progress: JobProgress::default(),
                    object: Some(&oa),
                    container: Some(b"stale"),
                }])
                .await
                .unwrap();
            assert!(matches!(lost[0], Fenced::Lost));
            let (_, container) = db.object_with_container(&t.id, "k").await.unwrap();
            assert_eq!(container.as_deref(), Some(&b"two"[..]));
        }
    }
}
