//! The persistent job queue, in the same database as everything else.
//!
//! A worker *claims* jobs: each claim sets a lease (`lease_until`) and bumps
//! `attempts`, which is the attempt's fencing number. Every later write of
//! that attempt (heartbeat, success, failure) is conditional on
//! `state = 'running' AND attempts = <its number>`, so a worker whose lease
//! expired and was reclaimed by another cannot overwrite the newer attempt,
//! and a cancelled job is not marked succeeded. A job whose lease expired
//! (its worker died) is claimable again.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::objects::{accept, place_object, Placed};
use super::Backend;
use super::Db;
use crate::error::{Error, Result};
use crate::model::{Job, JobKind, JobProgress, JobState, ObjectInfo};
use crate::now_ms;

pub(crate) const JOB_COLUMNS: &str =
    "id, tenant_id, kind, object_key, pipeline, state, attempts, max_attempts, storage_waits, staging, staged_bytes, \
     expected_digest, bytes_in, bytes_out, chunks, error, error_code, created_at, started_at, finished_at, updated_at, \
     accept_seq, superseded, meta";

/// A job to add.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Its id (chosen before the upload is staged, which is named after it).
    pub id: String,
    /// Owner.
    pub tenant_id: String,
    /// What it does.
    pub kind: JobKind,
    /// Object key.
    pub object_key: String,
    /// Pipeline name.
    pub pipeline: String,
    /// Staged upload.
    pub staging: Option<String>,
    /// BLAKE3 (hex) the original must have.
    pub expected_digest: Option<String>,
    /// Most attempts.
    pub max_attempts: i64,
    /// Bytes of the staged upload (0 if none).
    pub staged_bytes: i64,
    /// Content headers and user metadata for the object (JSON).
    pub meta: Option<String>,
}

/// The outcome of a conditional write by an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fenced<T> {
    /// Written.
    Done(T),
    /// The attempt no longer holds the job (lease reclaimed, or cancelled).
    Lost,
}

impl Db {
    /// Adds a queued job (a process job takes its place in its key's
    /// order of writes now).
    pub async fn enqueue(&self, job: &NewJob) -> Result<Job> {
        let mut tx = self.begin_write().await?;
        let job = enqueue_in(&mut tx, self.backend, job).await?;
        tx.commit().await?;
        self.announce_job().await;
        Ok(job)
    }

