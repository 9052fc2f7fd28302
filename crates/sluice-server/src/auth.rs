//! Bearer-token authentication: `Authorization: Bearer sluice_…`. Tokens
//! are looked up by their hash; a missing, malformed, unknown or revoked
//! token is 401, a token without the needed scope 403.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use sluice_store::{token_hash, Principal, Scope};

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
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("missing Authorization: Bearer token"))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 128)
            .ok_or_else(|| unauthorized("malformed Authorization header (expected Bearer TOKEN)"))?;
        match state.db.principal(&token_hash(token)).await? {
            Some(p) => Ok(Caller(p)),
            None => Err(unauthorized("unknown or revoked token")),
        }
    }
}
