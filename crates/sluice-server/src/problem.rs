//! Errors on the wire: `application/problem+json` (RFC 9457) with a stable
//! `code`. [`Problem`] is built in one place for everything the service
//! answers ([`From<sluice_service::Error>`]): a failure has the same status
//! and code whichever path ran it. Messages never carry secrets or server
//! paths.

use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sluice_service::tenants::limits::Refusal;
use sluice_service::{Error, JobError};

use crate::api::ProblemBody;

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
    pub fn retry_after(mut self, wait: Duration) -> Problem {
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
}

/// The status of a job's failure, whichever path ran the job.
pub fn job_status(e: &JobError) -> StatusCode {
    match e {
        JobError::DigestMismatch(_)
        | JobError::BadRequest(_)
        | JobError::Integrity(_)
        | JobError::Key(_)
        | JobError::NotFound(_)
        | JobError::Failed(_) => StatusCode::UNPROCESSABLE_ENTITY,
        JobError::Limit(_) | JobError::UploadTooLarge(_) | JobError::QuotaBytes(_) => StatusCode::PAYLOAD_TOO_LARGE,
        JobError::Interrupted(_) => StatusCode::BAD_REQUEST,
        JobError::IdleTimeout(_) => StatusCode::REQUEST_TIMEOUT,
        JobError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        JobError::AttemptsExhausted(_) | JobError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        JobError::Cancelled(_) => StatusCode::CONFLICT,
    }
}

/// The status of a refusal.
pub fn refusal_status(r: &Refusal) -> StatusCode {
    match r {
        Refusal::RateLimited { .. }
        | Refusal::QuotaQueued { .. }
        | Refusal::TenantTransfers { .. }
        | Refusal::TenantMemory => StatusCode::TOO_MANY_REQUESTS,
        Refusal::QuotaBytes { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        Refusal::QueueFull { .. }
        | Refusal::StorageUnavailable { .. }
        | Refusal::Busy { .. }
        | Refusal::Transfers { .. } => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl From<Error> for Problem {
    fn from(e: Error) -> Problem {
        let mut detail = e.to_string();
        let (status, code) = match &e {
            Error::Refused(r) => (refusal_status(r), r.code()),
            Error::Job { error, job } => {
                if let JobError::Internal(_) = error {
                    // The cause is logged (and kept in the job's row), not sent.
                    tracing::error!(error = %e, "job failed");
                    detail = match job {
                        Some(id) => format!("job {id} failed: internal error (logged on the server)"),
                        None => "internal error (logged on the server)".into(),
                    };
                }
                (job_status(error), error.code())
            }
            Error::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Error::AuthUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "auth_unavailable"),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Error::AlreadyExists(_) => (StatusCode::CONFLICT, "conflict"),
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Error::InvalidKey(_) => (StatusCode::BAD_REQUEST, "invalid_key"),
            Error::InvalidName(_) => (StatusCode::BAD_REQUEST, "invalid_name"),
            Error::InvalidPipeline(_) => (StatusCode::BAD_REQUEST, "invalid_pipeline"),
            Error::Conflict { kind, .. } => (StatusCode::CONFLICT, kind.code()),
            Error::RangeNotSatisfiable { .. } => (StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable"),
            Error::Parts { kind, .. } => (StatusCode::BAD_REQUEST, kind.code()),
            Error::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Error::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            Error::Setup(why) => return Problem::internal(why),
        };
        let problem = Problem::new(status, code, detail);
        match e.retry_after() {
            Some(wait) => problem.retry_after(wait),
            None => problem,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = ProblemBody {
            kind: "about:blank".into(),
            title: self.status.canonical_reason().unwrap_or("error").into(),
            status: self.status.as_u16(),
            code: self.code.into(),
            detail: self.detail,
        };
        let text = serde_json::to_string(&body).unwrap_or_default();
        let mut resp = (self.status, text).into_response();
        resp.extensions_mut().insert(crate::observe::ProblemCode(self.code));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_failure_has_one_status_and_code() {
        let queued = Error::Job {
            job: Some("j1".into()),
            error: JobError::Key("no".into()),
        };
        let streamed = Error::upload(JobError::Key("no".into()));
        let (a, b) = (Problem::from(queued), Problem::from(streamed));
        assert_eq!((a.status, a.code), (StatusCode::UNPROCESSABLE_ENTITY, "key"));
        assert_eq!((a.status, a.code), (b.status, b.code));
        assert_eq!(a.detail, "job j1 failed: no");
        let p = Problem::from(Error::upload(JobError::Unavailable("down".into())));
        assert_eq!((p.status, p.code), (StatusCode::SERVICE_UNAVAILABLE, "unavailable"));
        assert_eq!(p.retry_after_secs(), Some(1));
    }

    #[test]
    fn refusals_carry_retry_after() {
        let p = Problem::from(Error::Refused(Refusal::QuotaQueued { queued: 3, max: 3 }));
        assert_eq!((p.status, p.code), (StatusCode::TOO_MANY_REQUESTS, "quota_queued"));
        assert_eq!(p.retry_after_secs(), Some(5));
        let p = Problem::from(Error::Refused(Refusal::RateLimited {
            rate_per_sec: 1.0,
            burst: 1,
            retry_after: Duration::from_millis(1500),
        }));
        assert_eq!(p.retry_after_secs(), Some(2));
    }
}
