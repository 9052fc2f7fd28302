//! The S3-compatible face of the sluice service: any S3 client stores
//! through it, and every object is still compressed, sealed with its
//! tenant's keys and verifiable. [`s3s`] speaks the protocol (SigV4 of
//! headers, presigned URLs and `aws-chunked` bodies, XML, routing); this
//! crate maps its typed operations onto the service core, which knows no
//! HTTP.
//!
//! The object model: bucket names are global and each belongs to one
//! tenant ([`sluice_service::buckets`]); object `K` of bucket `B` is the
//! tenant's object `B/K`, the same one the native API and the dashboard
//! show. Access keys come from `sluice admin s3-key create`.

mod auth;
mod checksums;
mod conditions;
mod edge;
mod errors;
mod face;
mod host;
mod listing;
mod tags;

use axum::error_handling::HandleError;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use s3s::service::S3ServiceBuilder;
use sluice_service::Service;

/// The S3 face of `service`, as a router the server runs on its own
/// listener (with the native API's connection limits and shutdown).
/// Path-style addressing always works; virtual-hosted style too when the
/// service's settings name an S3 domain.
pub fn router(service: Service) -> axum::Router {
    let mut builder = S3ServiceBuilder::new(face::Face::new(service.clone()));
    if let Some(domain) = &service.config().s3_domain {
        builder.set_host(host::Domain::new(domain));
    }
    builder.set_auth(auth::KeyLookup::new(service));
    let s3 = builder.build();
    let s3 = HandleError::new(s3, |e: s3s::HttpError| async move {
        tracing::warn!(error = ?e, "S3 request failed below the protocol");
        (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
    });
    axum::Router::new()
        .fallback_service(s3)
        .layer(axum::middleware::from_fn_with_state(edge::Edge::new(), edge::edge))
}
