//! CopyObject: the copy is stored through the destination bucket's
//! pipeline, with S3's metadata directives and conditions on the source.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use sluice_service::buckets::object_key;
use sluice_service::objects::meta::ObjectMeta;
use sluice_service::objects::Put;
use sluice_service::{Caller, ObjectInfo};

use crate::conditions::Conditions;
use crate::errors::{bucket_error, to_s3};

use super::headers::{etag, modified, StoredHeaders};
use super::Face;

/// A copy source range: exactly `bytes=FIRST-LAST`, FIRST at most LAST.
pub(super) fn copy_range(r: &str) -> S3Result<(u64, u64)> {
    let bad = || s3_error!(InvalidArgument, "the copy range must be bytes=FIRST-LAST");
    let (first, last) = r
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .ok_or_else(bad)?;
    let first: u64 = first.parse().map_err(|_| bad())?;
    let last: u64 = last.parse().map_err(|_| bad())?;
    if first > last {
        return Err(bad());
    }
    Ok((first, last))
}

/// A request that copies from another object: a copy, or a part copy.
pub(super) trait CopyRequest {
    /// What it copies from.
    fn source(&self) -> &CopySource;
    /// Its `x-amz-copy-source-if-*` conditions.
    fn source_conditions(&self) -> Conditions<'_>;
}

macro_rules! copy_request {
    ($($input:ty),*) => {$(
        impl CopyRequest for $input {
            fn source(&self) -> &CopySource {
                &self.copy_source
            }
            fn source_conditions(&self) -> Conditions<'_> {
                Conditions {
                    if_match: self.copy_source_if_match.as_ref(),
                    if_none_match: self.copy_source_if_none_match.as_ref(),
                    if_modified_since: self.copy_source_if_modified_since.as_ref(),
                    if_unmodified_since: self.copy_source_if_unmodified_since.as_ref(),
                }
            }
        }
    )*};
}

copy_request!(CopyObjectInput, UploadPartCopyInput);

/// The object `input` copies from, in a bucket `who` must own, once it
/// meets the copy's conditions: its key and row.
pub(super) async fn copy_source(face: &Face, who: &Caller, input: &impl CopyRequest) -> S3Result<(String, ObjectInfo)> {
    let CopySource::Bucket { bucket, key, .. } = input.source() else {
        return Err(s3_error!(NotImplemented, "copies from access points are not served"));
    };
    let source_bucket = face.service.bucket(who, bucket).await.map_err(bucket_error)?;
    let source_key = object_key(&source_bucket.name, key);
    let source = face.service.object(who, &source_key).await.map_err(to_s3)?;
    input.source_conditions().check(Some(&source), false)?;
    Ok((source_key, source))
}

pub(super) async fn copy_object(
    face: &Face,
    req: S3Request<CopyObjectInput>,
) -> S3Result<S3Response<CopyObjectOutput>> {
    let (who, bucket) = face.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
    let input = req.input;
    let (source_key, source) = copy_source(face, &who, &input).await?;
    let dest_key = object_key(&bucket.name, &input.key);
    let replace = input
        .metadata_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
    if source_key == dest_key && !replace {
        return Err(s3_error!(
            InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the \
             object's metadata, storage class, website redirect location or encryption attributes."
        ));
    }
    let meta = if replace {
        input.stored_meta()
    } else {
        ObjectMeta::from_row(source.meta.as_deref())
    };
    // Restored from the source and stored anew through the destination
    // bucket's pipeline: the two copies share nothing.
    let content = face.service.content(&who, &source_key, None).await.map_err(to_s3)?;
    let put = Put {
        key: dest_key.clone(),
        pipeline: bucket.pipeline.clone(),
        wait: true,
        expected_blake3: Some(source.digest.clone()),
        declared_len: Some(source.plaintext_len.max(0) as u64),
        meta,
        md5: true,
        expected_md5: None,
        late_checksum: None,
    };
    face.service.put_object(&who, put, content.body).await.map_err(to_s3)?;
    let o = face.service.object(&who, &dest_key).await.map_err(to_s3)?;
    Ok(S3Response::new(CopyObjectOutput {
        copy_object_result: Some(CopyObjectResult {
            e_tag: Some(etag(&o)),
            last_modified: Some(modified(&o)),
            ..Default::default()
        }),
        ..Default::default()
    }))
}