    /// A tenant's job (another tenant's is "not found", like a missing one).
    pub async fn job(&self, tenant_id: &str, id: &str) -> Result<Job> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::NotFound(format!("job {id:?}")))?;
        job_from(&row)
    }

    /// A tenant's jobs, newest first, before `cursor` (a job id).
    pub async fn jobs(
        &self,
        tenant_id: &str,
        state: Option<JobState>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Job>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE tenant_id = $1 AND ($2 = '' OR state = $2) \
             AND ($3 = '' OR id < $3) ORDER BY id DESC LIMIT $4"
        )))
        .bind(tenant_id)
        .bind(state.map(JobState::as_str).unwrap_or(""))
        .bind(cursor.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(job_from).collect()
    }

    /// Queued jobs per tenant, over all tenants (one query, for the
    /// admission cache).
    pub async fn queued_by_tenant(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT tenant_id, COUNT(*) AS n FROM jobs WHERE state = 'queued' GROUP BY tenant_id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("tenant_id")?, r.try_get("n")?)))
            .collect()
    }

    /// Jobs queued or running, over all tenants.
    pub async fn queue_depth(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM jobs WHERE state IN ('queued', 'running')")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Claims up to `limit` runnable jobs (queued and due, or running with
    /// an expired lease) with a lease of `lease_ms`. Two index range scans
    /// (an `OR` of the two would scan the whole table, holding the write
    /// lock for as long, which hurt once a backlog of 20,000 jobs built up).
    /// On SQLite the one writer makes the update atomic; on PostgreSQL the
    /// rows are locked as they are picked, skipping those another node is
    /// claiming (`FOR UPDATE SKIP LOCKED`), so nodes never wait on each
    /// other nor claim the same job.
    pub async fn claim(&self, limit: u32, lease_ms: i64) -> Result<Vec<Job>> {
        let now = now_ms();
        let db_now = self.backend.now_ms_sql();
        let sql = match self.backend {
            Backend::Sqlite => format!(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = {db_now} + $1, \
                 started_at = COALESCE(started_at, $2), updated_at = $2 \
                 WHERE id IN (SELECT id FROM (SELECT id FROM jobs WHERE state = 'queued' AND run_after <= {db_now} \
                                              ORDER BY run_after LIMIT $3) AS due \
                              UNION ALL \
                              SELECT id FROM (SELECT id FROM jobs WHERE state = 'running' AND lease_until < {db_now} \
                                              LIMIT $3) AS expired \
                              LIMIT $3) \
                 RETURNING {JOB_COLUMNS}"
            ),
            Backend::Postgres => format!(
                "WITH due AS (SELECT id FROM jobs WHERE state = 'queued' AND run_after <= {db_now} \
                              ORDER BY run_after LIMIT $3 FOR UPDATE SKIP LOCKED), \
                      expired AS (SELECT id FROM jobs WHERE state = 'running' AND lease_until < {db_now} \
                                  LIMIT $3 FOR UPDATE SKIP LOCKED) \
                 UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until = {db_now} + $1, \
                 started_at = COALESCE(started_at, $2), updated_at = $2 \
                 WHERE id IN (SELECT id FROM (SELECT id FROM due UNION ALL SELECT id FROM expired) AS runnable \
                              LIMIT $3) \
                 RETURNING {JOB_COLUMNS}"
            ),
        };
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(lease_ms)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(job_from).collect()
    }

    /// Renews an attempt's lease and records its progress.
    pub async fn heartbeat(&self, id: &str, attempt: i64, lease_ms: i64, progress: JobProgress) -> Result<Fenced<()>> {
        let now = now_ms();
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE jobs SET lease_until = {} + $1, bytes_in = $2, bytes_out = $3, chunks = $4, updated_at = $5 \
             WHERE id = $6 AND attempts = $7 AND state = 'running'",
            self.backend.now_ms_sql()
        )))
        .bind(lease_ms)
        .bind(progress.bytes_in)
        .bind(progress.bytes_out)
        .bind(progress.chunks)
        .bind(now)
        .bind(id)
        .bind(attempt)
        .execute(&self.pool)
        .await?;
        Ok(fenced(&r))
    }

    /// Marks an attempt succeeded; for a process job, in the same
    /// transaction, makes `object` the visible object under its key — or,
    /// if a write to the key accepted after this job's upload already took
    /// effect, marks the job superseded ([`Placed::Superseded`]: its
    /// container is unused). An upload processed as it streamed in (no
    /// staged copy) is accepted only now, as its body has ended: of two
    /// overlapping streamed writes the one that ends last wins, as in S3. A replaced container is retired, not deleted:
    /// readers that looked the old object up can still read it until the
    /// reaper's retired pass. The job no longer points at its staged
    /// upload: the caller deletes it (if that fails, the reaper removes the
    /// unreferenced file), saving a second commit.
    pub async fn succeed(
        &self,
        job: &Job,
        progress: JobProgress,
        object: Option<&ObjectInfo>,
    ) -> Result<Fenced<Placed>> {
        let mut tx = self.begin_write().await?;
        let done = succeed_in(&mut tx, self.backend, job, progress, object, None).await?;
        // Lost: nothing was written (the transaction rolls back).
        if let Fenced::Done(_) = done {
            tx.commit().await?;
        }
        Ok(match done {
            Fenced::Done((placed, _)) => Fenced::Done(placed),
            Fenced::Lost => Fenced::Lost,
        })
    }

    /// Adds a process job that this node runs at once, outside the queue
    /// (an upload processed while it streams in): running, attempt 1, with
    /// a lease its heartbeat renews. Its later writes are the usual fenced
    /// ones ([`Db::succeed`], [`Db::fail`]), so a cancel wins over them. If
    /// the node dies, the lease expires and a worker claims it, finds no
    /// staged upload and fails it as interrupted.
    pub async fn start_streamed(&self, job: &NewJob, lease_ms: i64) -> Result<Job> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let seq = accept(&mut tx, &job.tenant_id, &job.object_key).await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO jobs (id, tenant_id, kind, object_key, pipeline, state, attempts, max_attempts, \
             expected_digest, lease_until, run_after, created_at, started_at, updated_at, accept_seq, meta) \
             VALUES ($1, $2, $3, $4, $5, 'running', 1, $6, $7, {} + $8, $9, $9, $9, $9, $10, $11) \
             RETURNING {JOB_COLUMNS}",
            self.backend.now_ms_sql()
        )))
        .bind(&job.id)
        .bind(&job.tenant_id)
        .bind(job.kind.as_str())
        .bind(&job.object_key)
        .bind(&job.pipeline)
        .bind(job.max_attempts)
        .bind(&job.expected_digest)
        .bind(lease_ms)
        .bind(now)
        .bind(seq)
        .bind(&job.meta)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        job_from(&row)
    }

    /// Records `job`, which ran from its upload's arrival outside the
    /// queue (a small upload) and failed with `code`: added already
    /// failed, so it is listed and read as any failed job is.
    pub async fn add_failed(&self, job: &NewJob, code: &str, error: &str) -> Result<Job> {
        let now = now_ms();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO jobs (id, tenant_id, kind, object_key, pipeline, state, attempts, max_attempts, \
             expected_digest, run_after, created_at, started_at, finished_at, updated_at, meta, error, error_code) \
             VALUES ($1, $2, $3, $4, $5, 'failed', 1, $6, $7, $8, $8, $8, $8, $8, $9, $10, $11) RETURNING {JOB_COLUMNS}"
        )))
        .bind(&job.id)
        .bind(&job.tenant_id)
        .bind(job.kind.as_str())
        .bind(&job.object_key)
        .bind(&job.pipeline)
        .bind(job.max_attempts)
        .bind(&job.expected_digest)
        .bind(now)
        .bind(&job.meta)
        .bind(error)
        .bind(code)
        .fetch_one(&self.pool)
        .await?;
        job_from(&row)
    }

    /// Fails an attempt for good.
    pub async fn fail(&self, job: &Job, code: &str, error: &str) -> Result<Fenced<()>> {
        let now = now_ms();
        let r = sqlx::query(
            "UPDATE jobs SET state = 'failed', lease_until = NULL, error = $1, error_code = $2, \
             finished_at = $3, updated_at = $3 WHERE id = $4 AND attempts = $5 AND state = 'running'",
        )
        .bind(error)
        .bind(code)
        .bind(now)
        .bind(&job.id)
        .bind(job.attempts)
        .execute(&self.pool)
        .await?;
        Ok(fenced(&r))
    }

    /// Puts an attempt's job back in the queue, runnable after `delay_ms`
    /// (a transient failure, or a shutdown that released it).
    pub async fn requeue(&self, job: &Job, delay_ms: i64, error: Option<&str>) -> Result<Fenced<()>> {
        self.put_back(job, delay_ms, error, 0).await
    }

    /// Puts an attempt's job back in the queue because the object store was
    /// unavailable: the attempt does not count against `max_attempts`.
    pub async fn requeue_waiting(&self, job: &Job, delay_ms: i64, error: &str) -> Result<Fenced<()>> {
        self.put_back(job, delay_ms, Some(error), 1).await
    }

    async fn put_back(&self, job: &Job, delay_ms: i64, error: Option<&str>, storage_wait: i64) -> Result<Fenced<()>> {
        let now = now_ms();
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE jobs SET state = 'queued', lease_until = NULL, run_after = {} + $1, error = $2, updated_at = $3, \
             storage_waits = storage_waits + $6 WHERE id = $4 AND attempts = $5 AND state = 'running'",
            self.backend.now_ms_sql()
        )))
        .bind(delay_ms)
        .bind(error)
        .bind(now)
        .bind(&job.id)
        .bind(job.attempts)
        .bind(storage_wait)
        .execute(&self.pool)
        .await?;
        Ok(fenced(&r))
    }

    /// Cancels a tenant's queued or running job; returns it as it now is.
    pub async fn cancel(&self, tenant_id: &str, id: &str) -> Result<Job> {
        let now = now_ms();
        sqlx::query(
            "UPDATE jobs SET state = 'cancelled', lease_until = NULL, finished_at = $1, updated_at = $1 \
             WHERE tenant_id = $2 AND id = $3 AND state IN ('queued', 'running')",
        )
        .bind(now)
        .bind(tenant_id)
        .bind(id)
        .execute(&self.pool)
        .await?;
        self.job(tenant_id, id).await
    }

    /// Finished jobs whose staged upload is still there: `(job id, staging)`.
    pub async fn stale_staging(&self, limit: u32) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT id, staging FROM jobs WHERE staging IS NOT NULL \
             AND state IN ('succeeded', 'failed', 'cancelled') LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("staging")?)))
            .collect()
    }

    /// Records that a job's staged upload was deleted.
    pub async fn clear_staging(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE jobs SET staging = NULL WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether job `id` still needs the staged upload at `location`: its
    /// row points at it. A row that forgot it (the job succeeded, then the
    /// delete failed) no longer protects the file.
    pub async fn staging_in_use(&self, id: &str, location: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM jobs WHERE id = $1 AND staging = $2")
            .bind(id)
            .bind(location)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }
}

