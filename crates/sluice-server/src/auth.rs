//! Bearer-token authentication: `Authorization: Bearer sluice_…`. Tokens
//! are looked up by their hash (valid ones are cached until tokens change);
//! a missing, malformed, unknown or revoked token is 401, a token without
//! the needed scope 403, and a token over its tenant's rate 429.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use std::sync::atomic::Ordering;

use sluice_store::{token_hash, Principal, Scope};

use crate::jwt;
use crate::problem::Problem;
use crate::state::AppState;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
    /// Refuses (403) unless the token has at least `scope`.
    pub fn require(&self, scope: Scope) -> Result<&Principal, Problem> {
        if self.0.scope >= scope {
            Ok(&self.0)
        } else {
            Err(Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this token's scope is {}; {} is needed",
                    self.0.scope.as_str(),
                    scope.as_str()
                ),
            ))
        }
    }

    /// The caller's tenant id.
    pub fn tenant(&self) -> &str {
        &self.0.tenant_id
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let unauthorized = |detail: &str| Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail);
        let token = match parts.headers.get(header::AUTHORIZATION) {
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_LEN)
                .ok_or_else(|| unauthorized("malformed Authorization header (expected Bearer TOKEN)"))?
                .to_string(),
            None => {
                // The web dashboard's session: the same token, in a cookie.
                let token = session_cookie(&parts.headers)
                    .ok_or_else(|| unauthorized("missing Authorization: Bearer token"))?;
                check_csrf(parts)?;
                token
            }
        };
        let principal = principal_for(state, &token).await?;
        state.limits.check_rate(&principal.tenant_id, &principal.token_id)?;
        Ok(Caller(principal))
    }
}

/// Who `token` (an API token or a JWT) belongs to; 401 if nobody.
pub async fn principal_for(state: &AppState, token: &str) -> Result<Principal, Problem> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "malformed token",
        ));
    }
    if jwt::looks_like_jwt(token) {
        return jwt_principal(state, token).await;
    }
    let hash = token_hash(token);
    let revision = state.auth_revision.load(Ordering::SeqCst);
    match state.principals.get(&hash).await {
        Some(p) => Ok(p),
        None => match state.db.principal(&hash).await? {
            Some(p) => {
                cache_principal(state, revision, hash, &p).await;
                Ok(p)
            }
            // Unknown tokens are not cached: a new one works at once.
            None => Err(Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "unknown or revoked token",
            )),
        },
    }
}

/// The dashboard's session cookie.
pub const SESSION_COOKIE: &str = "sluice_session";
/// The header every state-changing dashboard request carries. A page of
/// another site cannot send it without a CORS preflight, which this server
/// never grants (and the cookie is `SameSite=Strict` besides).
pub const CSRF_HEADER: &str = "x-sluice-csrf";

/// The session cookie's token, if the request carries one.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// Refuses (403) a cookie-authenticated request that changes state unless
/// it carries the CSRF header and does not come from another site.
fn check_csrf(parts: &Parts) -> Result<(), Problem> {
    let cross_site = parts
        .headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site");
    let safe = matches!(parts.method.as_str(), "GET" | "HEAD" | "OPTIONS");
    if cross_site || (!safe && parts.headers.get(CSRF_HEADER).is_none()) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "csrf",
            format!("a request authenticated by the session cookie must come from the dashboard (with {CSRF_HEADER})"),
        ));
    }
    Ok(())
}

/// Caches a principal read at auth revision `revision`, unless tokens
/// changed meanwhile: what was read may then be stale (just revoked).
async fn cache_principal(state: &AppState, revision: i64, hash: String, p: &Principal) {
    if state.auth_revision.load(Ordering::SeqCst) != revision {
        return;
    }
    state.principals.insert(hash.clone(), p.clone()).await;
    // The revision may have moved between the check and the insert.
    if state.auth_revision.load(Ordering::SeqCst) != revision {
        state.principals.invalidate(&hash).await;
    }
}

/// Longest bearer token accepted (JWTs with a few claims fit easily).
const MAX_TOKEN_LEN: usize = 8192;

/// Who a JWT is for: its tenant claim must name an existing tenant.
async fn jwt_principal(state: &AppState, token: &str) -> Result<Principal, Problem> {
    let unauthorized = |detail: String| Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail);
    let Some(verifier) = &state.jwt else {
        return Err(unauthorized("this server does not accept JWTs".into()));
    };
    let id = verifier.verify(token).await.map_err(|e| match e {
        jwt::JwtError::Invalid(why) => unauthorized(why),
        jwt::JwtError::KeysUnavailable => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "auth_unavailable",
            "the token issuer's keys cannot be fetched; retry later",
        )
        .retry_after(std::time::Duration::from_secs(5)),
    })?;
    let tenant = match state.db.tenant_by_name(&id.tenant).await {
        Ok(t) => t,
        Err(sluice_store::Error::NotFound(_)) => return Err(unauthorized("the JWT's tenant does not exist".into())),
        Err(e) => return Err(e.into()),
    };
    Ok(Principal {
        tenant_id: tenant.id,
        tenant_name: tenant.name,
        token_id: format!("jwt:{}", id.subject),
        scope: id.scope,
    })
}
