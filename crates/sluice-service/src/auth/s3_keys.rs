//! S3 access keys: what a SigV4 signature is checked with. The S3 face
//! finds the access key id in a request and asks for its secret here; the
//! key's owner and scope become the request's [`Caller`] once the
//! signature holds. Valid keys are cached, unsealed, until tokens or keys
//! change (a revoked key stops working within the revision poll, 1 s).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use sluice_store::Principal;
use zeroize::Zeroizing;

use crate::auth::Caller;
use crate::{Error, Result, Service};

/// Longest access key id accepted (ours are 20 characters).
const MAX_ACCESS_KEY_LEN: usize = 128;

/// An access key's owner and its secret.
pub struct S3Identity {
    /// Who the key belongs to; `token_id` is the access key id.
    pub principal: Principal,
    secret: Zeroizing<String>,
}

impl S3Identity {
    /// The secret access key, to check a signature with (never log it).
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

impl std::fmt::Debug for S3Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Identity")
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// The owner and secret of access key `access_key`; unauthorized if it
    /// is unknown or revoked.
    pub async fn s3_identity(&self, access_key: &str) -> Result<Arc<S3Identity>> {
        if access_key.is_empty() || access_key.len() > MAX_ACCESS_KEY_LEN {
            return Err(Error::Unauthorized("malformed access key id".into()));
        }
        let revision = self.auth.revision.load(Ordering::SeqCst);
        if let Some(found) = self.auth.s3_keys.get(access_key).await {
            return Ok(found);
        }
        let Some(key) = self.db.s3_key(access_key).await? else {
            return Err(Error::Unauthorized("unknown or revoked access key".into()));
        };
        let keys = Arc::clone(&self.keys);
        let sealed = key.sealed_secret;
        let secret = sluice_store::blocking::spawn(move || keys.unseal(&sealed))
            .await
            .map_err(Error::internal)?
            .map_err(Error::internal)?;
        let secret = std::str::from_utf8(&secret)
            .map(|s| Zeroizing::new(s.to_string()))
            .map_err(|_| Error::internal("an S3 secret is not text"))?;
        let identity = Arc::new(S3Identity {
            principal: Principal {
                tenant_id: key.tenant_id,
                tenant_name: key.tenant_name,
                token_id: key.id,
                scope: key.scope,
            },
            secret,
        });
        // As for tokens: not cached if keys changed while it was read.
        if self.auth.revision.load(Ordering::SeqCst) == revision {
            self.auth
                .s3_keys
                .insert(access_key.to_string(), Arc::clone(&identity))
                .await;
            if self.auth.revision.load(Ordering::SeqCst) != revision {
                self.auth.s3_keys.invalidate(access_key).await;
            }
        }
        Ok(identity)
    }

    /// The caller a request signed by `identity` stands for, once it
    /// counted against its tenant's rate limit.
    pub fn s3_caller(&self, identity: &S3Identity) -> Result<Caller> {
        let p = &identity.principal;
        self.limits.check_rate(&p.tenant_id, &p.token_id)?;
        Ok(Caller(p.clone()))
    }
}

#[cfg(test)]
mod tests {
    use sluice_store::Scope;

    use crate::testing::TestService;
    use crate::Error;

    #[tokio::test]
    async fn a_key_finds_its_owner_and_secret_until_revoked() {
        let t = TestService::start(crate::Settings::default()).await;
        let admin = t.admin();
        admin.create_tenant("acme").await.unwrap();
        let key = admin.create_s3_key("acme", Scope::Write).await.unwrap();
        assert_eq!((key.id.len(), key.secret.len()), (20, 40));
        let found = t.service.s3_identity(&key.id).await.unwrap();
        assert_eq!(found.secret(), key.secret.as_str());
        assert_eq!(
            (found.principal.tenant_name.as_str(), found.principal.scope),
            ("acme", Scope::Write)
        );
        let listed = admin.s3_keys("acme").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(
            !format!("{listed:?}{found:?}").contains(key.secret.as_str()),
            "no secret is shown"
        );
        admin.revoke_s3_key(&key.id).await.unwrap();
        // Other nodes (and this one's cache) see it at the next revision poll.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while t.service.s3_identity(&key.id).await.is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "a revoked key still works after 3 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(matches!(
            t.service.s3_identity("SLUNOSUCHKEY").await,
            Err(Error::Unauthorized(_))
        ));
    }
}
