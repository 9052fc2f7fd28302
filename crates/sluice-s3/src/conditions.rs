//! Conditional requests (RFC 9110 as S3 applies them): `If-Match`,
//! `If-None-Match`, `If-Modified-Since`, `If-Unmodified-Since` against an
//! object's ETag and modification time. A read that fails `If-None-Match`
//! or `If-Modified-Since` is `304 Not Modified`; every other failure is
//! `412 Precondition Failed`.

use s3s::dto::{
    CompleteMultipartUploadInput, ETagCondition, GetObjectInput, HeadObjectInput, PutObjectInput, Timestamp,
};
use s3s::{s3_error, S3Result};
use sluice_service::ObjectInfo;

/// The conditions a request carries.
#[derive(Default)]
pub(crate) struct Conditions<'a> {
    pub if_match: Option<&'a ETagCondition>,
    pub if_none_match: Option<&'a ETagCondition>,
    pub if_modified_since: Option<&'a Timestamp>,
    pub if_unmodified_since: Option<&'a Timestamp>,
}

/// A request that carries conditions: a read (GET, HEAD) all four, a
/// write (PUT, multipart completion) `If-Match` and `If-None-Match`.
pub(crate) trait Conditional {
    /// Its conditions.
    fn conditions(&self) -> Conditions<'_>;
}

macro_rules! conditional {
    (reads: $($read:ty),*; writes: $($write:ty),*) => {
        $(impl Conditional for $read {
            fn conditions(&self) -> Conditions<'_> {
                Conditions {
                    if_match: self.if_match.as_ref(),
                    if_none_match: self.if_none_match.as_ref(),
                    if_modified_since: self.if_modified_since.as_ref(),
                    if_unmodified_since: self.if_unmodified_since.as_ref(),
                }
            }
        })*
        $(impl Conditional for $write {
            fn conditions(&self) -> Conditions<'_> {
                Conditions {
                    if_match: self.if_match.as_ref(),
                    if_none_match: self.if_none_match.as_ref(),
                    ..Conditions::default()
                }
            }
        })*
    };
}

conditional!(reads: GetObjectInput, HeadObjectInput; writes: PutObjectInput, CompleteMultipartUploadInput);

fn matches(condition: &ETagCondition, o: Option<&ObjectInfo>) -> bool {
    match (condition, o) {
        (_, None) => false,
        (ETagCondition::Any, Some(_)) => true,
        (ETagCondition::ETag(e), Some(o)) => e.value() == crate::face::etag_value(o),
    }
}

/// The object's modification time at the second (HTTP dates have no finer).
fn modified(o: &ObjectInfo) -> Timestamp {
    crate::face::millis(o.created_at.max(0) / 1000 * 1000)
}

/// 304, with the object's ETag (as S3 answers it).
fn not_modified(o: Option<&ObjectInfo>) -> s3s::S3Error {
    let mut e = s3_error!(NotModified, "Not Modified");
    if let Some(v) = o.and_then(|o| format!("\"{}\"", crate::face::etag_value(o)).parse().ok()) {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("etag", v);
        e.set_headers(headers);
    }
    e
}

impl Conditions<'_> {
    /// Whether the request may go on, `o` being the object now (`None`:
    /// there is none); `read` for GET and HEAD.
    pub(crate) fn check(&self, o: Option<&ObjectInfo>, read: bool) -> S3Result<()> {
        let failed = || s3_error!(PreconditionFailed, "a precondition of the request does not hold");
        if !read && o.is_none() && self.if_match.is_some() {
            return Err(s3_error!(NoSuchKey, "If-Match names an object that does not exist"));
        }
        match self.if_match {
            Some(c) if !matches(c, o) => return Err(failed()),
            Some(_) => {}
            None => {
                if let (Some(since), Some(o)) = (self.if_unmodified_since, o) {
                    if modified(o) > *since {
                        return Err(failed());
                    }
                }
            }
        }
        match self.if_none_match {
            Some(c) if matches(c, o) => return Err(if read { not_modified(o) } else { failed() }),
            Some(_) => {}
            None => {
                if let (true, Some(since), Some(o)) = (read, self.if_modified_since, o) {
                    if modified(o) <= *since {
                        return Err(not_modified(Some(o)));
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether there is any condition.
    pub(crate) fn any(&self) -> bool {
        self.if_match.is_some()
            || self.if_none_match.is_some()
            || self.if_modified_since.is_some()
            || self.if_unmodified_since.is_some()
    }
}
