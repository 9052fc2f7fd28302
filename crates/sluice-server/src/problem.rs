//! Errors on the wire: `application/problem+json` (RFC 9457) with a stable
//! `code`. Messages never carry secrets or server paths.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sluice_engine::format::ErrorClass;

/// An error answer.
#[derive(Debug)]
pub struct Problem {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `not_found`.
    pub code: &'static str,
    /// What happened, for a person.
    pub detail: String,
    /// Seconds after which a retry may succeed (`Retry-After`).
    retry_after: Option<u64>,
}

impl Problem {
    /// A problem with `status`, `code` and `detail`.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// Adds `Retry-After`: `wait` rounded up to whole seconds, at least 1.
    pub fn retry_after(mut self, wait: std::time::Duration) -> Problem {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        self.retry_after = Some(secs.max(1));
        self
    }

    /// The `Retry-After` seconds, if any.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after
    }

    /// 400 with code `bad_request`.
    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    /// 404 with code `not_found`.
    pub fn not_found(what: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not_found", format!("{} not found", what.into()))
    }

    /// 500 with code `internal`; the cause is logged, not sent.
    pub fn internal(cause: impl std::fmt::Display) -> Problem {
        tracing::error!(error = %cause, "internal error");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error (logged on the server)",
        )
    }

    /// The status and code for an engine error class.
    pub fn for_class(class: ErrorClass, detail: impl Into<String>) -> Problem {
        let (status, code) = match class {
            ErrorClass::Usage => (StatusCode::BAD_REQUEST, "bad_request"),
            ErrorClass::Integrity => (StatusCode::UNPROCESSABLE_ENTITY, "integrity"),
            ErrorClass::Key => (StatusCode::UNPROCESSABLE_ENTITY, "key"),
            ErrorClass::Limit => (StatusCode::PAYLOAD_TOO_LARGE, "limit"),
            ErrorClass::Io => (StatusCode::SERVICE_UNAVAILABLE, "io"),
            ErrorClass::Cancelled => (StatusCode::CONFLICT, "cancelled"),
            _ => return Problem::internal(detail.into()),
        };
        Problem::new(status, code, detail)
    }
}

impl From<sluice_store::Error> for Problem {
    fn from(e: sluice_store::Error) -> Problem {
        match e {
            sluice_store::Error::NotFound(what) => Problem::not_found(what),
            sluice_store::Error::Conflict(what) => {
                Problem::new(StatusCode::CONFLICT, "conflict", format!("{what} already exists"))
            }
            e if e.is_transient() => {
                tracing::warn!(error = %e, "store unavailable");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "storage temporarily unavailable",
                )
                .retry_after(std::time::Duration::from_secs(1))
            }
            e => Problem::internal(e),
        }
    }
}

impl From<sluice_engine::Error> for Problem {
    fn from(e: sluice_engine::Error) -> Problem {
        Problem::for_class(e.class(), e.to_string())
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("error"),
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
        });
        let mut resp = (self.status, body.to_string()).into_response();
        resp.extensions_mut().insert(crate::telemetry::ProblemCode(self.code));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// Results of handlers.
pub type ApiResult<T> = Result<T, Problem>;
