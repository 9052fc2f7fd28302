//! [`Db`]: tenants, tokens, pipelines and objects in SQL (SQLite by default).
//! The job queue's statements are in [`crate::queue`].

use std::time::Duration;

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::connect::Backend;
use crate::error::{Error, Result};
use crate::model::{LimitsUpdate, ObjectInfo, Pipeline, Principal, Scope, Tenant, TenantLimits, TokenInfo};
use crate::{new_id, now_ms, Objects};

/// Connection pool settings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DbConfig {
    /// Most open connections.
    pub max_connections: u32,
    /// Connections kept open when idle.
    pub min_connections: u32,
    /// Longest wait for a free connection.
    pub acquire_timeout: Duration,
    /// An idle connection is closed after this.
    pub idle_timeout: Duration,
    /// A connection is replaced after this.
    pub max_lifetime: Duration,
}

impl Default for DbConfig {
    fn default() -> Self {
        DbConfig {
            max_connections: 8,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(300),
            max_lifetime: Duration::from_secs(1800),
        }
    }
}

/// The metadata database: SQLite or PostgreSQL, chosen by URL, behind
/// one set of portable statements (the few that differ ask
/// [`Db::backend`]).
#[derive(Clone)]
pub struct Db {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    pub(crate) url: std::sync::Arc<str>,
}

