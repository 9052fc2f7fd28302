//! The `objects` table: stored objects (key, container location, sizes,
//! digest), and whether a container may still be in use.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::Db;
use crate::error::{Error, Result};
use crate::model::ObjectInfo;
use crate::Objects;

impl Db {
    /// A stored object.
    pub async fn object(&self, tenant_id: &str, key: &str) -> Result<ObjectInfo> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OBJECT_COLUMNS} FROM objects WHERE tenant_id = $1 AND key = $2"
        )))
        .bind(tenant_id)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::NotFound(format!("object {key:?}")))?;
        object_from(&row)
    }

    /// Objects whose key starts with `prefix`, after `cursor`, in key order.
    pub async fn objects(
        &self,
        tenant_id: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ObjectInfo>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OBJECT_COLUMNS} FROM objects WHERE tenant_id = $1 AND substr(key, 1, length($2)) = $2 \
             AND key > $3 ORDER BY key LIMIT $4"
        )))
        .bind(tenant_id)
        .bind(prefix)
        .bind(cursor.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(object_from).collect()
    }

    /// Deletes an object's row; returns its location, to delete from the store.
    pub async fn delete_object(&self, tenant_id: &str, key: &str) -> Result<String> {
        let row = sqlx::query("DELETE FROM objects WHERE tenant_id = $1 AND key = $2 RETURNING location")
            .bind(tenant_id)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::NotFound(format!("object {key:?}")))?;
        Ok(row.try_get("location")?)
    }

    /// Whether `location` is, or may still become, a stored object: an
    /// object row points at it, or it is the container of a job attempt
    /// still running (written, its success not yet committed). Age alone
    /// cannot tell: a commit may wait out a database restart. One
    /// statement, so a commit landing between two checks cannot slip
    /// through; once the attempt is no longer running, its fenced success
    /// can never commit.
    pub async fn location_in_use(&self, location: &str) -> Result<bool> {
        let (job_id, attempt) = Objects::container_owner(location).unwrap_or(("", -1));
        let row = sqlx::query(
            "SELECT 1 WHERE EXISTS (SELECT 1 FROM objects WHERE location = $1) \
             OR EXISTS (SELECT 1 FROM jobs WHERE id = $2 AND attempts = $3 AND state = 'running')",
        )
        .bind(location)
        .bind(job_id)
        .bind(attempt)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }
}

pub(crate) const OBJECT_COLUMNS: &str =
    "key, location, pipeline, encrypted, container_len, plaintext_len, chunk_count, digest, job_id, created_at";

pub(crate) fn object_from(row: &AnyRow) -> Result<ObjectInfo> {
    Ok(ObjectInfo {
        key: row.try_get("key")?,
        location: row.try_get("location")?,
        pipeline: row.try_get("pipeline")?,
        encrypted: row.try_get::<i64, _>("encrypted")? != 0,
        container_len: row.try_get("container_len")?,
        plaintext_len: row.try_get("plaintext_len")?,
        chunk_count: row.try_get("chunk_count")?,
        digest: row.try_get("digest")?,
        job_id: row.try_get("job_id")?,
        created_at: row.try_get("created_at")?,
    })
}
