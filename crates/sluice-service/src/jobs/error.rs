//! [`JobError`]: why a job failed, the one table of failures every path
//! shares. A job processed while its upload streams in and a queued job
//! end in the same variants, which are stored (code and detail) in the
//! job's row and read back as they were; each face maps a variant to its
//! answer in one place (the native API to a status and problem code, the
//! S3 face to an S3 error).

use sluice_engine::format::ErrorClass;

macro_rules! job_errors {
    ($($(#[$doc:meta])* $variant:ident = $code:literal,)*) => {
        /// Why a job (or the upload feeding it) failed. Each variant carries
        /// the detail shown to the client and stored with the job.
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        pub enum JobError {
            $($(#[$doc])* #[error("{0}")] $variant(String),)*
        }

        impl JobError {
            /// The stable code: stored in the job's `error_code` column and
            /// shown as the problem's `code`.
            pub fn code(&self) -> &'static str {
                match self { $(JobError::$variant(_) => $code,)* }
            }

            /// What happened, for a person.
            pub fn detail(&self) -> &str {
                match self { $(JobError::$variant(d) => d,)* }
            }

            /// The error stored as `code` with `detail` (a code this
            /// version does not know reads back as [`JobError::Failed`]).
            pub fn from_stored(code: &str, detail: &str) -> JobError {
                let detail = detail.to_string();
                match code {
                    $($code => JobError::$variant(detail),)*
                    // Written by earlier versions for a transient failure.
                    "io" => JobError::Unavailable(detail),
                    _ => JobError::Failed(detail),
                }
            }
        }
    };
}

job_errors! {
    /// The upload's BLAKE3 differs from the one the client announced.
    DigestMismatch = "digest_mismatch",
    /// The request or the pipeline cannot be processed as it is.
    BadRequest = "bad_request",
    /// The data is damaged or was tampered with.
    Integrity = "integrity",
    /// A key cannot be used: a recipient that cannot seal, a container no
    /// key of the tenant opens.
    Key = "key",
    /// A limit of the engine refused the data.
    Limit = "limit",
    /// What the job works on no longer exists.
    NotFound = "not_found",
    /// The upload broke off (the client went away, the server stopped).
    Interrupted = "interrupted",
    /// The upload sent nothing for the idle timeout.
    IdleTimeout = "idle_timeout",
    /// The upload is larger than the server accepts.
    UploadTooLarge = "upload_too_large",
    /// The upload does not fit the tenant's storage quota.
    QuotaBytes = "quota_bytes",
    /// Storage failed, and kept failing for every attempt the job had.
    Unavailable = "unavailable",
    /// The job's attempts ended without an outcome (its workers died).
    AttemptsExhausted = "attempts_exhausted",
    /// A bug or a broken invariant (logged on the server).
    Internal = "internal",
    /// A user cancelled it.
    Cancelled = "cancelled",
    /// Failed, for a reason this version does not know (an older row).
    Failed = "job_failed",
}

impl JobError {
    /// The failure an engine error means for a job, or `None` for a
    /// cancellation (the job stopped: its row says why).
    pub fn of_engine(e: &sluice_engine::Error) -> Option<JobError> {
        Some(match e.class() {
            ErrorClass::Cancelled => return None,
            ErrorClass::Io => JobError::Unavailable(error_chain(e)),
            ErrorClass::Integrity => JobError::Integrity(e.to_string()),
            ErrorClass::Key => JobError::Key(e.to_string()),
            ErrorClass::Limit => JobError::Limit(e.to_string()),
            ErrorClass::Usage => JobError::BadRequest(e.to_string()),
            _ => JobError::Internal(e.to_string()),
        })
    }

    /// Whether another attempt may succeed where this one failed.
    pub fn is_transient(&self) -> bool {
        matches!(self, JobError::Unavailable(_))
    }
}

/// An error and its causes, `: `-separated.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_reads_back_as_it_was_stored() {
        let all = [
            JobError::DigestMismatch("d".into()),
            JobError::BadRequest("d".into()),
            JobError::Integrity("d".into()),
            JobError::Key("d".into()),
            JobError::Limit("d".into()),
            JobError::NotFound("d".into()),
            JobError::Interrupted("d".into()),
            JobError::IdleTimeout("d".into()),
            JobError::UploadTooLarge("d".into()),
            JobError::QuotaBytes("d".into()),
            JobError::Unavailable("d".into()),
            JobError::AttemptsExhausted("d".into()),
            JobError::Internal("d".into()),
            JobError::Cancelled("d".into()),
            JobError::Failed("d".into()),
        ];
        let mut codes: Vec<&str> = all.iter().map(JobError::code).collect();
        for e in &all {
            assert_eq!(&JobError::from_stored(e.code(), e.detail()), e);
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len(), "codes are distinct");
        assert_eq!(JobError::from_stored("io", "x"), JobError::Unavailable("x".into()));
        assert_eq!(JobError::from_stored("what", "x"), JobError::Failed("x".into()));
    }
}
