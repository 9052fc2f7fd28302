//! The `s3_keys` table: the S3 face's access keys. Unlike API tokens, a
//! key's secret is needed to check signatures, so its row holds it sealed
//! (by the service, under the master key); this layer never sees it open.

use sqlx::Row;

use super::{bump_revision, Db};
use crate::error::{Error, Result};
use crate::model::{S3Key, S3KeyInfo, Scope};
use crate::now_ms;

impl Db {
    /// Records access key `id` of `tenant_id` with its sealed secret.
    pub async fn create_s3_key(&self, id: &str, tenant_id: &str, sealed_secret: &[u8], scope: Scope) -> Result<()> {
        let r =
            sqlx::query("INSERT INTO s3_keys (id, tenant_id, secret, scope, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(id)
                .bind(tenant_id)
                .bind(sealed_secret)
                .bind(scope.as_str())
                .bind(now_ms())
                .execute(&self.pool)
                .await;
        match r {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(Error::Conflict(format!("S3 key {id:?}"))),
            Err(e) => Err(e.into()),
        }
    }

    /// An access key that is not revoked, with its tenant and sealed secret.
    pub async fn s3_key(&self, id: &str) -> Result<Option<S3Key>> {
        let row = sqlx::query(
            "SELECT k.id, k.secret, k.scope, n.id AS tenant_id, n.name FROM s3_keys k \
             JOIN tenants n ON n.id = k.tenant_id WHERE k.id = $1 AND k.revoked_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let scope: String = row.try_get("scope")?;
        Ok(Some(S3Key {
            id: row.try_get("id")?,
            tenant_id: row.try_get("tenant_id")?,
            tenant_name: row.try_get("name")?,
            scope: Scope::parse(&scope).ok_or_else(|| Error::Corrupt(format!("S3 key scope {scope:?}")))?,
            sealed_secret: row.try_get("secret")?,
        }))
    }

    /// A tenant's access keys (never their secrets).
    pub async fn s3_keys(&self, tenant_id: &str) -> Result<Vec<S3KeyInfo>> {
        let rows = sqlx::query(
            "SELECT k.id, k.scope, k.created_at, k.revoked_at, n.name FROM s3_keys k \
             JOIN tenants n ON n.id = k.tenant_id WHERE k.tenant_id = $1 ORDER BY k.created_at, k.id",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let scope: String = r.try_get("scope")?;
                Ok(S3KeyInfo {
                    id: r.try_get("id")?,
                    tenant: r.try_get("name")?,
                    scope: Scope::parse(&scope).ok_or_else(|| Error::Corrupt(format!("S3 key scope {scope:?}")))?,
                    created_at: r.try_get("created_at")?,
                    revoked_at: r.try_get("revoked_at")?,
                })
            })
            .collect()
    }

    /// Revokes an access key; running servers forget it at their next
    /// revision poll (within a second), as for tokens.
    pub async fn revoke_s3_key(&self, id: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query("UPDATE s3_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Err(Error::NotFound(format!("active S3 key {id:?}")));
        }
        bump_revision(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::db::test_dbs;
    use crate::{Error, Scope};

    #[tokio::test]
    async fn keys_are_found_until_revoked_and_listed_without_secrets() {
        for (db, _guard) in test_dbs().await {
            let t = db.create_tenant("acme", b"sealed", "sluice1x").await.unwrap();
            db.create_s3_key("SLUKEY1", &t.id, b"sealed-secret", Scope::Write)
                .await
                .unwrap();
            assert!(matches!(
                db.create_s3_key("SLUKEY1", &t.id, b"x", Scope::Read).await,
                Err(Error::Conflict(_))
            ));
            let k = db.s3_key("SLUKEY1").await.unwrap().unwrap();
            assert_eq!((k.tenant_name.as_str(), k.scope), ("acme", Scope::Write));
            assert_eq!(k.sealed_secret, b"sealed-secret");
            let before = db.auth_revision().await.unwrap();
            db.revoke_s3_key("SLUKEY1").await.unwrap();
            assert!(
                db.auth_revision().await.unwrap() > before,
                "revoking bumps the revision"
            );
            assert!(db.s3_key("SLUKEY1").await.unwrap().is_none());
            assert!(matches!(db.revoke_s3_key("SLUKEY1").await, Err(Error::NotFound(_))));
            let listed = db.s3_keys(&t.id).await.unwrap();
            assert_eq!(listed.len(), 1);
            assert!(listed[0].revoked_at.is_some());
        }
    }
}
