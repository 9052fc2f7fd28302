//! What operators see of the native API: every request gets an id
//! (`X-Request-Id`, accepted when well-formed, else made here, and always
//! returned), runs inside a `request` span carrying it, and is counted and
//! timed by route template and status; rejections (rate limit, quota,
//! shed, timeout…) are counted by reason. `/metrics` renders the
//! service's metrics (`sluice_service::telemetry`) with these.

use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use metrics::{counter, histogram};
use sluice_service::Service;
use tracing::Instrument;

/// The request id header, read and written.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The route label: the matched template, with the objects wildcard told
/// apart as the three routes it serves; `unmatched` for 404s of no route.
fn route_label(req: &Request) -> String {
    let Some(matched) = req.extensions().get::<MatchedPath>() else {
        return "unmatched".into();
    };
    let template = matched.as_str();
    if template != "/v1/objects/{*path}" {
        return template.to_string();
    }
    let path = req.uri().path();
    if path.ends_with("/content") {
        "/v1/objects/{key}/content".into()
    } else if path.ends_with("/verify") {
        "/v1/objects/{key}/verify".into()
    } else {
        "/v1/objects/{key}".into()
    }
}

/// A request id from the client is kept if it is short and plain.
fn acceptable_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then(|| s.to_string())
}

fn new_request_id() -> String {
    sluice_service::new_id().unwrap_or_else(|_| {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        format!("local-{}", NEXT.fetch_add(1, Ordering::Relaxed))
    })
}

/// The code a problem response carries (set by `Problem`), for metrics.
#[derive(Debug, Clone, Copy)]
pub struct ProblemCode(pub &'static str);

/// The outermost middleware: request id, span, metrics.
pub async fn observe(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(acceptable_id)
        .unwrap_or_else(new_request_id);
    let value = HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("invalid"));
    req.headers_mut().insert(REQUEST_ID.clone(), value.clone());
    let method = req.method().as_str().to_string();
    let route = route_label(&req);
    let span = tracing::info_span!("request", id = %id, method = %method, route = %route);
    let mut resp = next.run(req).instrument(span.clone()).await;
    resp.headers_mut().insert(REQUEST_ID.clone(), value);
    let status = resp.status();
    let took = started.elapsed();
    histogram!("sluice_http_request_duration_seconds", "face" => "native", "method" => method.clone(), "route" => route.clone())
        .record(took.as_secs_f64());
    counter!(
        "sluice_http_requests_total",
        "face" => "native",
        "method" => method,
        "route" => route,
        "status" => status.as_str().to_string()
    )
    .increment(1);
    let rejection = matches!(
        status,
        StatusCode::REQUEST_TIMEOUT
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::TOO_MANY_REQUESTS
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::URI_TOO_LONG
    );
    if rejection {
        let reason = resp.extensions().get::<ProblemCode>().map_or("other", |c| c.0);
        counter!("sluice_http_rejected_total", "reason" => reason).increment(1);
    }
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), ms = took.as_millis() as u64, "request failed");
        } else {
            tracing::debug!(status = status.as_u16(), ms = took.as_millis() as u64, "request");
        }
    });
    resp
}

/// `GET /metrics`: the Prometheus text exposition.
pub async fn metrics(
    axum::extract::State(st): axum::extract::State<Service>,
    headers: axum::http::HeaderMap,
) -> Response {
    use axum::response::IntoResponse;
    let auth = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !st.telemetry().allows(auth) {
        return crate::problem::Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "/metrics needs its token")
            .into_response();
    }
    let body = st.telemetry().render(&st);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// The router of a separate metrics listener (`--metrics-listen`).
pub fn router(st: Service) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .with_state(st)
}

/// Serves `/metrics` alone on `listener` (the admin listener).
pub async fn serve_separately(listener: tokio::net::TcpListener, st: Service) {
    if let Err(e) = axum::serve(listener, router(st)).await {
        tracing::warn!(error = %e, "metrics listener stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_from_clients_are_kept_only_when_plain() {
        let ok = HeaderValue::from_static("abc-123_x.y:z");
        assert_eq!(acceptable_id(&ok).as_deref(), Some("abc-123_x.y:z"));
        for bad in ["", "has space", "new\tline", &"x".repeat(129)] {
            let v = HeaderValue::from_str(bad).unwrap();
            assert!(acceptable_id(&v).is_none(), "{bad:?}");
        }
        assert_ne!(new_request_id(), new_request_id());
    }
}