/// An attempt's conditional update: one row means it still held the job.
fn fenced(r: &sqlx::any::AnyQueryResult) -> Fenced<()> {
    if r.rows_affected() == 1 {
        Fenced::Done(())
    } else {
        Fenced::Lost
    }
}

/// Adds a queued job in `tx` (which may also record what the job is for);
/// a process job takes the next place in its key's order of writes.
/// [`Db::succeed`] in a transaction the caller commits (with others, for a
/// group commit): the job as it now is, or `Lost`. `container` is the
/// object's container when it is kept in its row.
pub(crate) async fn succeed_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    job: &Job,
    progress: JobProgress,
    object: Option<&ObjectInfo>,
    container: Option<&[u8]>,
) -> Result<Fenced<(Placed, Job)>> {
    let now = now_ms();
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE jobs SET state = 'succeeded', lease_until = NULL, bytes_in = $1, bytes_out = $2, chunks = $3, \
         error = NULL, error_code = NULL, finished_at = $4, updated_at = $4, staging = NULL \
         WHERE id = $5 AND attempts = $6 AND state = 'running' RETURNING {JOB_COLUMNS}"
    )))
    .bind(progress.bytes_in)
    .bind(progress.bytes_out)
    .bind(progress.chunks)
    .bind(now)
    .bind(&job.id)
    .bind(job.attempts)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else {
        return Ok(Fenced::Lost);
    };
    let mut done = job_from(&row)?;
    let streamed = job.kind == JobKind::Process && job.staging.is_none();
    let seq = match (object, streamed) {
        (Some(o), true) => accept(tx, &job.tenant_id, &o.key).await?,
        _ => job.accept_seq,
    };
    let placed = match object {
        Some(o) => place_object(tx, backend, &job.tenant_id, o, seq, container).await?,
        None => Placed::Stored,
    };
    if placed == Placed::Superseded {
        mark_superseded(tx, &mut done).await?;
    }
    Ok(Fenced::Done((placed, done)))
}

