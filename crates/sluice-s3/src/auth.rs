//! Access keys for SigV4: s3s asks for a key's secret to check a request's
//! signature; the service core looks it up (cached, unsealed, until keys
//! change). Once the signature holds, the key's owner is the caller.

use s3s::auth::{Credentials, S3Auth, SecretKey};
use s3s::{s3_error, S3Result};
use sluice_service::{Caller, Service};

use crate::errors::to_s3;

/// Finds access keys' secrets in the service.
pub(crate) struct KeyLookup {
    service: Service,
}

impl KeyLookup {
    pub(crate) fn new(service: Service) -> Self {
        KeyLookup { service }
    }
}

#[async_trait::async_trait]
impl S3Auth for KeyLookup {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.service.s3_identity(access_key).await {
            Ok(identity) => Ok(SecretKey::from(identity.secret())),
            Err(sluice_service::Error::Unauthorized(_)) => Err(s3_error!(
                InvalidAccessKeyId,
                "the access key id does not exist or was revoked"
            )),
            Err(e) => Err(to_s3(e)),
        }
    }
}

/// The caller a signed request stands for (after its rate limit); an
/// anonymous request is refused.
pub(crate) async fn caller(service: &Service, credentials: Option<&Credentials>) -> S3Result<Caller> {
    let Some(credentials) = credentials else {
        return Err(s3_error!(AccessDenied, "anonymous requests are not allowed"));
    };
    let identity = service
        .s3_identity(&credentials.access_key)
        .await
        .map_err(|e| match e {
            sluice_service::Error::Unauthorized(_) => s3_error!(InvalidAccessKeyId),
            e => to_s3(e),
        })?;
    service.s3_caller(&identity).map_err(to_s3)
}
