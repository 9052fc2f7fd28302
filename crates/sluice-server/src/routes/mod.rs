//! The HTTP routes, one module per resource.

pub mod health;
pub mod jobs;
pub mod objects;
pub mod pipelines;

use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get};
use axum::Router;

use crate::problem::Problem;
use crate::state::AppState;

/// Every route (method and path template), as the OpenAPI document lists them.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/v1/openapi.json"),
    ("get", "/v1/objects"),
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
    ("get", "/v1/pipelines"),
    ("get", "/v1/pipelines/{name}"),
    ("put", "/v1/pipelines/{name}"),
    ("delete", "/v1/pipelines/{name}"),
];

/// The application's router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/v1/openapi.json", get(health::openapi))
        .route("/v1/objects", get(objects::list))
        // Uploads stream with their own limit; this wildcard takes no JSON.
        .route(
            "/v1/objects/{*path}",
            any(objects::dispatch).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/jobs", get(jobs::list))
        .route("/v1/jobs/{id}", get(jobs::get).delete(jobs::cancel))
        .route("/v1/jobs/{id}/events", get(jobs::events))
        .route("/v1/pipelines", get(pipelines::list))
        .route(
            "/v1/pipelines/{name}",
            get(pipelines::get).put(pipelines::put).delete(pipelines::delete),
        )
        .layer(DefaultBodyLimit::max(64 << 10))
        .fallback(|| async { Problem::not_found("route") })
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The OpenAPI document lists exactly the routes served.
    #[test]
    fn openapi_matches_the_routes() {
        let doc: serde_json::Value = serde_json::from_str(health::OPENAPI).unwrap();
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
