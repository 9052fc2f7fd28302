//! The `tenants` table: tenants, their own limits, the auth revision that
//! tells running servers to reload, and what a tenant stores.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{bump_revision, Backend, Db};
use crate::error::{Error, Result};
use crate::model::{LimitsUpdate, Tenant, TenantLimits};
use crate::{new_id, now_ms};

impl Db {
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
             (SELECT COALESCE(SUM(size), 0) FROM uploads WHERE tenant_id = $1 AND state = 'open') + \
             (SELECT COALESCE(SUM(p.size), 0) FROM multipart_parts p JOIN multipart_uploads u ON u.id = p.upload_id \
              WHERE u.tenant_id = $1 AND u.state = 'open') AS BIGINT) AS n",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_changes_to_different_limits_are_all_kept() {
        for (db, _dir) in crate::db::test_dbs().await {
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
}
