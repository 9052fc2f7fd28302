//! The `multipart_uploads` and `multipart_parts` tables: S3 multipart
//! uploads, their parts (size and MD5; the bytes are staged in the object
//! store), and their completion into a queued job.

use sqlx::Row;

use super::jobs::{enqueue_in, NewJob};
use super::Db;
use crate::error::{Error, Result};
use crate::model::Job;
use crate::{new_id, now_ms};

/// A multipart upload's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multipart {
    /// The upload id.
    pub id: String,
    /// Owner.
    pub tenant_id: String,
    /// The object key it will store.
    pub object_key: String,
    /// The pipeline it will store through.
    pub pipeline: String,
    /// What the job will carry for the object (JSON).
    pub meta: Option<String>,
    /// `open`, `completed` or `aborted`.
    pub state: String,
    /// The job completing it queued.
    pub job_id: Option<String>,
    /// Started at, unix milliseconds.
    pub created_at: i64,
}

/// A part that arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartPart {
    /// Its number, 1 to 10000.
    pub number: i64,
    /// Its bytes.
    pub size: i64,
    /// Hex MD5 of its bytes.
    pub etag: String,
    /// The checksum its client had checked, as `ALGO:BASE64` (`sha256:…`).
    pub checksum: Option<String>,
    /// How it is staged: `None` as its plain bytes (an earlier version's
    /// parts), otherwise as a container of its own, with what the service
    /// keeps to move its chunks into the object (opaque here).
    pub sealed: Option<String>,
    /// When it arrived, unix milliseconds.
    pub created_at: i64,
}

const COLUMNS: &str = "id, tenant_id, object_key, pipeline, meta, state, job_id, created_at";

