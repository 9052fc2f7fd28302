//! What a handler takes from a request besides its path: the caller
//! ([`Authed`]: `Authorization: Bearer …`, or the dashboard's session
//! cookie with its CSRF header; what the token means is the service's
//! business) and a query string ([`Query`], bad ones answered as problem
//! JSON like every other error).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use sluice_service::auth::MAX_TOKEN_LEN;
use sluice_service::{Caller, Service};

use crate::problem::Problem;

/// The dashboard's session cookie.
pub const SESSION_COOKIE: &str = "sluice_session";
/// The header every state-changing dashboard request carries. A page of
/// another site cannot send it without a CORS preflight, which this server
/// never grants (and the cookie is `SameSite=Strict` besides).
pub const CSRF_HEADER: &str = "x-sluice-csrf";

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Authed(pub Caller);

impl FromRequestParts<Service> for Authed {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, service: &Service) -> Result<Self, Self::Rejection> {
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
        Ok(Authed(service.authenticate(&token).await?))
    }
}

/// The dashboard's session cookie's token, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
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

/// A deserialized query string.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(e) => Err(Problem::bad_request(e.body_text())),
        }
    }
}

/// A JSON body, with a bad one answered as a problem (400 `bad_request`).
pub fn json<T>(body: Result<axum::Json<T>, axum::extract::rejection::JsonRejection>) -> Result<T, Problem> {
    body.map(|axum::Json(v)| v)
        .map_err(|e| Problem::bad_request(e.body_text()))
}
