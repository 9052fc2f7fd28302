//! CopyObject: the copy is stored through the destination bucket's
//! pipeline, with S3's metadata directives and conditions on the source.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use sluice_service::buckets::object_key;
use sluice_service::objects::meta::ObjectMeta;
use sluice_service::objects::Put;

use crate::conditions::Conditions;
use crate::errors::{bucket_error, to_s3};

use super::headers::{etag, meta_of, modified};
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

pub(super) async fn copy_object(
    face: &Face,
    req: S3Request<CopyObjectInput>,
) -> S3Result<S3Response<CopyObjectOutput>> {
    let (who, bucket) = face.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
    let input = req.input;
    let CopySource::Bucket {
        bucket: src_bucket,
        key: src_key,
        ..
    } = &input.copy_source
    else {
        return Err(s3_error!(NotImplemented, "copies from access points are not served"));
    };
    let source_bucket = face.service.bucket(&who, src_bucket).await.map_err(bucket_error)?;
    let source_key = object_key(&source_bucket.name, src_key);
    let dest_key = object_key(&bucket.name, &input.key);
    let source = face.service.object(&who, &source_key).await.map_err(to_s3)?;
    Conditions {
        if_match: input.copy_source_if_match.as_ref(),
        if_none_match: input.copy_source_if_none_match.as_ref(),
        if_modified_since: input.copy_source_if_modified_since.as_ref(),
        if_unmodified_since: input.copy_source_if_unmodified_since.as_ref(),
    }
    .check(Some(&source), false)?;
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
        meta_of(
            input.content_type.as_ref(),
            input.content_encoding.as_ref(),
            input.content_disposition.as_ref(),
            input.content_language.as_ref(),
            input.cache_control.as_ref(),
            input.expires.as_ref(),
            input.metadata.as_ref(),
        )
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
