//! Resumable upload sessions: what was announced, which parts arrived, and
//! the one transaction that turns a complete session into a queued job.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::jobs::enqueue_in;
use crate::{now_ms, Db, Error, Job, NewJob, Result};

/// A session's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadState {
    /// Taking parts.
    Open,
    /// Turned into a job.
    Completed,
    /// Given up by the client.
    Aborted,
    /// Not completed in time; its parts were reclaimed.
    Expired,
}

impl UploadState {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            UploadState::Open => "open",
            UploadState::Completed => "completed",
            UploadState::Aborted => "aborted",
            UploadState::Expired => "expired",
        }
    }

    fn parse(s: &str) -> Option<UploadState> {
        Some(match s {
            "open" => UploadState::Open,
            "completed" => UploadState::Completed,
            "aborted" => UploadState::Aborted,
            "expired" => UploadState::Expired,
            _ => return None,
        })
    }
}

/// A resumable upload session.
#[derive(Debug, Clone)]
pub struct Upload {
    /// Session id.
    pub id: String,
    /// Owner.
    pub tenant_id: String,
    /// The object it will become.
    pub object_key: String,
    /// Pipeline name.
    pub pipeline: String,
    /// Total bytes announced.
    pub size: i64,
    /// Bytes per part (the last may be shorter).
    pub part_size: i64,
    /// BLAKE3 (hex) the whole must have, if given.
    pub expected_digest: Option<String>,
    /// State.
    pub state: UploadState,
    /// The job it became, once completed.
    pub job_id: Option<String>,
    /// Creation time, unix ms.
    pub created_at: i64,
    /// Expiry time, unix ms.
    pub expires_at: i64,
    /// The store's multipart upload its parts go to (S3), if any; else
    /// each part is an object of its own.
    pub multipart_id: Option<String>,
}

impl Upload {
    /// How many parts the whole takes (at least one, for an empty upload).
    pub fn part_count(&self) -> i64 {
        if self.size == 0 {
            1
        } else {
            (self.size + self.part_size - 1) / self.part_size
        }
    }

    /// The exact size part `number` (0-based) must have.
    pub fn part_len(&self, number: i64) -> i64 {
        if number + 1 < self.part_count() {
            self.part_size
        } else {
            self.size - self.part_size * (self.part_count() - 1)
        }
    }
}

/// A part that arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPart {
    /// 0-based part number.
    pub number: i64,
    /// Its bytes.
    pub size: i64,
    /// BLAKE3 (hex) of its bytes.
    pub digest: String,
    /// The store's id of the part within the session's multipart upload.
    pub etag: Option<String>,
}

/// What a new session announces.
#[derive(Debug, Clone)]
pub struct NewUpload {
    /// Owner.
    pub tenant_id: String,
    /// The object it will become.
    pub object_key: String,
    /// Pipeline name.
    pub pipeline: String,
    /// Total bytes.
    pub size: i64,
    /// Bytes per part.
    pub part_size: i64,
    /// BLAKE3 (hex) the whole must have.
    pub expected_digest: Option<String>,
    /// Time to live, ms.
    pub ttl_ms: i64,
}

const UPLOAD_COLUMNS: &str = "id, tenant_id, object_key, pipeline, size, part_size, expected_digest, state, job_id, \
                              created_at, expires_at, multipart_id";

fn upload_from(row: &AnyRow) -> Result<Upload> {
    let state: String = row.try_get("state")?;
    Ok(Upload {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        object_key: row.try_get("object_key")?,
        pipeline: row.try_get("pipeline")?,
        size: row.try_get("size")?,
        part_size: row.try_get("part_size")?,
        expected_digest: row.try_get("expected_digest")?,
        state: UploadState::parse(&state).ok_or_else(|| Error::Corrupt(format!("upload state {state:?}")))?,
        job_id: row.try_get("job_id")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        multipart_id: row.try_get("multipart_id")?,
    })
}