// The URL may hold a password: never printed.
impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens the database at `url` — `sqlite://PATH` (created if missing)
    /// or `postgres://USER@HOST/NAME` (the database is created if missing
    /// and the role may) — and runs the migrations.
    pub async fn open(url: &str, config: &DbConfig) -> Result<Db> {
        crate::connect::open(url, config).await
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a transaction that will write. On SQLite it takes the write
    /// lock at once (`BEGIN IMMEDIATE`): a deferred transaction that reads
    /// first and writes later fails at once with "database is locked" when
    /// another connection committed in between (its busy timeout does not
    /// apply to that upgrade), which an admin command met under load.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Pool size and idle connections, for health and metrics.
    pub fn pool_state(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---- tenants

    /// Creates a tenant with its sealed identity.
    pub async fn create_tenant(&self, name: &str, sealed_identity: &[u8], recipient: &str) -> Result<Tenant> {
        let id = new_id()?;
        let r =
            sqlx::query("INSERT INTO tenants (id, name, identity, recipient, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(&id)
                .bind(name)
                .bind(sealed_identity)
                .bind(recipient)
                .bind(now_ms())
                .execute(&self.pool)
                .await;
        match r {
            Ok(_) => Ok(Tenant {
                id,
                name: name.to_string(),
                sealed_identity: sealed_identity.to_vec(),
                recipient: recipient.to_string(),
            }),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(Error::Conflict(format!("tenant {name:?}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A tenant by name.
    pub async fn tenant_by_name(&self, name: &str) -> Result<Tenant> {
        let row = sqlx::query("SELECT id, name, identity, recipient FROM tenants WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::NotFound(format!("tenant {name:?}")))?;
        tenant_from(&row)
    }

    /// A tenant by id.
    pub async fn tenant(&self, id: &str) -> Result<Tenant> {
        let row = sqlx::query("SELECT id, name, identity, recipient FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| Error::NotFound("tenant".into()))?;
        tenant_from(&row)
    }

    /// Every tenant's name and own limits, sorted by name.
    pub async fn tenants_with_limits(&self) -> Result<Vec<(String, TenantLimits)>> {
        let rows = sqlx::query("SELECT name, rate_per_sec, burst, quota_bytes, max_queued FROM tenants ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("name")?, limits_from(r)?))).collect()
    }

    // ---- tokens

    /// Records a token by its hash; returns the token id.
    pub async fn create_token(&self, tenant_id: &str, token_hash: &str, scope: Scope) -> Result<String> {
        let id = new_id()?;
        sqlx::query("INSERT INTO tokens (id, tenant_id, hash, scope, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&id)
            .bind(tenant_id)
            .bind(token_hash)
            .bind(scope.as_str())
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    /// Who a token hash belongs to, if it is valid and not revoked.
    pub async fn principal(&self, token_hash: &str) -> Result<Option<Principal>> {
        let row = sqlx::query(
            "SELECT t.id AS token_id, t.scope, n.id AS tenant_id, n.name FROM tokens t \
             JOIN tenants n ON n.id = t.tenant_id WHERE t.hash = $1 AND t.revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let scope: String = row.try_get("scope")?;
        Ok(Some(Principal {
            tenant_id: row.try_get("tenant_id")?,
            tenant_name: row.try_get("name")?,
            token_id: row.try_get("token_id")?,
            scope: Scope::parse(&scope).ok_or_else(|| Error::Corrupt(format!("token scope {scope:?}")))?,
        }))
    }

    /// A tenant's tokens (ids and scopes, never the tokens).
    pub async fn tokens(&self, tenant_id: &str) -> Result<Vec<TokenInfo>> {
        let rows = sqlx::query(
            "SELECT t.id, t.scope, t.created_at, t.revoked_at, n.name FROM tokens t \
             JOIN tenants n ON n.id = t.tenant_id WHERE t.tenant_id = $1 ORDER BY t.id",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let scope: String = r.try_get("scope")?;
                Ok(TokenInfo {
                    id: r.try_get("id")?,
                    tenant: r.try_get("name")?,
                    scope: Scope::parse(&scope).ok_or_else(|| Error::Corrupt(format!("token scope {scope:?}")))?,
                    created_at: r.try_get("created_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    /// Revokes a token by id; running servers drop it from their caches
    /// at their next revision poll.
    pub async fn revoke_token(&self, token_id: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(token_id)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Err(Error::NotFound(format!("active token {token_id:?}")));
        }
        bump_revision(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- limits and revisions

    /// Changes some of tenant `name`'s limits; running servers apply them
    /// at their next revision poll.
    pub async fn set_tenant_limits(&self, name: &str, update: &LimitsUpdate) -> Result<TenantLimits> {
        let mut tx = self.begin_write().await?;
        // Read, then write: PostgreSQL must lock the row, or two admins
        // changing different limits at once lose one change (SQLite's
        // write transaction already holds the lock).
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT rate_per_sec, burst, quota_bytes, max_queued FROM tenants WHERE name = $1{lock}"
        )))
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::NotFound(format!("tenant {name:?}")))?;
        let old = limits_from(&row)?;
        let new = TenantLimits {
            rate_per_sec: update.rate_per_sec.unwrap_or(old.rate_per_sec),
            burst: update.burst.unwrap_or(old.burst),
            quota_bytes: update.quota_bytes.unwrap_or(old.quota_bytes),
            max_queued: update.max_queued.unwrap_or(old.max_queued),
        };
        sqlx::query(
            "UPDATE tenants SET rate_per_sec = $1, burst = $2, quota_bytes = $3, max_queued = $4 WHERE name = $5",
        )
        .bind(new.rate_per_sec)
        .bind(new.burst)
        .bind(new.quota_bytes)
        .bind(new.max_queued)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        bump_revision(&mut tx).await?;
        tx.commit().await?;
        Ok(new)
    }

    /// Every tenant's own limits, by tenant id.
    pub async fn all_tenant_limits(&self) -> Result<Vec<(String, TenantLimits)>> {
        let rows = sqlx::query("SELECT id, rate_per_sec, burst, quota_bytes, max_queued FROM tenants")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("id")?, limits_from(r)?))).collect()
    }

    /// The revision of tokens and limits: changes whenever either does.
    pub async fn auth_revision(&self) -> Result<i64> {
        let row = sqlx::query("SELECT value FROM revisions WHERE name = 'auth'")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("value")?)
    }

    /// Bytes a tenant stores: its containers, plus the staged uploads of
    /// its jobs not yet done (they will become containers), plus the sizes
    /// announced by its open resumable uploads.
    pub async fn stored_bytes(&self, tenant_id: &str) -> Result<i64> {
        let row = sqlx::query(
            // PostgreSQL sums BIGINTs as NUMERIC: cast back to one type both share.
            "SELECT CAST((SELECT COALESCE(SUM(container_len), 0) FROM objects WHERE tenant_id = $1) + \
             (SELECT COALESCE(SUM(staged_bytes), 0) FROM jobs WHERE tenant_id = $1 \
              AND state IN ('queued', 'running')) + \
             (SELECT COALESCE(SUM(size), 0) FROM uploads WHERE tenant_id = $1 AND state = 'open') AS BIGINT) AS n",
        )
        .bind(tenant_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }

    /// A tenant's jobs waiting in the queue.
    pub async fn queued_jobs(&self, tenant_id: &str) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM jobs WHERE tenant_id = $1 AND state = 'queued'")
            .bind(tenant_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    // ---- pipelines

    /// A tenant's pipeline; `default` exists even if never stored.
    pub async fn pipeline(&self, tenant_id: &str, name: &str) -> Result<Pipeline> {
        let row = sqlx::query(
            "SELECT name, compress, encrypt, chunk_size, recipients FROM pipelines WHERE tenant_id = $1 AND name = $2",
        )
        .bind(tenant_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => pipeline_from(&row),
            None if name == "default" => Ok(Pipeline::default_named("default")),
            None => Err(Error::NotFound(format!("pipeline {name:?}"))),
        }
    }

    /// A tenant's pipelines, `default` included.
    pub async fn pipelines(&self, tenant_id: &str) -> Result<Vec<Pipeline>> {
        let rows = sqlx::query(
            "SELECT name, compress, encrypt, chunk_size, recipients FROM pipelines WHERE tenant_id = $1 ORDER BY name",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        let mut list: Vec<Pipeline> = rows.iter().map(pipeline_from).collect::<Result<_>>()?;
        if !list.iter().any(|p| p.name == "default") {
            list.insert(0, Pipeline::default_named("default"));
        }
        Ok(list)
    }

    /// Creates or replaces a pipeline.
    pub async fn put_pipeline(&self, tenant_id: &str, p: &Pipeline) -> Result<()> {
        let recipients = serde_json_list(&p.recipients);
        sqlx::query(
            "INSERT INTO pipelines (tenant_id, name, compress, encrypt, chunk_size, recipients, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (tenant_id, name) DO UPDATE SET \
             compress = excluded.compress, encrypt = excluded.encrypt, chunk_size = excluded.chunk_size, \
             recipients = excluded.recipients, updated_at = excluded.updated_at",
        )
        .bind(tenant_id)
        .bind(&p.name)
        .bind(&p.compress)
        .bind(&p.encrypt)
        .bind(&p.chunk_size)
        .bind(recipients)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes a pipeline (deleting `default` restores its defaults).
    pub async fn delete_pipeline(&self, tenant_id: &str, name: &str) -> Result<()> {
        let r = sqlx::query("DELETE FROM pipelines WHERE tenant_id = $1 AND name = $2")
            .bind(tenant_id)
            .bind(name)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 && name != "default" {
            return Err(Error::NotFound(format!("pipeline {name:?}")));
        }
        Ok(())
    }

    // ---- objects

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

async fn bump_revision(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<()> {
    sqlx::query("UPDATE revisions SET value = value + 1 WHERE name = 'auth'")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn limits_from(row: &AnyRow) -> Result<TenantLimits> {
    Ok(TenantLimits {
        rate_per_sec: row.try_get("rate_per_sec")?,
        burst: row.try_get("burst")?,
        quota_bytes: row.try_get("quota_bytes")?,
        max_queued: row.try_get("max_queued")?,
    })
}

fn tenant_from(row: &AnyRow) -> Result<Tenant> {
    Ok(Tenant {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        sealed_identity: row.try_get("identity")?,
        recipient: row.try_get("recipient")?,
    })
}

fn pipeline_from(row: &AnyRow) -> Result<Pipeline> {
    let recipients: String = row.try_get("recipients")?;
    Ok(Pipeline {
        name: row.try_get("name")?,
        compress: row.try_get("compress")?,
        encrypt: row.try_get("encrypt")?,
        chunk_size: row.try_get("chunk_size")?,
        recipients: parse_json_list(&recipients)?,
    })
}

fn serde_json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

fn parse_json_list(s: &str) -> Result<Vec<String>> {
    serde_json::from_str(s).map_err(|_| Error::Corrupt(format!("recipient list {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_changes_to_different_limits_are_all_kept() {
        for (db, _dir) in crate::connect::test_dbs().await {
            db.create_tenant("t", b"sealed", "sluice1x").await.unwrap();
            let change = |burst: Option<i64>, quota: Option<i64>| LimitsUpdate {
                burst: burst.map(Some),
                quota_bytes: quota.map(Some),
                ..LimitsUpdate::default()
            };
            let bursts = {
                let db = db.clone();
                tokio::spawn(async move {
                    for i in 1..=40 {
                        db.set_tenant_limits("t", &change(Some(i), None)).await.unwrap();
                    }
                })
            };
            for i in 1..=40 {
                db.set_tenant_limits("t", &change(None, Some(i * 1000))).await.unwrap();
            }
            bursts.await.unwrap();
            let limits = db.set_tenant_limits("t", &LimitsUpdate::default()).await.unwrap();
            assert_eq!((limits.burst, limits.quota_bytes), (Some(40), Some(40_000)));
        }
    }

    #[test]
    fn recipient_lists_round_trip() {
        for list in [vec![], vec!["sluice1abc".to_string()], vec!["a".into(), "b".into()]] {
            assert_eq!(parse_json_list(&serde_json_list(&list)).unwrap(), list);
        }
        assert!(parse_json_list("nope").is_err());
    }
}
