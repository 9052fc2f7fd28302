//! Service errors as S3 errors (codes and statuses clients act on). What
//! was not found depends on the operation, so that one is the caller's.

use s3s::{s3_error, S3Error, S3ErrorCode};
use sluice_service::multipart::PartsProblem;
use sluice_service::{Conflict, Error, JobError, Refusal};

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
        // S3 has one answer for "too much, slow down"; a store that is
        // failing is unavailable; a full quota is Ceph RGW's QuotaExceeded.
        Error::Refused(Refusal::StorageUnavailable { .. }) => S3ErrorCode::ServiceUnavailable,
        Error::Refused(Refusal::QuotaBytes { .. }) => S3ErrorCode::Custom("QuotaExceeded".into()),
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
        Error::Job {
            error: JobError::UploadTooLarge(_),
            ..
        } => S3ErrorCode::EntityTooLarge,
        Error::Job { error, .. } if error.is_transient() => S3ErrorCode::ServiceUnavailable,
        Error::Job { .. } => S3ErrorCode::InvalidRequest,
        Error::NotFound(_) => S3ErrorCode::NoSuchKey,
        Error::Internal | Error::Setup(_) => S3ErrorCode::InternalError,
        Error::AlreadyExists(_) => S3ErrorCode::InvalidRequest,
    };
    let quota = matches!(e, Error::Refused(Refusal::QuotaBytes { .. }));
    let mut err = S3Error::with_message(code, message);
    if quota {
        err.set_status_code(axum::http::StatusCode::FORBIDDEN);
    }
    if let Some(after) = e.retry_after() {
        let mut headers = axum::http::HeaderMap::new();
        if let Ok(v) = after.as_secs().max(1).to_string().parse() {
            headers.insert("retry-after", v);
        }
        err.set_headers(headers);
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn limits_answer_as_s3_does() {
        let code = |r: Refusal| {
            let e = to_s3(Error::Refused(r));
            (e.code().as_str().to_string(), e.status_code().map(|s| s.as_u16()))
        };
        let rate = Refusal::RateLimited {
            rate_per_sec: 1.0,
            burst: 1,
            retry_after: Duration::from_secs(2),
        };
        assert_eq!(code(rate), ("SlowDown".into(), Some(503)));
        assert_eq!(code(Refusal::Transfers { max: 1 }), ("SlowDown".into(), Some(503)));
        assert_eq!(
            code(Refusal::StorageUnavailable {
                retry_after: Duration::from_secs(5)
            }),
            ("ServiceUnavailable".into(), Some(503))
        );
        assert_eq!(
            code(Refusal::QuotaBytes { quota: 1, used: 1 }),
            ("QuotaExceeded".into(), Some(403))
        );
        let big = to_s3(Error::Job {
            job: None,
            error: JobError::UploadTooLarge("x".into()),
        });
        assert_eq!(big.code().as_str(), "EntityTooLarge");
    }
}
