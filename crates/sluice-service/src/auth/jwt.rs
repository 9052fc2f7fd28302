//! OIDC/JWT bearer tokens: RS256/ES256/EdDSA (and their longer siblings)
//! JWTs, checked against the configured issuer's JWKS.
//!
//! Keys are fetched (by a [`JwksFetch`] the face provides: the service
//! itself speaks no HTTP) with a timeout and cached by `kid`; a
//! token with an unknown `kid` makes the cache refresh, at most once per
//! refresh interval (so a flood of made-up `kid`s costs one fetch per
//! interval, not one per request). `exp`, `nbf`, `iss` and `aud` are
//! checked with a small leeway. Only asymmetric algorithms are accepted, a
//! key is only used with the algorithm family it is for (and its `alg`, if
//! the JWK names one), and `alg: none` or HMAC tokens never verify. One
//! claim names the tenant, another the scope.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Serialize;
use sluice_store::Scope;

/// How JWTs are checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JwtConfig {
    /// Where the issuer publishes its keys (JWKS).
    pub jwks_url: String,
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`.
    pub audience: String,
    /// Claim holding the tenant's name.
    pub tenant_claim: String,
    /// Claim holding the scope (`read`, `write`, `admin`, optionally
    /// `sluice:`-prefixed, space-separated or a list; the highest wins).
    pub scope_claim: String,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// Least time between two JWKS fetches.
    pub refresh: Duration,
    /// Longest a JWKS fetch may take.
    pub timeout: Duration,
}

/// Fetches the document at a JWKS URL (the bytes of its JSON), within
/// `timeout`. The face that owns an HTTP client implements it.
pub trait JwksFetch: Send + Sync + 'static {
    /// The document at `url`, or why it could not be fetched.
    fn fetch(&self, url: &str, timeout: Duration) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, String>> + Send>>;
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Tenant name.
    pub tenant: String,
    /// Scope granted.
    pub scope: Scope,
    /// `sub`, for per-caller rate limits.
    pub subject: String,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    /// Not a valid token: the reason, for the 401.
    #[error("{0}")]
    Invalid(String),
    /// The issuer's keys could not be fetched, so nothing can be checked.
    #[error("the token issuer's keys are unavailable")]
    KeysUnavailable,
}

/// Algorithms accepted: asymmetric only.
const ALLOWED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// One key from the JWKS.
struct Key {
    decoding: DecodingKey,
    /// The JWK's own `alg`, if it names one.
    alg: Option<Algorithm>,
    kind: KeyKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    Ec,
    Okp,
}

impl KeyKind {
    fn fits(self, alg: Algorithm) -> bool {
        matches!(
            (self, alg),
            (
                KeyKind::Rsa,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ) | (KeyKind::Ec, Algorithm::ES256 | Algorithm::ES384)
                | (KeyKind::Okp, Algorithm::EdDSA)
        )
    }
}

/// Checks JWTs against a JWKS it keeps fresh.
pub struct JwtVerifier {
    config: JwtConfig,
    fetch: Arc<dyn JwksFetch>,
    keys: RwLock<HashMap<String, std::sync::Arc<Key>>>,
    /// When the keys were last fetched (or tried); one fetch at a time.
    fetched: tokio::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.config.issuer)
            .finish()
    }
}

impl JwtVerifier {
    /// A verifier for `config` whose keys `fetch` brings (on first use).
    pub fn new(config: JwtConfig, fetch: Arc<dyn JwksFetch>) -> JwtVerifier {
        JwtVerifier {
            config,
            fetch,
            keys: RwLock::new(HashMap::new()),
            fetched: tokio::sync::Mutex::new(None),
        }
    }

    /// Fetches the keys now (at start, so the first request does not wait).
    pub async fn prefetch(&self) {
        self.refresh(true).await;
    }

    /// Checks `token`; returns who it is for.
    pub async fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        let bad = |why: &str| JwtError::Invalid(why.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(|_| bad("malformed JWT or unsupported algorithm"))?;
        if !ALLOWED.contains(&header.alg) {
            return Err(bad("JWT algorithm not accepted (asymmetric algorithms only)"));
        }
        let kid = header.kid.as_deref().ok_or_else(|| bad("JWT without a key id (kid)"))?;
        let key = match self.key(kid) {
            Some(k) => k,
            None => {
                self.refresh(false).await;
                match self.key(kid) {
                    Some(k) => k,
                    None if self.no_keys() => return Err(JwtError::KeysUnavailable),
                    None => return Err(bad("JWT signed with an unknown key")),
                }
            }
        };
        if !key.kind.fits(header.alg) || key.alg.is_some_and(|a| a != header.alg) {
            return Err(bad("JWT algorithm does not match its key"));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = self.config.leeway.as_secs();
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            bad(match e.kind() {
                K::ExpiredSignature => "JWT expired",
                K::ImmatureSignature => "JWT not valid yet (nbf)",
                K::InvalidAudience => "JWT for another audience",
                K::InvalidIssuer => "JWT from another issuer",
                K::InvalidSignature => "JWT signature does not verify",
                K::MissingRequiredClaim(_) => "JWT lacks exp, iss or aud",
                _ => "invalid JWT",
            })
        })?;
        let claims = data.claims;
        let tenant = claims
            .get(&self.config.tenant_claim)
            .and_then(|v| v.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| JwtError::Invalid(format!("JWT lacks the {:?} claim", self.config.tenant_claim)))?
            .to_string();
        let scope = scope_of(claims.get(&self.config.scope_claim));
        let subject = claims.get("sub").and_then(|v| v.as_str()).unwrap_or("").to_string();
        Ok(Claims { tenant, scope, subject })
    }

    fn key(&self, kid: &str) -> Option<std::sync::Arc<Key>> {
        self.keys.read().ok().and_then(|k| k.get(kid).cloned())
    }

    fn no_keys(&self) -> bool {
        self.keys.read().map(|k| k.is_empty()).unwrap_or(true)
    }

    /// Fetches the JWKS unless it was fetched within the refresh interval
    /// (or `force`); keeps the old keys if the fetch fails.
    async fn refresh(&self, force: bool) {
        let mut fetched = self.fetched.lock().await;
        if !force && fetched.is_some_and(|t| t.elapsed() < self.config.refresh) {
            return;
        }
        *fetched = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "fetched the JWT issuer's keys");
                if let Ok(mut k) = self.keys.write() {
                    *k = keys;
                }
            }
            Err(e) => tracing::warn!(error = %e, "fetching the JWT issuer's keys failed"),
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, std::sync::Arc<Key>>, String> {
        let body = self.fetch.fetch(&self.config.jwks_url, self.config.timeout).await?;
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| format!("not a JWKS document: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let kind = match jwk.algorithm {
                AlgorithmParameters::RSA(_) => KeyKind::Rsa,
                AlgorithmParameters::EllipticCurve(_) => KeyKind::Ec,
                AlgorithmParameters::OctetKeyPair(_) => KeyKind::Okp,
                // Shared secrets (HMAC) and unknown kinds are never used.
                _ => continue,
            };
            let Ok(decoding) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            let alg = jwk.common.key_algorithm.and_then(algorithm_of);
            keys.insert(kid, std::sync::Arc::new(Key { decoding, alg, kind }));
        }
        Ok(keys)
    }
}

fn algorithm_of(k: KeyAlgorithm) -> Option<Algorithm> {
    Some(match k {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// The highest scope a claim grants (read if it names none).
fn scope_of(claim: Option<&serde_json::Value>) -> Scope {
    let words: Vec<&str> = match claim {
        Some(serde_json::Value::String(s)) => s.split_whitespace().collect(),
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(|v| v.as_str()).collect(),
        _ => Vec::new(),
    };
    words
        .iter()
        .filter_map(|w| Scope::parse(w.strip_prefix("sluice:").unwrap_or(w)))
        .max()
        .unwrap_or(Scope::Read)
}

/// Whether a bearer token looks like a JWT (three dot-separated parts)
/// rather than an API token.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_take_the_highest_named() {
        use serde_json::json;
        assert_eq!(scope_of(Some(&json!("openid sluice:write"))), Scope::Write);
        assert_eq!(scope_of(Some(&json!(["read", "admin"]))), Scope::Admin);
        assert_eq!(scope_of(Some(&json!("profile"))), Scope::Read);
        assert_eq!(scope_of(None), Scope::Read);
        assert!(looks_like_jwt("a.b.c"));
        assert!(!looks_like_jwt("sluice_0123"));
    }
}
