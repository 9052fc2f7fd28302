//! Who is calling: a [`Caller`] from an API token (`sluice_…`, looked up
//! by its hash; valid ones are cached until tokens change) or a JWT
//! ([`jwt`]), with its tenant's rate limit applied. How a face finds the
//! token in a request (a header, a cookie, a signature) is the face's
//! business; what the token means is decided here.

pub mod jwt;
pub mod s3_keys;

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sluice_store::{token_hash, Principal, Scope};

use crate::{Error, Result, Service};

/// Longest bearer token accepted (JWTs with a few claims fit easily).
pub const MAX_TOKEN_LEN: usize = 8192;
/// Most valid tokens kept in memory.
const PRINCIPAL_CACHE: u64 = 100_000;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
    /// Refuses unless the caller's scope is at least `scope`.
    pub fn require(&self, scope: Scope) -> Result<&Principal> {
        if self.0.scope >= scope {
            Ok(&self.0)
        } else {
            Err(Error::Forbidden(format!(
                "this token's scope is {}; {} is needed",
                self.0.scope.as_str(),
                scope.as_str()
            )))
        }
    }

    /// The caller's tenant id.
    pub fn tenant(&self) -> &str {
        &self.0.tenant_id
    }
}

/// The token caches and the JWT verifier.
#[derive(Debug)]
pub(crate) struct Auth {
    /// Valid tokens by hash (bounded, with a time to live; emptied when
    /// tokens change, see `refresh.rs`).
    pub(crate) principals: moka::future::Cache<String, Principal>,
    /// Valid S3 access keys, unsealed (emptied with `principals`).
    pub(crate) s3_keys: moka::future::Cache<String, std::sync::Arc<s3_keys::S3Identity>>,
    /// The auth revision the caches were last emptied for.
    pub(crate) revision: AtomicI64,
    /// Checks JWT bearer tokens, if they are accepted.
    pub(crate) jwt: Option<jwt::JwtVerifier>,
}

impl Auth {
    pub(crate) fn new(jwt: Option<jwt::JwtVerifier>) -> Auth {
        Auth {
            principals: moka::future::Cache::builder()
                .max_capacity(PRINCIPAL_CACHE)
                .time_to_live(Duration::from_secs(300))
                .build(),
            s3_keys: moka::future::Cache::builder()
                .max_capacity(PRINCIPAL_CACHE)
                .time_to_live(Duration::from_secs(300))
                .build(),
            revision: AtomicI64::new(-1),
            jwt,
        }
    }
}

impl Service {
    /// The caller a bearer token (an API token or a JWT) stands for, once
    /// the request counted against its rate limit.
    pub async fn authenticate(&self, token: &str) -> Result<Caller> {
        let principal = self.principal(token).await?;
        self.limits.check_rate(&principal.tenant_id, &principal.token_id)?;
        Ok(Caller(principal))
    }

    async fn principal(&self, token: &str) -> Result<Principal> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(Error::Unauthorized("malformed token".into()));
        }
        if jwt::looks_like_jwt(token) {
            return self.jwt_principal(token).await;
        }
        let hash = token_hash(token);
        let revision = self.auth.revision.load(Ordering::SeqCst);
        if let Some(p) = self.auth.principals.get(&hash).await {
            return Ok(p);
        }
        match self.db.principal(&hash).await? {
            Some(p) => {
                self.cache_principal(revision, hash, &p).await;
                Ok(p)
            }
            // Unknown tokens are not cached: a new one works at once.
            None => Err(Error::Unauthorized("unknown or revoked token".into())),
        }
    }

    /// Caches a principal read at auth revision `revision`, unless tokens
    /// changed meanwhile: what was read may then be stale (just revoked).
    async fn cache_principal(&self, revision: i64, hash: String, p: &Principal) {
        if self.auth.revision.load(Ordering::SeqCst) != revision {
            return;
        }
        self.auth.principals.insert(hash.clone(), p.clone()).await;
        // The revision may have moved between the check and the insert.
        if self.auth.revision.load(Ordering::SeqCst) != revision {
            self.auth.principals.invalidate(&hash).await;
        }
    }

    /// Who a JWT is for: its tenant claim must name an existing tenant.
    async fn jwt_principal(&self, token: &str) -> Result<Principal> {
        let Some(verifier) = &self.auth.jwt else {
            return Err(Error::Unauthorized("this server does not accept JWTs".into()));
        };
        let claims = verifier.verify(token).await.map_err(|e| match e {
            jwt::JwtError::Invalid(why) => Error::Unauthorized(why),
            jwt::JwtError::KeysUnavailable => Error::AuthUnavailable,
        })?;
        let tenant = match self.db.tenant_by_name(&claims.tenant).await {
            Ok(t) => t,
            Err(sluice_store::Error::NotFound(_)) => {
                return Err(Error::Unauthorized("the JWT's tenant does not exist".into()))
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Principal {
            tenant_id: tenant.id,
            tenant_name: tenant.name,
            token_id: format!("jwt:{}", claims.subject),
            scope: claims.scope,
        })
    }
}