/// Records `job`, which ran from its arrival to its end outside the queue
/// (a small upload processed as it arrived), as succeeded with `object`,
/// accepted now; in a transaction the caller commits. Returns the job.
pub(crate) async fn arrived_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    job: &NewJob,
    progress: JobProgress,
    object: &ObjectInfo,
    container: Option<&[u8]>,
) -> Result<(Placed, Job)> {
    let now = now_ms();
    let seq = accept(tx, &job.tenant_id, &job.object_key).await?;
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO jobs (id, tenant_id, kind, object_key, pipeline, state, attempts, max_attempts, \
         expected_digest, run_after, created_at, started_at, finished_at, updated_at, accept_seq, meta, \
         bytes_in, bytes_out, chunks) \
         VALUES ($1, $2, $3, $4, $5, 'succeeded', 1, $6, $7, $8, $8, $8, $8, $8, $9, $10, $11, $12, $13) \
         RETURNING {JOB_COLUMNS}"
    )))
    .bind(&job.id)
    .bind(&job.tenant_id)
    .bind(job.kind.as_str())
    .bind(&job.object_key)
    .bind(&job.pipeline)
    .bind(job.max_attempts)
    .bind(&job.expected_digest)
    .bind(now)
    .bind(seq)
    .bind(&job.meta)
    .bind(progress.bytes_in)
    .bind(progress.bytes_out)
    .bind(progress.chunks)
    .fetch_one(&mut **tx)
    .await?;
    let mut done = job_from(&row)?;
    let placed = place_object(tx, backend, &job.tenant_id, object, seq, container).await?;
    if placed == Placed::Superseded {
        mark_superseded(tx, &mut done).await?;
    }
    Ok((placed, done))
}

async fn mark_superseded(tx: &mut sqlx::Transaction<'_, sqlx::Any>, job: &mut Job) -> Result<()> {
    sqlx::query("UPDATE jobs SET superseded = 1 WHERE id = $1")
        .bind(&job.id)
        .execute(&mut **tx)
        .await?;
    job.superseded = true;
    Ok(())
}

pub(crate) async fn enqueue_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    job: &NewJob,
) -> Result<Job> {
    let now = now_ms();
    let seq = match job.kind {
        JobKind::Process => accept(tx, &job.tenant_id, &job.object_key).await?,
        JobKind::Verify => 0,
    };
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO jobs (id, tenant_id, kind, object_key, pipeline, state, max_attempts, staging, \
         expected_digest, run_after, created_at, updated_at, staged_bytes, accept_seq, meta) \
         VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8, {}, $9, $9, $10, $11, $12) RETURNING {JOB_COLUMNS}",
        backend.now_ms_sql()
    )))
    .bind(&job.id)
    .bind(&job.tenant_id)
    .bind(job.kind.as_str())
    .bind(&job.object_key)
    .bind(&job.pipeline)
    .bind(job.max_attempts)
    .bind(&job.staging)
    .bind(&job.expected_digest)
    .bind(now)
    .bind(job.staged_bytes)
    .bind(seq)
    .bind(&job.meta)
    .fetch_one(&mut **tx)
    .await?;
    job_from(&row)
}

