//! What administrators do: tenants, their limits, their tokens and S3 keys. The
//! same operations serve `sluice admin` (straight on the database, no
//! server needed: [`Admin::open`]) and the admin API of a running service
//! ([`Service::admin`]); running nodes see a change within a second.
//! Administration never reads another tenant's data.

use std::path::PathBuf;
use std::sync::Arc;

use sluice_engine::{Engine, EngineConfig};
use sluice_store::{new_s3_key, new_token, Db, LimitsUpdate, S3KeyInfo, Scope, TenantLimits, TokenInfo};
use zeroize::Zeroizing;

use crate::auth::Caller;
use crate::keys::Keys;
use crate::settings::Config;
use crate::{Error, Result, Service};

/// Administration of one database.
pub struct Admin {
    db: Db,
    keys: KeySource,
}

/// Where new tenants' identities are sealed.
enum KeySource {
    /// A running service's master key.
    Loaded(Arc<Keys>),
    /// The master key file, loaded (or created) when a tenant is created.
    File(PathBuf),
}

/// A tenant just created.
#[derive(Debug, Clone)]
pub struct NewTenant {
    /// Its name.
    pub name: String,
    /// Its server-managed recipient (`sluice1…`).
    pub recipient: String,
    /// The master key file, if it had to be created for this.
    pub created_master_key: Option<PathBuf>,
}

/// A token just created: shown once, stored only as a hash.
pub struct NewToken {
    /// The token's id (to list and revoke it).
    pub id: String,
    /// The token itself.
    pub token: Zeroizing<String>,
    /// Its tenant's name.
    pub tenant: String,
    /// Its scope.
    pub scope: Scope,
}

/// An S3 access key just created: its secret shown once.
pub struct NewS3Key {
    /// The access key id.
    pub id: String,
    /// The secret access key.
    pub secret: Zeroizing<String>,
    /// Its tenant's name.
    pub tenant: String,
    /// Its scope.
    pub scope: Scope,
}

/// Whether `name` may name a tenant: 1 to 64 of letters, digits, `-`,
/// `_` and `.`.
pub fn valid_tenant_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

impl Admin {
    /// Opens the database `config` names (created and migrated if
    /// missing), without starting a service.
    pub async fn open(config: &Config) -> Result<Admin> {
        if config.database.starts_with("sqlite:") {
            std::fs::create_dir_all(&config.data_dir).map_err(|e| {
                Error::Setup(format!(
                    "{}: cannot create the data directory: {e}",
                    config.data_dir.display()
                ))
            })?;
        }
        let db = Db::open(&config.database, &config.db)
            .await
            .map_err(|e| Error::Setup(format!("opening the database: {e}")))?;
        Ok(Admin {
            db,
            keys: KeySource::File(config.master_key.clone()),
        })
    }

    /// Creates a tenant with a new server-managed identity.
    pub async fn create_tenant(&self, name: &str) -> Result<NewTenant> {
        if !valid_tenant_name(name) {
            return Err(Error::BadRequest(
                "tenant names are 1 to 64 of letters, digits, '-', '_' and '.'".into(),
            ));
        }
        let (keys, created_master_key) = self.master_keys().await?;
        let (identity, sealed) = sluice_store::blocking::spawn(move || keys.new_identity())
            .await
            .map_err(Error::internal)?
            .map_err(Error::internal)?;
        let recipient = identity.recipient().to_string();
        self.db.create_tenant(name, &sealed, &recipient).await?;
        tracing::info!(tenant = %name, "tenant created");
        Ok(NewTenant {
            name: name.to_string(),
            recipient,
            created_master_key,
        })
    }

    /// The master key: the running service's, or the file's (loaded, or
    /// created, and then its path returned too).
    async fn master_keys(&self) -> Result<(Arc<Keys>, Option<PathBuf>)> {
        match &self.keys {
            KeySource::Loaded(keys) => Ok((Arc::clone(keys), None)),
            KeySource::File(path) => {
                let engine = Engine::new(EngineConfig {
                    threads: Some(1),
                    ..EngineConfig::default()
                })
                .map_err(Error::internal)?;
                let file = path.clone();
                let (keys, created) = sluice_store::blocking::spawn(move || Keys::load_or_create(&file, engine))
                    .await
                    .map_err(Error::internal)?
                    .map_err(|e| Error::Setup(e.to_string()))?;
                Ok((Arc::new(keys), created.then(|| path.clone())))
            }
        }
    }

