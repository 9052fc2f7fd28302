//! The `tokens` table: API tokens, stored as hashes, and who they belong to.

use sqlx::Row;

use super::{bump_revision, Db};
use crate::error::{Error, Result};
use crate::model::{Principal, Scope, TokenInfo};
use crate::{new_id, now_ms};

impl Db {
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
}
