//! What `sluice admin` does: tenants and tokens, straight in the database
//! (no server needed; a running server sees changes at once).

use std::path::Path;

use sluice_engine::{Engine, EngineConfig};
use sluice_store::{new_token, Db, DbConfig, LimitsUpdate, Scope, TenantLimits, TokenInfo};

use crate::keys::Keys;

/// An open data directory.
pub struct Admin {
    db: Db,
    data_dir: std::path::PathBuf,
    master_key: std::path::PathBuf,
}

impl Admin {
    /// Opens the database `database` (default: the one in `data_dir`,
    /// created if missing); `master_key` defaults to `DIR/master.key`.
    pub async fn open(data_dir: &Path, database: Option<&str>, master_key: Option<&Path>) -> anyhow::Result<Admin> {
        let url = match database {
            Some(url) => url.to_string(),
            None => {
                std::fs::create_dir_all(data_dir)?;
                format!("sqlite://{}", data_dir.join("sluice.db").display())
            }
        };
        let db = Db::open(&url, &DbConfig::default()).await?;
        Ok(Admin {
            db,
            data_dir: data_dir.to_path_buf(),
            master_key: master_key
                .map(Path::to_path_buf)
                .unwrap_or_else(|| data_dir.join("master.key")),
        })
    }

    /// Creates a tenant with a new server-managed identity; returns its recipient.
    pub async fn create_tenant(&self, name: &str) -> anyhow::Result<String> {
        if !crate::routes::admin::valid_tenant_name(name) {
            anyhow::bail!("tenant names are 1 to 64 of letters, digits, '-', '_' and '.'");
        }
        let engine = Engine::new(EngineConfig {
            threads: Some(1),
            ..EngineConfig::default()
        })?;
        let path = self.master_key.clone();
        let (identity, sealed) = tokio::task::spawn_blocking(move || {
            let (keys, created) = Keys::load_or_create(&path, engine)?;
            if created {
                eprintln!(
                    "generated a new server master key at {} (mode 0600): back it up",
                    path.display()
                );
            }
            keys.new_identity()
        })
        .await??;
        let recipient = identity.recipient().to_string();
        self.db.create_tenant(name, &sealed, &recipient).await?;
        Ok(recipient)
    }

    /// Every tenant's name and own limits, sorted by name.
    pub async fn tenants(&self) -> anyhow::Result<Vec<(String, TenantLimits)>> {
        Ok(self.db.tenants_with_limits().await?)
    }

    /// Changes some of a tenant's limits; returns them all as they now are.
    pub async fn set_limits(&self, name: &str, update: &LimitsUpdate) -> anyhow::Result<TenantLimits> {
        Ok(self.db.set_tenant_limits(name, update).await?)
    }

    /// Creates a token for `tenant`; returns `(token, token id)`. The token
    /// is shown once and stored only as a hash.
    pub async fn create_token(&self, tenant: &str, scope: Scope) -> anyhow::Result<(String, String)> {
        let t = self.db.tenant_by_name(tenant).await?;
        let (token, hash) = new_token()?;
        let id = self.db.create_token(&t.id, &hash, scope).await?;
        Ok((token, id))
    }

    /// A tenant's tokens (ids, never the tokens).
    pub async fn tokens(&self, tenant: &str) -> anyhow::Result<Vec<TokenInfo>> {
        let t = self.db.tenant_by_name(tenant).await?;
        Ok(self.db.tokens(&t.id).await?)
    }

    /// Revokes a token by id.
    pub async fn revoke_token(&self, id: &str) -> anyhow::Result<()> {
        Ok(self.db.revoke_token(id).await?)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
}
