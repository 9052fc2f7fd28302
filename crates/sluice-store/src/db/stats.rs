//! Aggregates for monitoring: jobs by tenant and state, the oldest queued
//! job, bytes stored per tenant, the connection pool. Read by the server's
//! metrics sampler every few seconds, never on a request path.

use std::time::{Duration, Instant};

use sqlx::Row;

use crate::{now_ms, Db, Result};

/// The database pool's occupancy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections open now.
    pub size: u32,
    /// Of those, idle.
    pub idle: u32,
    /// The configured maximum.
    pub max: u32,
}

impl Db {
    /// Jobs counted by tenant name and state (tenants with none omitted).
    pub async fn jobs_by_tenant_and_state(&self) -> Result<Vec<(String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT t.name AS tenant, j.state AS state, COUNT(*) AS n \
             FROM jobs j JOIN tenants t ON t.id = j.tenant_id GROUP BY t.name, j.state",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("tenant")?, r.try_get("state")?, r.try_get("n")?)))
            .collect()
    }

    /// Age of the oldest job waiting in the queue (zero when none waits).
    pub async fn oldest_queued_age(&self) -> Result<Duration> {
        let row = sqlx::query("SELECT MIN(created_at) AS t FROM jobs WHERE state = 'queued'")
            .fetch_one(&self.pool)
            .await?;
        let oldest: Option<i64> = row.try_get("t")?;
        Ok(oldest.map_or(Duration::ZERO, |t| {
            Duration::from_millis(now_ms().saturating_sub(t).max(0) as u64)
        }))
    }

    /// Container bytes and object count stored per tenant name.
    pub async fn stored_by_tenant(&self) -> Result<Vec<(String, i64, i64)>> {
        let rows = sqlx::query(
            "SELECT t.name AS tenant, CAST(COALESCE(SUM(o.container_len), 0) AS BIGINT) AS bytes, COUNT(o.key) AS n \
             FROM tenants t LEFT JOIN objects o ON o.tenant_id = t.id GROUP BY t.name",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("tenant")?, r.try_get("bytes")?, r.try_get("n")?)))
            .collect()
    }

    /// One tenant's jobs counted by state.
    pub async fn tenant_job_counts(&self, tenant_id: &str) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM jobs WHERE tenant_id = $1 GROUP BY state")
            .bind(tenant_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
            .collect()
    }

    /// One tenant's objects: how many, their container and original bytes.
    pub async fn tenant_objects_summary(&self, tenant_id: &str) -> Result<(i64, i64, i64)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(container_len), 0) AS BIGINT) AS stored, \
             CAST(COALESCE(SUM(plaintext_len), 0) AS BIGINT) AS original FROM objects WHERE tenant_id = $1",
        )
        .bind(tenant_id)
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("n")?, row.try_get("stored")?, row.try_get("original")?))
    }

    /// Tenant ids and names.
    pub async fn tenant_names(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT id, name FROM tenants")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("name")?)))
            .collect()
    }

    /// The connection pool now.
    pub fn pool_stats(&self) -> PoolStats {
        PoolStats {
            size: self.pool.size(),
            idle: self.pool.num_idle() as u32,
            max: self.pool.options().get_max_connections(),
        }
    }

    /// How long taking a connection from the pool takes now: a probe of
    /// the pool's contention (the connection goes straight back).
    pub async fn probe_acquire(&self) -> Result<Duration> {
        let started = Instant::now();
        let conn = self.pool.acquire().await?;
        let waited = started.elapsed();
        drop(conn);
        Ok(waited)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JobKind, NewJob};

    #[tokio::test]
    async fn counts_by_tenant_and_state_and_oldest_age() {
        for (db, _dir) in crate::db::test_dbs().await {
            counts_by_tenant_and_state_and_oldest_age_on(&db).await;
        }
    }

    async fn counts_by_tenant_and_state_and_oldest_age_on(db: &Db) {
        assert_eq!(db.oldest_queued_age().await.unwrap(), Duration::ZERO);
        let t = db.create_tenant("acme", b"sealed", "sluice1x").await.unwrap();
        for key in ["a", "b"] {
            db.enqueue(&NewJob {
                id: crate::new_id().unwrap(),
                tenant_id: t.id.clone(),
                kind: JobKind::Process,
                object_key: key.into(),
                pipeline: "default".into(),
                staging: None,
                staged_bytes: 0,
                expected_digest: None,
                max_attempts: 3,
                meta: None,
            })
            .await
            .unwrap();
        }
        let counts = db.jobs_by_tenant_and_state().await.unwrap();
        assert_eq!(counts, vec![("acme".to_string(), "queued".to_string(), 2)]);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(db.oldest_queued_age().await.unwrap() >= Duration::from_millis(20));
        assert_eq!(db.stored_by_tenant().await.unwrap(), vec![("acme".to_string(), 0, 0)]);
        let pool = db.pool_stats();
        assert!(
            pool.size >= 1 && pool.idle <= pool.size && pool.max >= pool.size,
            "{pool:?}"
        );
        assert!(db.probe_acquire().await.is_ok());
    }
}