pub(crate) fn job_from(row: &AnyRow) -> Result<Job> {
    let kind: String = row.try_get("kind")?;
    let state: String = row.try_get("state")?;
    Ok(Job {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        kind: JobKind::parse(&kind).ok_or_else(|| Error::Corrupt(format!("job kind {kind:?}")))?,
        object_key: row.try_get("object_key")?,
        pipeline: row.try_get("pipeline")?,
        state: JobState::parse(&state).ok_or_else(|| Error::Corrupt(format!("job state {state:?}")))?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        storage_waits: row.try_get("storage_waits")?,
        staged_bytes: row.try_get("staged_bytes")?,
        staging: row.try_get("staging")?,
        expected_digest: row.try_get("expected_digest")?,
        progress: JobProgress {
            bytes_in: row.try_get("bytes_in")?,
            bytes_out: row.try_get("bytes_out")?,
            chunks: row.try_get("chunks")?,
        },
        error: row.try_get("error")?,
        error_code: row.try_get("error_code")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        updated_at: row.try_get("updated_at")?,
        accept_seq: row.try_get("accept_seq")?,
        superseded: row.try_get::<i64, _>("superseded")? != 0,
        meta: row.try_get("meta")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{new_id, Objects};

    /// A database with tenant `t`, on every backend the test can reach.
    async fn dbs() -> Vec<(Db, Option<tempfile::TempDir>)> {
        let dbs = crate::db::test_dbs().await;
        for (db, _) in &dbs {
            db.create_tenant("t", b"sealed", "sluice1x").await.unwrap();
        }
        dbs
    }

    /// A process job of `key`, staged.
    fn new_job(tenant: &str, key: &str) -> NewJob {
        NewJob {
            id: new_id().unwrap(),
            tenant_id: tenant.into(),
            kind: JobKind::Process,
            object_key: key.into(),
            pipeline: "default".into(),
            staging: Some(format!("staging/{key}")),
            expected_digest: None,
            max_attempts: 3,
            staged_bytes: 100,
            meta: None,
        }
    }

    async fn enqueue(db: &Db, tenant: &str, key: &str) -> Job {
        db.enqueue(&new_job(tenant, key)).await.unwrap()
    }

    fn object(job: &Job, location: &str) -> ObjectInfo {
        ObjectInfo {
            key: job.object_key.clone(),
            location: location.into(),
            pipeline: "default".into(),
            encrypted: true,
            container_len: 10,
            plaintext_len: 5,
            chunk_count: 1,
            digest: "00".repeat(32),
            job_id: job.id.clone(),
            created_at: 0,
            meta: Some(r#"{"content_type":"text/plain"}"#.into()),
            etag: Some("11".repeat(16)),
        }
    }

    #[tokio::test]
    async fn claims_several_and_fences_stale_attempts() {
        for (db, _dir) in dbs().await {
            claims_several_and_fences_stale_attempts_on(&db).await;
        }
    }

    async fn claims_several_and_fences_stale_attempts_on(db: &Db) {
        let tenant = db.tenant_by_name("t").await.unwrap().id;
        for k in ["a", "b", "c"] {
            enqueue(db, &tenant, k).await;
        }
        let claimed = db.claim(2, 60_000).await.unwrap();
        assert_eq!(claimed.len(), 2, "several in one claim");
        assert!(claimed.iter().all(|j| j.state == JobState::Running && j.attempts == 1));
        assert_eq!(db.claim(5, 60_000).await.unwrap().len(), 1, "only the one left");
        assert!(
            db.claim(5, 60_000).await.unwrap().is_empty(),
            "leased jobs are not claimed again"
        );

        // A lease that expired is reclaimed with a new attempt number; the
        // old attempt can no longer write anything.
        let job = &claimed[0];
        sqlx::query("UPDATE jobs SET lease_until = 0 WHERE id = $1")
            .bind(&job.id)
            .execute(&db.pool)
            .await
            .unwrap();
        let again = db.claim(5, 60_000).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 2);
        let progress = JobProgress::default();
        assert_eq!(db.heartbeat(&job.id, 1, 1000, progress).await.unwrap(), Fenced::Lost);
        assert_eq!(
            db.succeed(job, progress, Some(&object(job, "old"))).await.unwrap(),
            Fenced::Lost
        );
        assert!(
            db.object(&tenant, &job.object_key).await.is_err(),
            "the stale attempt stored nothing"
        );
        assert_eq!(
            db.succeed(&again[0], progress, Some(&object(&again[0], "new")))
                .await
                .unwrap(),
            Fenced::Done(Placed::Stored)
        );
        let stored = db.object(&tenant, &job.object_key).await.unwrap();
        assert_eq!(stored.location, "new");
        assert_eq!(
            (stored.meta.as_deref(), stored.etag),
            (Some(r#"{"content_type":"text/plain"}"#), Some("11".repeat(16))),
            "metadata and ETag are kept with the object"
        );

        // A cancelled job cannot be marked succeeded by its running attempt.
        let other = &claimed[1];
        let c = db.cancel(&tenant, &other.id).await.unwrap();
        assert_eq!(c.state, JobState::Cancelled);
        assert_eq!(
            db.succeed(other, progress, Some(&object(other, "x"))).await.unwrap(),
            Fenced::Lost
        );

        // Another tenant sees none of it.
        db.create_tenant("u", b"sealed", "sluice1y").await.unwrap();
        let u = db.tenant_by_name("u").await.unwrap().id;
        assert!(db.job(&u, &job.id).await.is_err());
        assert!(db.jobs(&u, None, None, 100).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_running_attempts_container_stays_in_use_until_its_fence_closes() {
        for (db, _dir) in dbs().await {
            let tenant = db.tenant_by_name("t").await.unwrap().id;
            let job = enqueue(&db, &tenant, "k").await;
            let container = |attempt| Objects::container_path(&tenant, &job.id, attempt);
            assert!(db.staging_in_use(&job.id, "staging/k").await.unwrap());
            assert!(!db.staging_in_use(&job.id, "staging/other").await.unwrap());
            assert!(
                !db.location_in_use(&container(1)).await.unwrap(),
                "queued: nothing written yet"
            );
            let first = db.claim(1, 60_000).await.unwrap().remove(0);
            assert!(
                db.location_in_use(&container(1)).await.unwrap(),
                "written but not yet committed (a commit may wait out a database restart)"
            );
            sqlx::query("UPDATE jobs SET lease_until = 0 WHERE id = $1")
                .bind(&job.id)
                .execute(&db.pool)
                .await
                .unwrap();
            let second = db.claim(1, 60_000).await.unwrap().remove(0);
            assert!(
                !db.location_in_use(&container(1)).await.unwrap(),
                "the stale attempt can no longer commit"
            );
            assert!(db.location_in_use(&container(2)).await.unwrap());
            let progress = JobProgress::default();
            assert_eq!(
                db.succeed(&first, progress, Some(&object(&first, &container(1))))
                    .await
                    .unwrap(),
                Fenced::Lost
            );
            db.succeed(&second, progress, Some(&object(&second, &container(2))))
                .await
                .unwrap();
            assert!(db.location_in_use(&container(2)).await.unwrap(), "now the object's");
            assert!(
                !db.staging_in_use(&job.id, "staging/k").await.unwrap(),
                "a succeeded job no longer needs its staged upload"
            );
            assert!(!db.location_in_use(&container(1)).await.unwrap());
            assert!(!db.location_in_use("objects/x/not-a-container").await.unwrap());

            // Checked in batches, the same answers: a second job's running
            // attempt and a retired container among more unknown locations
            // than one statement takes.
            let other = enqueue(&db, &tenant, "k2").await;
            db.claim(1, 60_000).await.unwrap();
            db.delete_object(&tenant, "k").await.unwrap();
            let running = Objects::container_path(&tenant, &other.id, 1);
            let mut asked: Vec<String> = (0..super::super::IN_USE_BATCH + 7)
                .map(|i| Objects::container_path(&tenant, &format!("gone-{i}"), 1))
                .collect();
            asked.extend([container(1), container(2), running.clone(), "objects/x/y".into()]);
            let used = db.locations_in_use(&asked).await.unwrap();
            let want: std::collections::HashSet<String> = [container(2), running].into();
            assert_eq!(used, want, "the retired container and the running attempt's");
        }
    }

    #[test]
    fn container_paths_name_their_job_and_attempt() {
        let path = Objects::container_path("tenant", "job-id", 12);
        assert_eq!(Objects::container_owner(&path), Some(("job-id", 12)));
        let partial = format!("{path}.partial");
        assert_eq!(Objects::container_owner(&partial), Some(("job-id", 12)));
        for other in [
            "staging/t/j",
            "objects/t/j.sluice",
            "objects/j-1.sluice",
            "objects/t/j-x.sluice",
        ] {
            assert_eq!(Objects::container_owner(other), None, "{other}");
        }
    }

    #[tokio::test]
    async fn read_then_write_transactions_survive_concurrent_writers() {
        for (db, _dir) in dbs().await {
            let tenant = db.tenant_by_name("t").await.unwrap().id;
            let writers: Vec<_> = (0..4)
                .map(|w| {
                    let (db, tenant) = (db.clone(), tenant.clone());
                    tokio::spawn(async move {
                        for i in 0..40 {
                            enqueue(&db, &tenant, &format!("w{w}/{i}")).await;
                        }
                    })
                })
                .collect();
            // Reads the limits, then writes them: must not fail because
            // another connection committed in between.
            for i in 0..40 {
                db.set_tenant_limits(
                    "t",
                    &crate::LimitsUpdate {
                        max_queued: Some(Some(1000 + i)),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            }
            for w in writers {
                w.await.unwrap();
            }
        }
    }

    #[tokio::test]
    async fn concurrent_claims_never_hand_out_a_job_twice() {
        for (db, _dir) in dbs().await {
            let tenant = db.tenant_by_name("t").await.unwrap().id;
            for i in 0..60 {
                enqueue(&db, &tenant, &format!("k{i}")).await;
            }
            let claimers: Vec<_> = (0..6)
                .map(|_| {
                    let db = db.clone();
                    tokio::spawn(async move {
                        let mut mine = Vec::new();
                        loop {
                            let got = db.claim(4, 60_000).await.unwrap();
                            if got.is_empty() {
                                return mine;
                            }
                            mine.extend(got.into_iter().map(|j| j.id));
                        }
                    })
                })
                .collect();
            let mut all = Vec::new();
            for c in claimers {
                all.extend(c.await.unwrap());
            }
            let n = all.len();
            all.sort();
            all.dedup();
            assert_eq!(
                (n, all.len()),
                (60, 60),
                "{:?}: every job claimed exactly once",
                db.backend()
            );
        }
    }

    #[tokio::test]
    async fn replacing_an_object_retires_the_old_container_and_requeue_delays() {
        for (db, _dir) in dbs().await {
            replacing_an_object_retires_the_old_container_and_requeue_delays_on(&db).await;
        }
    }

    async fn replacing_an_object_retires_the_old_container_and_requeue_delays_on(db: &Db) {
        let tenant = db.tenant_by_name("t").await.unwrap().id;
        enqueue(db, &tenant, "k").await;
        let first = db.claim(1, 60_000).await.unwrap().pop().unwrap();
        assert_eq!(first.object_key, "k");
        db.succeed(&first, JobProgress::default(), Some(&object(&first, "v1")))
            .await
            .unwrap();
        enqueue(db, &tenant, "k").await;
        let second = db.claim(1, 60_000).await.unwrap().pop().unwrap();
        // A transient failure puts it back, not runnable before its delay.
        assert_eq!(
            db.requeue(&second, 60_000, Some("disk hiccup")).await.unwrap(),
            Fenced::Done(())
        );
        assert!(db.claim(1, 60_000).await.unwrap().is_empty());
        sqlx::query("UPDATE jobs SET run_after = 0 WHERE id = $1")
            .bind(&second.id)
            .execute(&db.pool)
            .await
            .unwrap();
        let second = db.claim(1, 60_000).await.unwrap().pop().unwrap();
        assert_eq!(second.attempts, 2);
        let placed = db
            .succeed(&second, JobProgress::default(), Some(&object(&second, "v2")))
            .await
            .unwrap();
        assert_eq!(placed, Fenced::Done(Placed::Stored));
        // The replaced container is kept for readers, and counts as in use
        // until the reaper's retired pass.
        assert!(db.location_in_use("v1").await.unwrap());
        assert_eq!(
            db.retired_before(std::time::Duration::ZERO, 10).await.unwrap(),
            vec!["v1".to_string()]
        );
        assert!(db
            .retired_before(std::time::Duration::from_secs(60), 10)
            .await
            .unwrap()
            .is_empty());
        db.forget_retired("v1").await.unwrap();
        assert!(!db.location_in_use("v1").await.unwrap());
    }

    #[tokio::test]
    async fn an_older_upload_never_replaces_a_newer_write_nor_undoes_a_delete() {
        for (db, _dir) in dbs().await {
            an_older_upload_never_replaces_a_newer_write_nor_undoes_a_delete_on(&db).await;
        }
    }

    #[tokio::test]
    async fn of_overlapping_streamed_uploads_the_one_that_ends_last_wins() {
        for (db, _dir) in dbs().await {
            let tenant = db.tenant_by_name("t").await.unwrap().id;
            // X starts streaming, then Y; Y's body ends first, X's last.
            let x = db.start_streamed(&new_job(&tenant, "k"), 60_000).await.unwrap();
            let y = db.start_streamed(&new_job(&tenant, "k"), 60_000).await.unwrap();
            let placed = db
                .succeed(&y, JobProgress::default(), Some(&object(&y, "y")))
                .await
                .unwrap();
            assert_eq!(placed, Fenced::Done(Placed::Stored));
            let placed = db
                .succeed(&x, JobProgress::default(), Some(&object(&x, "x")))
                .await
                .unwrap();
            assert_eq!(placed, Fenced::Done(Placed::Stored));
            assert_eq!(db.object(&tenant, "k").await.unwrap().location, "x");
            // A delete while an upload streams is before the upload's end.
            let z = db.start_streamed(&new_job(&tenant, "k"), 60_000).await.unwrap();
            db.delete_object(&tenant, "k").await.unwrap();
            let placed = db
                .succeed(&z, JobProgress::default(), Some(&object(&z, "z")))
                .await
                .unwrap();
            assert_eq!(placed, Fenced::Done(Placed::Stored));
            assert_eq!(db.object(&tenant, "k").await.unwrap().location, "z");
            // A queued upload accepted before a streamed one ends loses to it.
            enqueue(&db, &tenant, "k").await;
            let w = db.start_streamed(&new_job(&tenant, "k"), 60_000).await.unwrap();
            let placed = db
                .succeed(&w, JobProgress::default(), Some(&object(&w, "w")))
                .await
                .unwrap();
            assert_eq!(placed, Fenced::Done(Placed::Stored));
            let q = db.claim(1, 60_000).await.unwrap().pop().unwrap();
            let placed = db
                .succeed(&q, JobProgress::default(), Some(&object(&q, "q")))
                .await
                .unwrap();
            assert_eq!(placed, Fenced::Done(Placed::Superseded));
            assert_eq!(db.object(&tenant, "k").await.unwrap().location, "w");
        }
    }

    /// #23: accepted writes to a key take effect in the order they were
    /// accepted, whatever order their jobs finish in.
    async fn an_older_upload_never_replaces_a_newer_write_nor_undoes_a_delete_on(db: &Db) {
        let tenant = db.tenant_by_name("t").await.unwrap().id;
        // A is accepted (queued); B, accepted after it, streams in and is
        // stored first.
        let a = enqueue(db, &tenant, "k").await;
        let b = db.start_streamed(&new_job(&tenant, "k"), 60_000).await.unwrap();
        assert!(b.accept_seq > a.accept_seq, "{} {}", b.accept_seq, a.accept_seq);
        let placed = db
            .succeed(&b, JobProgress::default(), Some(&object(&b, "b")))
            .await
            .unwrap();
        assert_eq!(placed, Fenced::Done(Placed::Stored));
        // A's job finishes now: superseded, B stays.
        let a = db.claim(1, 60_000).await.unwrap().pop().unwrap();
        assert_eq!(a.object_key, "k");
        let placed = db
            .succeed(&a, JobProgress::default(), Some(&object(&a, "a")))
            .await
            .unwrap();
        assert_eq!(placed, Fenced::Done(Placed::Superseded));
        assert_eq!(db.object(&tenant, "k").await.unwrap().location, "b");
        let a = db.job(&tenant, &a.id).await.unwrap();
        assert!(a.superseded && a.state == JobState::Succeeded, "{a:?}");
        assert!(!db.job(&tenant, &b.id).await.unwrap().superseded);
        assert!(
            !db.location_in_use("a").await.unwrap(),
            "a superseded container is nobody's"
        );

        // C is accepted, then the key is deleted: C's job, finishing after
        // the delete, does not bring the object back.
        enqueue(db, &tenant, "k").await;
        db.delete_object(&tenant, "k").await.unwrap();
        let c = db.claim(1, 60_000).await.unwrap().pop().unwrap();
        let placed = db
            .succeed(&c, JobProgress::default(), Some(&object(&c, "c")))
            .await
            .unwrap();
        assert_eq!(placed, Fenced::Done(Placed::Superseded));
        assert!(db.object(&tenant, "k").await.is_err(), "the delete wins");
        // A delete of nothing is not found, yet takes its place too.
        enqueue(db, &tenant, "k").await;
        assert!(matches!(db.delete_object(&tenant, "k").await, Err(Error::NotFound(_))));
        let d = db.claim(1, 60_000).await.unwrap().pop().unwrap();
        let placed = db
            .succeed(&d, JobProgress::default(), Some(&object(&d, "d")))
            .await
            .unwrap();
        assert_eq!(placed, Fenced::Done(Placed::Superseded));
        // An upload accepted after the delete is stored.
        enqueue(db, &tenant, "k").await;
        let e = db.claim(1, 60_000).await.unwrap().pop().unwrap();
        let placed = db
            .succeed(&e, JobProgress::default(), Some(&object(&e, "e")))
            .await
            .unwrap();
        assert_eq!(placed, Fenced::Done(Placed::Stored));
        assert_eq!(db.object(&tenant, "k").await.unwrap().location, "e");
    }

    #[tokio::test]
    async fn quotas_count_objects_and_staged_uploads_and_changes_move_the_revision() {
        for (db, _dir) in dbs().await {
            quotas_count_objects_and_staged_uploads_and_changes_move_the_revision_on(&db).await;
        }
    }

    async fn quotas_count_objects_and_staged_uploads_and_changes_move_the_revision_on(db: &Db) {
        let t = db.tenant_by_name("t").await.unwrap();
        let r0 = db.auth_revision().await.unwrap();
        assert_eq!(db.stored_bytes(&t.id).await.unwrap(), 0);
        let a = enqueue(db, &t.id, "a").await;
        enqueue(db, &t.id, "b").await;
        assert_eq!(db.queued_jobs(&t.id).await.unwrap(), 2);
        assert_eq!(db.stored_bytes(&t.id).await.unwrap(), 200, "two staged uploads");
        let claimed = db.claim(1, 60_000).await.unwrap();
        assert_eq!(claimed[0].id, a.id);
        let mut o = object(&claimed[0], "objects/a-1");
        o.container_len = 70;
        db.succeed(&claimed[0], JobProgress::default(), Some(&o)).await.unwrap();
        assert_eq!(db.queued_jobs(&t.id).await.unwrap(), 1);
        assert_eq!(
            db.stored_bytes(&t.id).await.unwrap(),
            170,
            "one container, one staged upload"
        );

        let set = db
            .set_tenant_limits(
                "t",
                &crate::LimitsUpdate {
                    quota_bytes: Some(Some(1000)),
                    rate_per_sec: Some(Some(5.0)),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(set.quota_bytes, Some(1000));
        let r1 = db.auth_revision().await.unwrap();
        assert!(r1 > r0);
        let cleared = db
            .set_tenant_limits(
                "t",
                &crate::LimitsUpdate {
                    rate_per_sec: Some(None),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!((cleared.rate_per_sec, cleared.quota_bytes), (None, Some(1000)));
        assert_eq!(db.all_tenant_limits().await.unwrap()[0].1, cleared);
        assert!(db
            .set_tenant_limits("nobody", &crate::LimitsUpdate::default())
            .await
            .is_err());
        let tok = db.create_token(&t.id, "hash", crate::Scope::Read).await.unwrap();
        db.revoke_token(&tok).await.unwrap();
        assert!(db.auth_revision().await.unwrap() > r1);
        assert!(db.principal("hash").await.unwrap().is_none());
    }
}
