//! The web dashboard: a page and its script and style, compiled into the
//! binary (no CDN, no build step), and the sign-in session.
//!
//! Signing in posts a token once; the server answers with it in an
//! `HttpOnly; SameSite=Strict` cookie, so page scripts never hold it. The
//! API then accepts the cookie like a bearer token (`auth.rs`), and every
//! state-changing request must carry `X-Sluice-CSRF`, which another site's
//! page cannot send. Pages are served with a strict Content-Security-Policy:
//! scripts and styles from this origin only, no inline code, no framing.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sluice_service::Service;

use crate::api::{SignInRequest, WhoBody};
use crate::extract::{json, Authed, CSRF_HEADER, SESSION_COOKIE};
use crate::problem::{ApiResult, Problem};

const INDEX_HTML: &str = include_str!("../ui/index.html");
const APP_JS: &str = include_str!("../ui/app.js");
const APP_CSS: &str = include_str!("../ui/app.css");

/// The dashboard pages' Content-Security-Policy.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// How long a session cookie lives (the token itself may expire sooner).
const SESSION_SECS: u64 = 12 * 3600;

fn page(content_type: &'static str, body: &'static str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// `GET /`: the dashboard.
pub async fn index() -> Response {
    page("text/html; charset=utf-8", INDEX_HTML)
}

/// `GET /ui/{file}`: the dashboard's script and style.
pub async fn asset(Path(file): Path<String>) -> Response {
    match file.as_str() {
        "app.js" => page("text/javascript; charset=utf-8", APP_JS),
        "app.css" => page("text/css; charset=utf-8", APP_CSS),
        _ => Problem::not_found(format!("asset {file:?}")).into_response(),
    }
}

fn session_cookie(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or(HeaderValue::from_static("sluice_session=; Path=/; Max-Age=0"))
}

/// Behind a TLS-terminating proxy the cookie is marked `Secure`.
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// `POST /ui/session`: signs in with a token (JSON `{"token": …}`, with the
/// CSRF header); sets the session cookie. 401 for a token that is not valid.
pub async fn sign_in(
    State(st): State<Service>,
    headers: HeaderMap,
    body: Result<axum::Json<SignInRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    // Also here: another site must not sign a visitor in to its account.
    if headers.get(CSRF_HEADER).is_none() {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "csrf",
            format!("sign in from the dashboard (with {CSRF_HEADER})"),
        ));
    }
    let body = json(body)?;
    let token = body.token.trim();
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "that is not a token",
        ));
    }
    let who = st.authenticate(token).await?.0;
    tracing::info!(tenant = %who.tenant_name, token_id = %who.token_id, "dashboard sign-in");
    let mut resp = axum::Json(WhoBody {
        tenant: who.tenant_name,
        scope: who.scope.as_str().into(),
    })
    .into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(token, SESSION_SECS, over_https(&headers)),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `GET /ui/session`: who is signed in (401 if nobody).
pub async fn whoami(Authed(caller): Authed) -> Response {
    axum::Json(WhoBody {
        tenant: caller.0.tenant_name,
        scope: caller.0.scope.as_str().into(),
    })
    .into_response()
}

/// `DELETE /ui/session`: signs out (clears the cookie).
pub async fn sign_out(headers: HeaderMap) -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", 0, over_https(&headers)));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_http_only_and_strict() {
        let c = session_cookie("sluice_abc", 60, false);
        let c = c.to_str().unwrap();
        assert!(c.starts_with("sluice_session=sluice_abc;"), "{c}");
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=60"] {
            assert!(c.contains(attr), "{c} lacks {attr}");
        }
        assert!(!c.contains("Secure"));
        assert!(session_cookie("x", 1, true).to_str().unwrap().ends_with("; Secure"));
    }

    #[test]
    fn pages_carry_a_strict_policy_and_no_inline_code() {
        let resp = page("text/html", INDEX_HTML);
        assert_eq!(resp.headers()[header::CONTENT_SECURITY_POLICY], CSP);
        assert!(!CSP.contains("unsafe"), "no unsafe-inline / unsafe-eval");
        // The policy forbids inline scripts and styles: the page has none.
        assert!(!INDEX_HTML.contains("<script>") && !INDEX_HTML.contains("style="));
        assert!(!INDEX_HTML.contains("onclick") && !APP_JS.contains("innerHTML ="));
        for remote in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
            assert!(!INDEX_HTML.contains(remote), "no CDN: {remote}");
        }
    }
}
