//! The HTTP routes, one module per resource. Each handler parses the
//! request, calls one service method and maps its answer; no SQL and no
//! job logic here.

pub mod admin;
pub mod buckets;
pub mod health;
pub mod jobs;
pub mod objects;
pub mod overview;
pub mod pipelines;
pub mod uploads;

use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post, put};
use axum::{BoxError, Router};
use sluice_service::{Job, Service};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

use crate::api::JobBody;
use crate::problem::Problem;

/// Every API route (method and path template), as the OpenAPI document
/// lists them. The dashboard's page, assets and session routes (`/`,
/// `/ui/…`, see `ui.rs`) are not API and not listed.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/v1/openapi.json"),
    ("get", "/v1/objects"),
    ("get", "/v1/buckets"),
    ("get", "/v1/buckets/{bucket}"),
    ("put", "/v1/buckets/{bucket}"),
    ("delete", "/v1/buckets/{bucket}"),
    ("put", "/v1/objects/{key}"),
    ("get", "/v1/objects/{key}"),
    ("head", "/v1/objects/{key}"),
    ("delete", "/v1/objects/{key}"),
    ("get", "/v1/objects/{key}/content"),
    ("post", "/v1/objects/{key}/verify"),
    ("get", "/v1/jobs"),
    ("get", "/v1/jobs/{id}"),
    ("delete", "/v1/jobs/{id}"),
    ("get", "/v1/jobs/{id}/events"),
    ("post", "/v1/jobs/{id}/retry"),
    ("get", "/v1/overview"),
    ("post", "/v1/uploads"),
    ("get", "/v1/uploads/{id}"),
    ("delete", "/v1/uploads/{id}"),
    ("put", "/v1/uploads/{id}/parts/{n}"),
    ("post", "/v1/uploads/{id}/complete"),
    ("get", "/v1/admin/tenants"),
    ("post", "/v1/admin/tenants"),
    ("put", "/v1/admin/tenants/{name}/limits"),
    ("get", "/v1/admin/tenants/{name}/tokens"),
    ("post", "/v1/admin/tenants/{name}/tokens"),
    ("delete", "/v1/admin/tokens/{id}"),
    ("get", "/v1/pipelines"),
    ("get", "/v1/pipelines/{name}"),
    ("put", "/v1/pipelines/{name}"),
    ("delete", "/v1/pipelines/{name}"),
];

