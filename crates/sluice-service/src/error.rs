//! [`Error`]: what a service call answers when it does not succeed. The
//! faces map it once each: the native API to a status and a problem
//! `code`, the S3 face to an S3 error. Messages never carry secrets or
//! server paths; an internal error's cause is logged, not returned.

use std::time::Duration;

use crate::jobs::JobError;
use crate::tenants::limits::Refusal;

/// Why a service call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Refused by a limit (rate, quota, queue, storage breaker, buffers).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A job, or the upload feeding one, failed; `job` is its id once it
    /// had one.
    #[error("{}", job_detail(job.as_deref(), error))]
    Job {
        /// The job's id, if the failure happened to a job.
        job: Option<String>,
        /// The failure.
        error: JobError,
    },
    /// No valid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// The credentials do not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// The identity provider's keys cannot be fetched.
    #[error("the token issuer's keys cannot be fetched; retry later")]
    AuthUnavailable,
    /// Something named does not exist (or belongs to another tenant).
    #[error("{0} not found")]
    NotFound(String),
    /// A name is taken.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// An object key breaks the key rules.
    #[error("invalid object key: {0}")]
    InvalidKey(String),
    /// A pipeline or tenant name breaks the naming rules.
    #[error("{0}")]
    InvalidName(String),
    /// A pipeline's settings cannot be used.
    #[error("{0}")]
    InvalidPipeline(String),
    /// The thing is not in a state that allows this.
    #[error("{detail}")]
    Conflict {
        /// Which conflict.
        kind: Conflict,
        /// What happened.
        detail: String,
    },
    /// A multipart completion's part list was refused.
    #[error("{detail}")]
    Parts {
        /// What is wrong with it.
        kind: crate::multipart::PartsProblem,
        /// What happened.
        detail: String,
    },
    /// The byte range asked for is outside the content.
    #[error("the content is {len} bytes")]
    RangeNotSatisfiable {
        /// The content's length.
        len: u64,
    },
    /// The database or the object store failed; retrying may succeed.
    #[error("storage temporarily unavailable")]
    Unavailable,
    /// A bug or broken invariant; the cause was logged.
    #[error("internal error (logged on the server)")]
    Internal,
    /// What the service needs to start is missing or broken (the data
    /// directory, the master key, the database, the object store).
    #[error("{0}")]
    Setup(String),
}

/// The conflicts a request can meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// The job already finished (it cannot be cancelled).
    AlreadyFinished,
    /// The job has not finished (it cannot be retried yet).
    NotFinished,
    /// An upload's data is not kept once its job failed.
    NotRetryable,
    /// The resumable upload is no longer open.
    UploadClosed,
    /// Parts of the resumable upload are missing.
    Incomplete,
    /// The caller already owns a bucket of that name.
    BucketOwned,
    /// Another tenant owns a bucket of that name.
    BucketTaken,
    /// The bucket still holds objects.
    BucketNotEmpty,
}

impl Conflict {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Conflict::AlreadyFinished => "already_finished",
            Conflict::NotFinished => "not_finished",
            Conflict::NotRetryable => "not_retryable",
            Conflict::UploadClosed => "upload_closed",
            Conflict::Incomplete => "incomplete",
            Conflict::BucketOwned => "bucket_owned",
            Conflict::BucketTaken => "bucket_taken",
            Conflict::BucketNotEmpty => "bucket_not_empty",
        }
    }
}

fn job_detail(job: Option<&str>, error: &JobError) -> String {
    match job {
        Some(id) => format!("job {id} failed: {}", error.detail()),
        None => error.detail().to_string(),
    }
}

impl Error {
    /// A failure of no job yet (the upload feeding it).
    pub fn upload(error: JobError) -> Error {
        Error::Job { job: None, error }
    }

    /// An internal error: `cause` is logged here, never returned.
    pub fn internal(cause: impl std::fmt::Display) -> Error {
        tracing::error!(error = %cause, "internal error");
        Error::Internal
    }

    /// Seconds after which retrying may succeed, for answers that say so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Refused(r) => Some(r.retry_after()),
            Error::Unavailable => Some(Duration::from_secs(1)),
            Error::AuthUnavailable => Some(Duration::from_secs(5)),
            Error::Job { error, .. } if error.is_transient() => Some(Duration::from_secs(1)),
            _ => None,
        }
    }
}

impl From<sluice_store::Error> for Error {
    fn from(e: sluice_store::Error) -> Error {
        match e {
            sluice_store::Error::NotFound(what) => Error::NotFound(what),
            sluice_store::Error::Conflict(what) => Error::AlreadyExists(what),
            e if e.is_transient() => {
                tracing::warn!(error = %e, "storage unavailable");
                Error::Unavailable
            }
            e => Error::internal(e),
        }
    }
}

impl From<sluice_engine::Error> for Error {
    fn from(e: sluice_engine::Error) -> Error {
        match JobError::of_engine(&e) {
            Some(JobError::Unavailable(cause)) => {
                tracing::warn!(error = %cause, "storage unavailable");
                Error::Unavailable
            }
            Some(JobError::Internal(cause)) => Error::internal(cause),
            // Outside a job, a request the engine refuses is a bad request.
            Some(JobError::BadRequest(why)) => Error::BadRequest(why),
            Some(error) => Error::upload(error),
            None => Error::upload(JobError::Cancelled("cancelled".into())),
        }
    }
}

/// Results of service calls.
pub type Result<T> = std::result::Result<T, Error>;
