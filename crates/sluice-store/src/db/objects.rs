//! The `objects` table: stored objects (key, container location, sizes,
//! digest), and whether a container may still be in use; with it, the
//! order of writes to one key (`key_versions`: an upload's job never
//! replaces an object, or undoes a delete, accepted after it) and the
//! containers retired by overwrites and deletes (`retired`: kept for a
//! grace period, so a reader that looked an object up can still read it).

use std::collections::HashSet;
use std::time::Duration;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::params::Params;
use super::{Backend, Db};
use crate::error::{Error, Result};
use crate::model::ObjectInfo;
use crate::Objects;

/// A transaction that writes.
type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// The next acceptance number of `key`: an upload accepted or a delete
/// (every one is higher than all before it for the key).
pub(crate) async fn accept(tx: &mut Tx<'_>, tenant_id: &str, key: &str) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO key_versions (tenant_id, key, last) VALUES ($1, $2, 1) \
         ON CONFLICT (tenant_id, key) DO UPDATE SET last = key_versions.last + 1 RETURNING last",
    )
    .bind(tenant_id)
    .bind(key)
    .fetch_one(&mut **tx)
    .await?;
    Ok(row.try_get("last")?)
}

/// Keeps `location` for the grace period before the reaper deletes it (a
/// container kept in its row needs nothing: readers got it with the row).
/// The time is the database's, as the reaper's is: see [`Db::retired_before`].
pub(crate) async fn retire(tx: &mut Tx<'_>, backend: Backend, location: &str) -> Result<()> {
    if Objects::is_inline(location) {
        return Ok(());
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO retired (location, retired_at) VALUES ($1, {}) ON CONFLICT (location) DO NOTHING",
        backend.now_ms_sql()
    )))
    .bind(location)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What committing an upload's object did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// The object is now the one under its key.
    Stored,
    /// A write to the key accepted after this upload (an upload or a
    /// delete) already took effect: this one is superseded, its container
    /// unused.
    Superseded,
}

/// Makes `o`, the object of an upload accepted as number `seq`, the object
/// under its key — unless a later acceptance already took effect. Locks
/// the key's version row first, so commits to one key are serialized on
/// every backend; the replaced container is retired. `container` is the
/// container itself for an object kept in its row.
pub(crate) async fn place_object(
    tx: &mut Tx<'_>,
    backend: Backend,
    tenant: &str,
    o: &ObjectInfo,
    seq: i64,
    container: Option<&[u8]>,
) -> Result<Placed> {
    sqlx::query(
        "INSERT INTO key_versions (tenant_id, key, last) VALUES ($1, $2, 0) ON CONFLICT (tenant_id, key) DO NOTHING",
    )
    .bind(tenant)
    .bind(&o.key)
    .execute(&mut **tx)
    .await?;
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    let version = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT deleted FROM key_versions WHERE tenant_id = $1 AND key = $2{lock}"
    )))
    .bind(tenant)
    .bind(&o.key)
    .fetch_one(&mut **tx)
    .await?;
    let deleted: i64 = version.try_get("deleted")?;
    let old = sqlx::query("SELECT location, accept_seq FROM objects WHERE tenant_id = $1 AND key = $2")
        .bind(tenant)
        .bind(&o.key)
        .fetch_optional(&mut **tx)
        .await?;
    let (old_location, old_seq) = match old {
        Some(row) => (
            Some(row.try_get::<String, _>("location")?),
            row.try_get::<i64, _>("accept_seq")?,
        ),
        None => (None, 0),
    };
    // Rows written before acceptance numbers existed hold 0: an upload
    // accepted then still replaces an object stored then.
    if seq < old_seq || seq < deleted {
        return Ok(Placed::Superseded);
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO objects (tenant_id, {OBJECT_COLUMNS}, accept_seq, inline_container) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (tenant_id, key) DO UPDATE SET location = excluded.location, \
         pipeline = excluded.pipeline, encrypted = excluded.encrypted, container_len = excluded.container_len, \
         plaintext_len = excluded.plaintext_len, chunk_count = excluded.chunk_count, digest = excluded.digest, \
         job_id = excluded.job_id, created_at = excluded.created_at, meta = excluded.meta, etag = excluded.etag, \
         accept_seq = excluded.accept_seq, inline_container = excluded.inline_container"
    )))
    .bind(tenant)
    .bind(&o.key)
    .bind(&o.location)
    .bind(&o.pipeline)
    .bind(i64::from(o.encrypted))
    .bind(o.container_len)
    .bind(o.plaintext_len)
    .bind(o.chunk_count)
    .bind(&o.digest)
    .bind(&o.job_id)
    .bind(o.created_at)
    .bind(&o.meta)
    .bind(&o.etag)
    .bind(seq)
    .bind(container)
    .execute(&mut **tx)
    .await?;
    if let Some(old) = old_location.filter(|l| *l != o.location) {
        retire(tx, backend, &old).await?;
    }
    Ok(Placed::Stored)
}