fn multipart_from(r: &sqlx::any::AnyRow) -> Result<Multipart> {
    Ok(Multipart {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        object_key: r.try_get("object_key")?,
        pipeline: r.try_get("pipeline")?,
        meta: r.try_get("meta")?,
        state: r.try_get("state")?,
        job_id: r.try_get("job_id")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Db {
    /// Starts a multipart upload of `object_key`; returns it.
    pub async fn create_multipart(
        &self,
        tenant_id: &str,
        object_key: &str,
        pipeline: &str,
        meta: Option<&str>,
    ) -> Result<Multipart> {
        let id = new_id()?;
        let now = now_ms();
        sqlx::query(
            "INSERT INTO multipart_uploads (id, tenant_id, object_key, pipeline, meta, state, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'open', $6)",
        )
        .bind(&id)
        .bind(tenant_id)
        .bind(object_key)
        .bind(pipeline)
        .bind(meta)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(Multipart {
            id,
            tenant_id: tenant_id.to_string(),
            object_key: object_key.to_string(),
            pipeline: pipeline.to_string(),
            meta: meta.map(str::to_string),
            state: "open".into(),
            job_id: None,
            created_at: now,
        })
    }

    /// A tenant's multipart upload, in any state.
    pub async fn multipart(&self, tenant_id: &str, id: &str) -> Result<Multipart> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM multipart_uploads WHERE tenant_id = $1 AND id = $2"
        )))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::NotFound(format!("multipart upload {id:?}")))?;
        multipart_from(&row)
    }

    /// A multipart upload by id alone (the reaper's view).
    pub async fn multipart_by_id(&self, id: &str) -> Result<Multipart> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM multipart_uploads WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::NotFound(format!("multipart upload {id:?}")))?;
        multipart_from(&row)
    }

    /// A tenant's open multipart uploads of keys starting with `prefix`,
    /// by key then id, after `(key, id)` if given.
    pub async fn open_multiparts(
        &self,
        tenant_id: &str,
        prefix: &str,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<Multipart>> {
        let (after_key, after_id) = after.unwrap_or(("", ""));
        let c = self.bytewise();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM multipart_uploads WHERE tenant_id = $1 AND state = 'open' \
             AND substr(object_key, 1, length($2)) = $2 \
             AND (object_key{c} > $3{c} OR (object_key = $3 AND id{c} > $4{c})) \
             ORDER BY object_key{c}, id{c} LIMIT $5"
        )))
        .bind(tenant_id)
        .bind(prefix)
        .bind(after_key)
        .bind(after_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(multipart_from).collect()
    }

    /// Records `part` of an open upload (replacing one sent before under
    /// its number); its `created_at` is now.
    pub async fn put_multipart_part(&self, upload_id: &str, part: &MultipartPart) -> Result<()> {
        let r = sqlx::query(
            "INSERT INTO multipart_parts (upload_id, number, size, etag, checksum, sealed, created_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS \
             (SELECT 1 FROM multipart_uploads WHERE id = $1 AND state = 'open') \
             ON CONFLICT (upload_id, number) DO UPDATE SET size = excluded.size, etag = excluded.etag, \
             checksum = excluded.checksum, sealed = excluded.sealed, created_at = excluded.created_at",
        )
        .bind(upload_id)
        .bind(part.number)
        .bind(part.size)
        .bind(&part.etag)
        .bind(part.checksum.as_deref())
        .bind(part.sealed.as_deref())
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(Error::NotFound(format!("open multipart upload {upload_id:?}")));
        }
        Ok(())
    }

    /// An upload's parts, by number.
    pub async fn multipart_parts(&self, upload_id: &str) -> Result<Vec<MultipartPart>> {
        let rows = sqlx::query(
            "SELECT number, size, etag, checksum, sealed, created_at FROM multipart_parts WHERE upload_id = $1 \
             ORDER BY number",
        )
        .bind(upload_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MultipartPart {
                    number: r.try_get("number")?,
                    size: r.try_get("size")?,
                    etag: r.try_get("etag")?,
                    checksum: r.try_get("checksum")?,
                    sealed: r.try_get("sealed")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Completes an open upload into `job` (queued in the same
    /// transaction); a conflict if it is no longer open.
    pub async fn complete_multipart(&self, upload_id: &str, job: &NewJob) -> Result<Job> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE multipart_uploads SET state = 'completed', job_id = $1 WHERE id = $2 AND state = 'open'",
        )
        .bind(&job.id)
        .bind(upload_id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Err(Error::Conflict(format!(
                "a completion of multipart upload {upload_id:?}"
            )));
        }
        // The parts' rows stay while the job reads them (they say how each
        // part was staged); [`Db::forget_assembled_parts`] removes them.
        let job = enqueue_in(&mut tx, self.backend, job).await?;
        tx.commit().await?;
        self.announce_job().await;
        Ok(job)
    }

    /// Aborts an open upload; false if it was not open.
    pub async fn abort_multipart(&self, upload_id: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query("UPDATE multipart_uploads SET state = 'aborted' WHERE id = $1 AND state = 'open'")
            .bind(upload_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM multipart_parts WHERE upload_id = $1")
            .bind(upload_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// Deletes the part rows of completed uploads whose job has ended
    /// (the object is stored, or will never be); how many.
    pub async fn forget_assembled_parts(&self) -> Result<u64> {
        let r = sqlx::query(
            "DELETE FROM multipart_parts WHERE upload_id IN (SELECT u.id FROM multipart_uploads u \
             JOIN jobs j ON j.id = u.job_id WHERE u.state = 'completed' \
             AND j.state IN ('succeeded', 'failed', 'cancelled'))",
        )
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// Open uploads started before `before` (unix ms): `(tenant_id, id)`.
    pub async fn stale_multiparts(&self, before: i64, limit: i64) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT tenant_id, id FROM multipart_uploads WHERE state = 'open' AND created_at < $1 \
             ORDER BY created_at LIMIT $2",
        )
        .bind(before)
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
    use crate::db::test_dbs;
    use crate::{Error, JobKind, MultipartPart, NewJob};

    fn part(number: i64, size: i64, etag: &str, checksum: Option<&str>) -> MultipartPart {
        MultipartPart {
            number,
            size,
            etag: etag.into(),
            checksum: checksum.map(str::to_string),
            sealed: (number == 2).then(|| "sealed".to_string()),
            created_at: 0,
        }
    }

    #[tokio::test]
    async fn parts_replace_and_completion_queues_one_job_once() {
        for (db, _guard) in test_dbs().await {
            let t = db.create_tenant("acme", b"s", "sluice1x").await.unwrap();
            let u = db.create_multipart(&t.id, "b/k", "default", Some("{}")).await.unwrap();
            db.put_multipart_part(&u.id, &part(2, 10, "aa", None)).await.unwrap();
            db.put_multipart_part(&u.id, &part(1, 20, "bb", None)).await.unwrap();
            db.put_multipart_part(&u.id, &part(2, 30, "cc", Some("crc32:AAAAAA==")))
                .await
                .unwrap();
            let parts = db.multipart_parts(&u.id).await.unwrap();
            assert_eq!(
                parts
                    .iter()
                    .map(|p| (
                        p.number,
                        p.size,
                        p.etag.as_str(),
                        p.checksum.as_deref(),
                        p.sealed.as_deref()
                    ))
                    .collect::<Vec<_>>(),
                [
                    (1, 20, "bb", None, None),
                    (2, 30, "cc", Some("crc32:AAAAAA=="), Some("sealed"))
                ]
            );
            let other = db.create_multipart(&t.id, "b/a", "default", None).await.unwrap();
            let listed = db.open_multiparts(&t.id, "b/", None, 10).await.unwrap();
            assert_eq!(
                listed.iter().map(|m| m.object_key.as_str()).collect::<Vec<_>>(),
                ["b/a", "b/k"]
            );
            let after = db
                .open_multiparts(&t.id, "b/", Some(("b/a", &other.id)), 10)
                .await
                .unwrap();
            assert_eq!(after.len(), 1);
            let job = NewJob {
                id: crate::new_id().unwrap(),
                tenant_id: t.id.clone(),
                kind: JobKind::Process,
                object_key: "b/k".into(),
                pipeline: "default".into(),
                staging: Some("uploads/x/".into()),
                expected_digest: None,
                max_attempts: 3,
                staged_bytes: 50,
                meta: None,
            };
            let queued = db.complete_multipart(&u.id, &job).await.unwrap();
            assert_eq!(queued.staging.as_deref(), Some("uploads/x/"));
            // The parts' rows stay while the job needs them.
            assert_eq!(db.forget_assembled_parts().await.unwrap(), 0);
            assert_eq!(db.multipart_parts(&u.id).await.unwrap().len(), 2);
            assert!(matches!(
                db.complete_multipart(&u.id, &job).await,
                Err(Error::Conflict(_))
            ));
            assert!(matches!(
                db.put_multipart_part(&u.id, &part(3, 1, "dd", None)).await,
                Err(Error::NotFound(_))
            ));
            db.cancel(&t.id, &queued.id).await.unwrap();
            assert_eq!(db.forget_assembled_parts().await.unwrap(), 2);
            assert!(db.multipart_parts(&u.id).await.unwrap().is_empty());
            let now = db.multipart(&t.id, &u.id).await.unwrap();
            assert_eq!(
                (now.state.as_str(), now.job_id.as_deref()),
                ("completed", Some(job.id.as_str()))
            );
            assert!(db.abort_multipart(&other.id).await.unwrap());
            assert!(!db.abort_multipart(&other.id).await.unwrap());
            assert!(db.open_multiparts(&t.id, "", None, 10).await.unwrap().is_empty());
            assert_eq!(db.stale_multiparts(i64::MAX, 10).await.unwrap().len(), 0);
        }
    }
}