/// The application's router.
///
/// Every `/v1` request counts against one global in-flight limit; past it
/// new requests are shed at once with 503 + `Retry-After` (never queued).
/// Requests that stream (uploads, downloads, event streams) are bounded by
/// the idle-body timeout instead of a total one; the others get the request
/// timeout. Health routes are neither limited nor shed, so probes see an
/// overloaded server as alive.
pub fn router(state: Service) -> Router {
    let c = state.config();
    let bounded = Router::new()
        .route("/v1/openapi.json", get(crate::openapi::get))
        .route("/v1/objects", get(objects::list))
        .route("/v1/jobs", get(jobs::list))
        .route("/v1/jobs/{id}", get(jobs::get).delete(jobs::cancel))
        .route("/v1/jobs/{id}/retry", post(jobs::retry))
        .route("/v1/overview", get(overview::get))
        .route("/v1/uploads", post(uploads::create))
        .route("/v1/uploads/{id}", get(uploads::status).delete(uploads::abort))
        .route("/v1/uploads/{id}/complete", post(uploads::complete))
        .route("/v1/admin/tenants", get(admin::tenants).post(admin::create_tenant))
        .route("/v1/admin/tenants/{name}/limits", put(admin::set_limits))
        .route(
            "/v1/admin/tenants/{name}/tokens",
            get(admin::tokens).post(admin::create_token),
        )
        .route("/v1/admin/tokens/{id}", delete(admin::revoke_token))
        .route("/v1/buckets", get(buckets::list))
        .route(
            "/v1/buckets/{bucket}",
            get(buckets::get).put(buckets::put).delete(buckets::delete),
        )
        .route("/v1/pipelines", get(pipelines::list))
        .route(
            "/v1/pipelines/{name}",
            get(pipelines::get).put(pipelines::put).delete(pipelines::delete),
        )
        .layer(DefaultBodyLimit::max(c.max_json_bytes))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(timed_out))
                .timeout(c.request_timeout),
        );
    let streaming = Router::new()
        // Uploads stream with their own limit; this wildcard takes no JSON.
        .route(
            "/v1/objects/{*path}",
            any(objects::dispatch).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/jobs/{id}/events", get(jobs::events))
        .route(
            "/v1/uploads/{id}/parts/{n}",
            put(uploads::put_part).layer(DefaultBodyLimit::disable()),
        );
    let v1 = bounded
        .merge(streaming)
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::new(c.max_in_flight)),
        )
        .layer(middleware::from_fn_with_state(state.clone(), count_in_flight));
    let mut app = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/", get(crate::ui::index))
        .route("/ui/{file}", get(crate::ui::asset))
        .route(
            "/ui/session",
            get(crate::ui::whoami)
                .post(crate::ui::sign_in)
                .delete(crate::ui::sign_out)
                .layer(DefaultBodyLimit::max(16 << 10)),
        );
    // Not behind tenant tokens, nor shed: scrapes must see an overloaded server.
    if c.metrics_listen.is_none() {
        app = app.route("/metrics", get(crate::observe::metrics));
    }
    app.merge(v1)
        .layer(middleware::from_fn_with_state(c.max_uri_bytes, limit_uri))
        // A bug must cost one request a 500, not its connection.
        .layer(CatchPanicLayer::custom(panicked))
        .fallback(|| async { Problem::not_found("route") })
        .layer(middleware::from_fn(crate::observe::observe))
        .with_state(state)
}

/// 500 for a handler that panicked (the panic itself is logged).
fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    Problem::internal("a request handler panicked").into_response()
}

/// 503 for a request shed because too many are in flight.
async fn overloaded(err: BoxError) -> Problem {
    if err.is::<tower::load_shed::error::Overloaded>() {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "too many requests in flight; retry shortly",
        )
        .retry_after(Duration::from_secs(1))
    } else {
        Problem::internal(err)
    }
}

/// 503 for a request that ran past the request timeout.
async fn timed_out(err: BoxError) -> Problem {
    if err.is::<tower::timeout::error::Elapsed>() {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took too long; retry later",
        )
        .retry_after(Duration::from_secs(1))
    } else {
        Problem::internal(err)
    }
}

/// Counts the request while it is handled (the dispatcher yields to them).
async fn count_in_flight(State(st): State<Service>, req: Request, next: Next) -> Response {
    let _counted = st.request_started();
    next.run(req).await
}

/// A job as JSON (live progress if it runs here) with `status` and
/// `Location: /v1/jobs/{id}`.
pub(crate) fn job_response(st: &Service, status: StatusCode, job: &Job) -> Response {
    let mut resp = (status, axum::Json(JobBody::new(job, st.progress(job)))).into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("/v1/jobs/{}", job.id)) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    resp
}

/// 414 for a path and query longer than the limit.
async fn limit_uri(State(max): State<usize>, req: Request, next: Next) -> Response {
    let len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if len > max {
        return Problem::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("request paths are limited to {max} bytes"),
        )
        .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The OpenAPI document lists exactly the routes served.
    #[test]
    fn openapi_matches_the_routes() {
        let doc: serde_json::Value = serde_json::from_str(crate::openapi::OPENAPI).unwrap();
        let mut documented = Vec::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                documented.push((method.clone(), path.clone()));
            }
        }
        let mut served: Vec<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
        documented.sort();
        served.sort();
        assert_eq!(documented, served);
    }
}