impl Db {
    /// Opens a session.
    pub async fn create_upload(&self, u: &NewUpload) -> Result<Upload> {
        let now = now_ms();
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO uploads (id, tenant_id, object_key, pipeline, size, part_size, expected_digest, state, \
             created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9) RETURNING {UPLOAD_COLUMNS}"
        )))
        .bind(crate::new_id()?)
        .bind(&u.tenant_id)
        .bind(&u.object_key)
        .bind(&u.pipeline)
        .bind(u.size)
        .bind(u.part_size)
        .bind(&u.expected_digest)
        .bind(now)
        .bind(now.saturating_add(u.ttl_ms))
        .fetch_one(&self.pool)
        .await?;
        upload_from(&row)
    }

    /// A tenant's session (another tenant's is "not found").
    pub async fn upload(&self, tenant_id: &str, id: &str) -> Result<Upload> {
        match self.upload_by_id(id).await? {
            u if u.tenant_id == tenant_id => Ok(u),
            _ => Err(Error::NotFound(format!("upload {id:?}"))),
        }
    }

    /// The parts that arrived, by number.
    pub async fn upload_parts(&self, upload_id: &str) -> Result<Vec<UploadPart>> {
        let rows =
            sqlx::query("SELECT number, size, digest, etag FROM upload_parts WHERE upload_id = $1 ORDER BY number")
                .bind(upload_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                Ok(UploadPart {
                    number: r.try_get("number")?,
                    size: r.try_get("size")?,
                    digest: r.try_get("digest")?,
                    etag: r.try_get("etag")?,
                })
            })
            .collect()
    }

    /// Records a stored part (again: the newer copy replaced the older).
    pub async fn record_part(&self, upload_id: &str, part: &UploadPart) -> Result<()> {
        sqlx::query(
            "INSERT INTO upload_parts (upload_id, number, size, digest, etag, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (upload_id, number) DO UPDATE SET size = excluded.size, \
             digest = excluded.digest, etag = excluded.etag, created_at = excluded.created_at",
        )
        .bind(upload_id)
        .bind(part.number)
        .bind(part.size)
        .bind(&part.digest)
        .bind(&part.etag)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records the store's multipart upload a session's parts go to.
    pub async fn set_upload_multipart(&self, id: &str, multipart_id: &str) -> Result<()> {
        sqlx::query("UPDATE uploads SET multipart_id = $1 WHERE id = $2")
            .bind(multipart_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records that a closed session's multipart upload was aborted.
    pub async fn clear_upload_multipart(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE uploads SET multipart_id = NULL WHERE id = $1 AND state IN ('aborted', 'expired')")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Aborted or expired sessions that still name a multipart upload.
    pub async fn closed_uploads_with_multipart(&self, limit: i64) -> Result<Vec<Upload>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE multipart_id IS NOT NULL \
             AND state IN ('aborted', 'expired') LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(upload_from).collect()
    }

    /// A session by id, whatever its tenant (for the reaper).
    pub async fn upload_by_id(&self, id: &str) -> Result<Upload> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {UPLOAD_COLUMNS} FROM uploads WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => upload_from(&r),
            None => Err(Error::NotFound(format!("upload {id:?}"))),
        }
    }

    /// Turns an open session into `job`, in one transaction: a session
    /// completes once (a second completion is a conflict).
    pub async fn complete_upload(&self, upload: &Upload, job: &NewJob) -> Result<Job> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE uploads SET state = 'completed', job_id = $1 WHERE id = $2 AND tenant_id = $3 AND state = 'open'",
        )
        .bind(&job.id)
        .bind(&upload.id)
        .bind(&upload.tenant_id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Err(Error::Conflict(format!("a completion of upload {:?}", upload.id)));
        }
        let job = enqueue_in(&mut tx, self.backend, job).await?;
        tx.commit().await?;
        self.announce_job().await;
        Ok(job)
    }

    /// Marks an open session `to` (aborted or expired); false if it was
    /// not open any more.
    pub async fn close_upload(&self, id: &str, to: UploadState) -> Result<bool> {
        let r = sqlx::query("UPDATE uploads SET state = $1 WHERE id = $2 AND state = 'open'")
            .bind(to.as_str())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Open sessions past their expiry: `(tenant_id, id)`.
    pub async fn expired_uploads(&self, limit: i64) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT tenant_id, id FROM uploads WHERE state = 'open' AND expires_at < $1 ORDER BY expires_at LIMIT $2",
        )
        .bind(now_ms())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("tenant_id")?, r.try_get("id")?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JobKind;

    #[test]
    fn parts_cover_the_size_exactly() {
        let mut u = Upload {
            id: "u".into(),
            tenant_id: "t".into(),
            object_key: "k".into(),
            pipeline: "default".into(),
            size: 10,
            part_size: 4,
            expected_digest: None,
            state: UploadState::Open,
            job_id: None,
            created_at: 0,
            expires_at: 0,
            multipart_id: None,
        };
        assert_eq!(u.part_count(), 3);
        assert_eq!((u.part_len(0), u.part_len(1), u.part_len(2)), (4, 4, 2));
        u.size = 8;
        assert_eq!((u.part_count(), u.part_len(1)), (2, 4));
        u.size = 0;
        assert_eq!((u.part_count(), u.part_len(0)), (1, 0));
    }

    #[tokio::test]
    async fn a_session_completes_once_into_a_job() {
        for (db, _dir) in crate::db::test_dbs().await {
            a_session_completes_once_into_a_job_on(&db).await;
        }
    }

    async fn a_session_completes_once_into_a_job_on(db: &Db) {
        let t = db.create_tenant("acme", b"sealed", "sluice1x").await.unwrap();
        let u = db
            .create_upload(&NewUpload {
                tenant_id: t.id.clone(),
                object_key: "big".into(),
                pipeline: "default".into(),
                size: 10,
                part_size: 4,
                expected_digest: None,
                ttl_ms: 60_000,
            })
            .await
            .unwrap();
        assert_eq!(u.state, UploadState::Open);
        let part = |n: i64, d: &str| UploadPart {
            number: n,
            size: u.part_len(n),
            digest: d.into(),
            etag: None,
        };
        db.record_part(&u.id, &part(2, "c")).await.unwrap();
        db.record_part(&u.id, &part(0, "a")).await.unwrap();
        db.record_part(&u.id, &part(0, "a2")).await.unwrap();
        let parts = db.upload_parts(&u.id).await.unwrap();
        assert_eq!(
            parts,
            vec![part(0, "a2"), part(2, "c")],
            "in order; a resent part replaces"
        );
        assert!(matches!(db.upload("other", &u.id).await, Err(Error::NotFound(_))));
        let job = NewJob {
            id: crate::new_id().unwrap(),
            tenant_id: t.id.clone(),
            kind: JobKind::Process,
            object_key: "big".into(),
            pipeline: "default".into(),
            staging: Some("uploads/x/".into()),
            expected_digest: None,
            max_attempts: 3,
            staged_bytes: 10,
            meta: None,
        };
        let j = db.complete_upload(&u, &job).await.unwrap();
        assert_eq!(j.staging.as_deref(), Some("uploads/x/"));
        assert!(matches!(db.complete_upload(&u, &job).await, Err(Error::Conflict(_))));
        let now = db.upload(&t.id, &u.id).await.unwrap();
        assert_eq!(
            (now.state, now.job_id.as_deref()),
            (UploadState::Completed, Some(job.id.as_str()))
        );
        assert!(
            !db.close_upload(&u.id, UploadState::Aborted).await.unwrap(),
            "not open any more"
        );
        assert!(db.expired_uploads(10).await.unwrap().is_empty());
    }
}
