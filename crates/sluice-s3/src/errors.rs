//! Service errors as S3 errors (codes and statuses clients act on). What
//! was not found depends on the operation, so that one is the caller's.

use s3s::{s3_error, S3Error, S3ErrorCode};
use sluice_service::multipart::PartsProblem;
use sluice_service::{Conflict, Error, JobError};

/// An S3 error for a service error; `NotFound` becomes `NoSuchKey` (use
/// [`bucket_error`] where a bucket was looked up).
pub(crate) fn to_s3(e: Error) -> S3Error {
    match e {
        Error::NotFound(what) => s3_error!(NoSuchKey, "{what} not found"),
        other => common(other),
    }
}

/// [`to_s3`] for a bucket lookup: `NotFound` is `NoSuchBucket`.
pub(crate) fn bucket_error(e: Error) -> S3Error {
    match e {
        Error::NotFound(what) => s3_error!(NoSuchBucket, "{what} not found"),
        other => common(other),
    }
}

fn common(e: Error) -> S3Error {
    let message = e.to_string();
    let code = match &e {
        Error::Refused(_) => S3ErrorCode::SlowDown,
        Error::Unauthorized(_) => S3ErrorCode::InvalidAccessKeyId,
        Error::Forbidden(_) => S3ErrorCode::AccessDenied,
        Error::AuthUnavailable | Error::Unavailable => S3ErrorCode::ServiceUnavailable,
        Error::Conflict { kind, .. } => match kind {
            Conflict::BucketOwned => S3ErrorCode::BucketAlreadyOwnedByYou,
            Conflict::BucketTaken => S3ErrorCode::BucketAlreadyExists,
            Conflict::BucketNotEmpty => S3ErrorCode::BucketNotEmpty,
            _ => S3ErrorCode::OperationAborted,
        },
        Error::InvalidName(_) => S3ErrorCode::InvalidBucketName,
        Error::InvalidKey(_) | Error::BadRequest(_) | Error::InvalidPipeline(_) => S3ErrorCode::InvalidArgument,
        Error::RangeNotSatisfiable { .. } => S3ErrorCode::InvalidRange,
        Error::Parts { kind, .. } => match kind {
            PartsProblem::InvalidPart => S3ErrorCode::InvalidPart,
            PartsProblem::InvalidPartOrder => S3ErrorCode::InvalidPartOrder,
            PartsProblem::EntityTooSmall => S3ErrorCode::EntityTooSmall,
        },
        Error::Job {
            error: JobError::DigestMismatch(_),
            ..
        } => S3ErrorCode::BadDigest,
        Error::Job { error, .. } if error.is_transient() => S3ErrorCode::ServiceUnavailable,
        Error::Job { .. } => S3ErrorCode::InvalidRequest,
        Error::NotFound(_) => S3ErrorCode::NoSuchKey,
        Error::Internal | Error::Setup(_) => S3ErrorCode::InternalError,
        Error::AlreadyExists(_) => S3ErrorCode::InvalidRequest,
    };
    let mut err = S3Error::with_message(code, message);
    if let Some(after) = e.retry_after() {
        let mut headers = axum::http::HeaderMap::new();
        if let Ok(v) = after.as_secs().max(1).to_string().parse() {
            headers.insert("retry-after", v);
        }
        err.set_headers(headers);
    }
    err
}