impl Db {
    /// Replaces a stored object's metadata (its tags, say), if the object
    /// is still the one stored by `job_id`; false if it changed or is gone.
    pub async fn set_object_meta(&self, tenant_id: &str, key: &str, job_id: &str, meta: Option<&str>) -> Result<bool> {
        let r = sqlx::query("UPDATE objects SET meta = $1 WHERE tenant_id = $2 AND key = $3 AND job_id = $4")
            .bind(meta)
            .bind(tenant_id)
            .bind(key)
            .bind(job_id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

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

    /// A stored object with its container, when the container is kept in
    /// its row (read together: an overwrite committing meanwhile cannot
    /// take it away from this reader).
    pub async fn object_with_container(&self, tenant_id: &str, key: &str) -> Result<(ObjectInfo, Option<Vec<u8>>)> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OBJECT_COLUMNS}, inline_container FROM objects WHERE tenant_id = $1 AND key = $2"
        )))
        .bind(tenant_id)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| Error::NotFound(format!("object {key:?}")))?;
        Ok((object_from(&row)?, row.try_get("inline_container")?))
    }

    /// Objects whose key starts with `prefix`, after `cursor`, in key order.
    pub async fn objects(
        &self,
        tenant_id: &str,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ObjectInfo>> {
        let c = self.bytewise();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {OBJECT_COLUMNS} FROM objects WHERE tenant_id = $1 AND substr(key, 1, length($2)) = $2 \
             AND key{c} > $3{c} ORDER BY key{c} LIMIT $4"
        )))
        .bind(tenant_id)
        .bind(prefix)
        .bind(cursor.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(object_from).collect()
    }

    /// Deletes the object under `key`, and orders the delete after every
    /// upload of the key accepted before it: their jobs, if they finish
    /// later, do not bring it back. The container is retired (the reaper
    /// deletes it after the grace period). Not found if there was no object
    /// (the delete still takes its place in the order).
    pub async fn delete_object(&self, tenant_id: &str, key: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let seq = accept(&mut tx, tenant_id, key).await?;
        sqlx::query("UPDATE key_versions SET deleted = $1 WHERE tenant_id = $2 AND key = $3")
            .bind(seq)
            .bind(tenant_id)
            .bind(key)
            .execute(&mut *tx)
            .await?;
        let row = sqlx::query("DELETE FROM objects WHERE tenant_id = $1 AND key = $2 RETURNING location")
            .bind(tenant_id)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = &row {
            retire(&mut tx, self.backend, &row.try_get::<String, _>("location")?).await?;
        }
        tx.commit().await?;
        match row {
            Some(_) => Ok(()),
            None => Err(Error::NotFound(format!("object {key:?}"))),
        }
    }

    /// Containers retired at least `grace` ago, oldest first: the reaper's
    /// to delete. Both times are the database's clock, so that nodes whose
    /// clocks disagree agree on a container's age: a node running behind
    /// cannot cut a reader's grace short, nor one running ahead hold space.
    pub async fn retired_before(&self, grace: Duration, limit: u32) -> Result<Vec<String>> {
        let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT location FROM retired WHERE retired_at <= {} - $1 ORDER BY retired_at LIMIT $2",
            self.backend.now_ms_sql()
        )))
        .bind(grace_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("location")?)).collect()
    }

    /// Forgets a retired container (it was deleted).
    pub async fn forget_retired(&self, location: &str) -> Result<()> {
        sqlx::query("DELETE FROM retired WHERE location = $1")
            .bind(location)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether `location` is, or may still become, a stored object: an
    /// object row points at it, it is retired (kept for readers until the
    /// reaper's retired pass), or it is the container of a job attempt
    /// still running (written, its success not yet committed). Age alone
    /// cannot tell: a commit may wait out a database restart. One
    /// statement, so a commit landing between two checks cannot slip
    /// through; once the attempt is no longer running, its fenced success
    /// can never commit.
    pub async fn location_in_use(&self, location: &str) -> Result<bool> {
        Ok(!self.locations_in_use(&[location.to_string()]).await?.is_empty())
    }

    /// Which of `locations` are in use, as [`Db::location_in_use`] tells of
    /// one: a statement for each [`IN_USE_BATCH`] of them, each check an
    /// index lookup, so a sweep of a store of millions of containers costs
    /// thousands of statements, not millions of table scans.
    pub async fn locations_in_use(&self, locations: &[String]) -> Result<HashSet<String>> {
        let mut used = HashSet::new();
        for batch in locations.chunks(IN_USE_BATCH) {
            let mut p = Params::new(self.backend);
            let rows: Vec<String> = batch.iter().map(|_| p.row(3, &[])).collect();
            let sql = format!(
                "WITH candidates (location, job_id, attempt) AS (VALUES {}) \
                 SELECT c.location FROM candidates c \
                 WHERE EXISTS (SELECT 1 FROM objects o WHERE o.location = c.location) \
                 OR EXISTS (SELECT 1 FROM retired r WHERE r.location = c.location) \
                 OR EXISTS (SELECT 1 FROM jobs j WHERE j.id = c.job_id AND j.attempts = c.attempt \
                            AND j.state = 'running')",
                rows.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for location in batch {
                let (job_id, attempt) = Objects::container_owner(location).unwrap_or(("", -1));
                q = q.bind(location.as_str()).bind(job_id).bind(attempt);
            }
            for row in q.fetch_all(&self.pool).await? {
                used.insert(row.try_get("location")?);
            }
        }
        Ok(used)
    }
}

/// Locations [`Db::locations_in_use`] checks in one statement (three values
/// each, far below either database's limit on bound values).
pub const IN_USE_BATCH: usize = 500;

pub(crate) const OBJECT_COLUMNS: &str =
    "key, location, pipeline, encrypted, container_len, plaintext_len, chunk_count, digest, job_id, created_at, meta, etag";

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
        meta: row.try_get("meta")?,
        etag: row.try_get("etag")?,
    })
}