    /// Every tenant's name and own limits, sorted by name.
    pub async fn tenants(&self) -> Result<Vec<(String, TenantLimits)>> {
        Ok(self.db.tenants_with_limits().await?)
    }

    /// Changes some of a tenant's limits; returns them all as they now are.
    pub async fn set_limits(&self, name: &str, update: &LimitsUpdate) -> Result<TenantLimits> {
        let now = self.db.set_tenant_limits(name, update).await?;
        tracing::info!(tenant = %name, "tenant limits changed");
        Ok(now)
    }

    /// Creates a token for `tenant`.
    pub async fn create_token(&self, tenant: &str, scope: Scope) -> Result<NewToken> {
        let t = self.db.tenant_by_name(tenant).await?;
        let (token, hash) = new_token()?;
        let id = self.db.create_token(&t.id, &hash, scope).await?;
        tracing::info!(tenant = %tenant, token_id = %id, scope = scope.as_str(), "token created");
        Ok(NewToken {
            id,
            token: Zeroizing::new(token),
            tenant: t.name,
            scope,
        })
    }

    /// A tenant's tokens (ids, never the tokens).
    pub async fn tokens(&self, tenant: &str) -> Result<Vec<TokenInfo>> {
        let t = self.db.tenant_by_name(tenant).await?;
        Ok(self.db.tokens(&t.id).await?)
    }

    /// Revokes a token by id.
    pub async fn revoke_token(&self, id: &str) -> Result<()> {
        self.db.revoke_token(id).await?;
        tracing::info!(token_id = %id, "token revoked");
        Ok(())
    }
}

impl Admin {
    /// Creates an S3 access key for `tenant`; its secret is stored sealed
    /// under the master key and shown only here.
    pub async fn create_s3_key(&self, tenant: &str, scope: Scope) -> Result<NewS3Key> {
        let t = self.db.tenant_by_name(tenant).await?;
        let (keys, _) = self.master_keys().await?;
        let (id, secret) = new_s3_key()?;
        let plain = Zeroizing::new(secret.as_bytes().to_vec());
        let sealed = sluice_store::blocking::spawn(move || keys.seal(&plain))
            .await
            .map_err(Error::internal)?
            .map_err(Error::internal)?;
        self.db.create_s3_key(&id, &t.id, &sealed, scope).await?;
        tracing::info!(tenant = %tenant, access_key = %id, scope = scope.as_str(), "S3 key created");
        Ok(NewS3Key {
            id,
            secret,
            tenant: t.name,
            scope,
        })
    }

    /// A tenant's S3 access keys (ids, never secrets).
    pub async fn s3_keys(&self, tenant: &str) -> Result<Vec<S3KeyInfo>> {
        let t = self.db.tenant_by_name(tenant).await?;
        Ok(self.db.s3_keys(&t.id).await?)
    }

    /// Revokes an S3 access key by id.
    pub async fn revoke_s3_key(&self, id: &str) -> Result<()> {
        self.db.revoke_s3_key(id).await?;
        tracing::info!(access_key = %id, "S3 key revoked");
        Ok(())
    }
}

impl Service {
    /// Administration, for a caller of `admin` scope.
    pub fn admin(&self, caller: &Caller) -> Result<Admin> {
        caller.require(Scope::Admin)?;
        Ok(Admin {
            db: self.db.clone(),
            keys: KeySource::Loaded(Arc::clone(&self.keys)),
        })
    }
}

#[cfg(any(test, feature = "testing"))]
impl Admin {
    /// Administration of a running service without a caller (tests).
    pub(crate) fn for_tests(service: &Service) -> Admin {
        Admin {
            db: service.db.clone(),
            keys: KeySource::Loaded(Arc::clone(&service.keys)),
        }
    }
}
