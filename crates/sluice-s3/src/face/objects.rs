//! Objects: put, get (ranges, parts, conditions, checksums), head,
//! attributes, delete, delete of many.

use std::sync::Arc;

use futures_util::TryStreamExt;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use sluice_service::buckets::object_key;
use sluice_service::objects::meta::ObjectMeta;
use sluice_service::objects::{ByteRange, LateChecksum, Put};

use crate::checksums::{self, Outcome};
use crate::conditions::Conditional;
use crate::errors::to_s3;
use crate::tags;

use super::headers::{
    checksum_wanted, content_md5, etag, etag_value, modified, parse_http_date, part_checksums, stored_checksums,
    StoredHeaders, WithChecksums,
};
use super::{check_write, current, Face};

pub(super) async fn put_object(face: &Face, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
    let (who, bucket) = face.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
    let wanted = {
        let i = &req.input;
        checksum_wanted(
            &req,
            i.checksum_algorithm.as_ref(),
            [
                i.checksum_crc32.as_ref(),
                i.checksum_crc32c.as_ref(),
                i.checksum_crc64nvme.as_ref(),
                i.checksum_sha1.as_ref(),
                i.checksum_sha256.as_ref(),
            ],
        )
    };
    let mut input = req.input;
    let key = object_key(&bucket.name, &input.key);
    let body: sluice_service::Body = match input.body.take() {
        Some(blob) => Box::pin(blob.map_err(std::io::Error::other)),
        None => Box::pin(futures_util::stream::empty()),
    };
    let (body, checking) = match wanted {
        Some((algo, expected)) => {
            let (body, outcome) = checksums::checked(face.service.clone(), who.clone(), body, algo, expected);
            (body, Some((algo, outcome)))
        }
        None => (body, None),
    };
    let expected_md5 = match &input.content_md5 {
        Some(b64) => Some(content_md5(b64)?),
        None => None,
    };
    let mut meta = input.stored_meta();
    if let Some(h) = &input.tagging {
        meta.tags = tags::from_header(h)?;
    }
    check_write(face, &who, &key, &input).await?;
    // The checksum, known once the body has ended, is stored with the
    // object in the same commit.
    let late_checksum = checking.as_ref().map(|(algo, outcome)| {
        let (algo, outcome) = (*algo, Arc::clone(outcome));
        LateChecksum(Arc::new(move || match outcome.lock().ok().map(|o| o.clone()) {
            Some(Outcome::Ok(value)) => Some((algo.name().to_string(), value)),
            _ => None,
        }))
    });
    let put = Put {
        key: key.clone(),
        pipeline: bucket.pipeline.clone(),
        wait: true,
        expected_blake3: None,
        declared_len: input.content_length.and_then(|n| u64::try_from(n).ok()),
        meta,
        md5: true,
        expected_md5,
        late_checksum,
    };
    let stored = face.service.put_object(&who, put, body).await;
    let checked = checking.and_then(|(algo, o)| o.lock().ok().map(|o| (algo, o.clone())));
    if matches!(checked, Some((_, Outcome::Mismatch))) {
        return Err(s3_error!(
            BadDigest,
            "the body's checksum differs from the one sent with it"
        ));
    }
    stored.map_err(to_s3)?;
    let o = face.service.object(&who, &key).await.map_err(to_s3)?;
    let sums = stored_checksums(
        &ObjectMeta::from_row(o.meta.as_deref()),
        Some(&ChecksumMode::from_static(ChecksumMode::ENABLED)),
    );
    Ok(S3Response::new(
        PutObjectOutput {
            e_tag: Some(etag(&o)),
            size: Some(o.plaintext_len),
            ..Default::default()
        }
        .with_checksums(sums),
    ))
}

pub(super) async fn get_object(face: &Face, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
    let (who, bucket) = face.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
    let key = object_key(&bucket.name, &req.input.key);
    let i = &req.input;
    let conditions = i.conditions();
    let mut now = None;
    if conditions.any() || i.part_number.is_some() {
        now = current(&face.service, &who, &key).await?;
        conditions.check(now.as_ref(), true)?;
    }
    let mut parts_count = None;
    let range = match (i.part_number, &i.range) {
        (Some(_), Some(_)) => {
            return Err(s3_error!(
                InvalidRequest,
                "a Range and a partNumber cannot both be given"
            ))
        }
        (Some(n), None) => {
            let o = now.as_ref().ok_or_else(|| s3_error!(NoSuchKey))?;
            let meta = ObjectMeta::from_row(o.meta.as_deref());
            let part = meta
                .part_range(i64::from(n), o.plaintext_len.max(0) as u64)
                .ok_or_else(|| s3_error!(InvalidPart, "the object has no part {n}"))?;
            parts_count = (!meta.parts.is_empty()).then_some(meta.parts.len() as i32);
            if part.is_empty() {
                None
            } else {
                Some(ByteRange::Span {
                    first: part.start,
                    last: part.end - 1,
                })
            }
        }
        (None, r) => r.map(|r| match r {
            Range::Int { first, last: None } => ByteRange::From(first),
            Range::Int {
                first,
                last: Some(last),
            } => ByteRange::Span { first, last },
            Range::Suffix { length } => ByteRange::Suffix(length),
        }),
    };
    let content = face.service.content(&who, &key, range).await.map_err(to_s3)?;
    let total = content.object.plaintext_len;
    let (length, content_range) = match &content.range {
        Some(r) => (
            (r.end - r.start) as i64,
            Some(format!("bytes {}-{}/{total}", r.start, r.end.saturating_sub(1))),
        ),
        None => (total, None),
    };
    let body = sync_wrapper::SyncStream::new(content.body);
    let meta = ObjectMeta::from_row(content.object.meta.as_deref());
    let o = &content.object;
    let r = &req.input;
    // A range has no checksum of its own; a part has.
    let sums = match r.part_number {
        Some(n) => part_checksums(&meta, i64::from(n), r.checksum_mode.as_ref()),
        None if content.range.is_none() => stored_checksums(&meta, r.checksum_mode.as_ref()),
        None => Checksum::default(),
    };
    Ok(S3Response::new(
        GetObjectOutput {
            accept_ranges: Some("bytes".into()),
            body: Some(StreamingBlob::wrap(body)),
            content_length: Some(length),
            content_range,
            e_tag: Some(etag(o)),
            last_modified: Some(modified(o)),
            content_type: r.response_content_type.clone().or(meta.content_type),
            content_encoding: r.response_content_encoding.clone().or(meta.content_encoding),
            content_disposition: r.response_content_disposition.clone().or(meta.content_disposition),
            content_language: r.response_content_language.clone().or(meta.content_language),
            cache_control: r.response_cache_control.clone().or(meta.cache_control),
            expires: r
                .response_expires
                .clone()
                .or_else(|| meta.expires.as_deref().and_then(parse_http_date)),
            tag_count: (!meta.tags.is_empty()).then_some(meta.tags.len() as i32),
            parts_count,
            metadata: (!meta.user.is_empty()).then(|| meta.user.into_iter().collect()),
            ..Default::default()
        }
        .with_checksums(sums),
    ))
}

pub(super) async fn head_object(
    face: &Face,
    req: S3Request<HeadObjectInput>,
) -> S3Result<S3Response<HeadObjectOutput>> {
    let (who, bucket) = face.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
    let key = object_key(&bucket.name, &req.input.key);
    let o = face.service.object(&who, &key).await.map_err(to_s3)?;
    let i = &req.input;
    i.conditions().check(Some(&o), true)?;
    let meta = ObjectMeta::from_row(o.meta.as_deref());
    let (length, parts_count) = match i.part_number {
        Some(n) => {
            let part = meta
                .part_range(i64::from(n), o.plaintext_len.max(0) as u64)
                .ok_or_else(|| s3_error!(InvalidPart, "the object has no part {n}"))?;
            (
                (part.end - part.start) as i64,
                (!meta.parts.is_empty()).then_some(meta.parts.len() as i32),
            )
        }
        None => (o.plaintext_len, None),
    };
    let sums = match i.part_number {
        Some(n) => part_checksums(&meta, i64::from(n), i.checksum_mode.as_ref()),
        None => stored_checksums(&meta, i.checksum_mode.as_ref()),
    };
    let tags = meta.tags.len();
    let mut resp = S3Response::new(
        HeadObjectOutput {
            accept_ranges: Some("bytes".into()),
            content_length: Some(length),
            parts_count,
            e_tag: Some(etag(&o)),
            last_modified: Some(modified(&o)),
            content_type: meta.content_type,
            content_encoding: meta.content_encoding,
            content_disposition: meta.content_disposition,
            content_language: meta.content_language,
            cache_control: meta.cache_control,
            expires: meta.expires.as_deref().and_then(parse_http_date),
            metadata: (!meta.user.is_empty()).then(|| meta.user.into_iter().collect()),
            ..Default::default()
        }
        .with_checksums(sums),
    );
    // HeadObjectOutput has no field for it; S3 sends it.
    if tags > 0 {
        resp.headers.insert("x-amz-tagging-count", tags.into());
    }
    Ok(resp)
}

pub(super) async fn get_object_attributes(
    face: &Face,
    req: S3Request<GetObjectAttributesInput>,
) -> S3Result<S3Response<GetObjectAttributesOutput>> {
    let (who, bucket) = face.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
    let input = req.input;
    let key = object_key(&bucket.name, &input.key);
    let o = face.service.object(&who, &key).await.map_err(to_s3)?;
    let meta = ObjectMeta::from_row(o.meta.as_deref());
    // One header may list several, comma-separated.
    let wants = |a: &str| {
        input
            .object_attributes
            .iter()
            .flat_map(|x| x.as_str().split(','))
            .any(|x| x.trim() == a)
    };
    let mut out = GetObjectAttributesOutput {
        last_modified: Some(modified(&o)),
        ..Default::default()
    };
    if wants(ObjectAttributes::ETAG) {
        // Unquoted here, as S3 gives it.
        out.e_tag = Some(ETag::Strong(etag_value(&o).to_string()));
    }
    if wants(ObjectAttributes::OBJECT_SIZE) {
        out.object_size = Some(o.plaintext_len);
    }
    if wants(ObjectAttributes::STORAGE_CLASS) {
        out.storage_class = Some(StorageClass::from_static(StorageClass::STANDARD));
    }
    if wants(ObjectAttributes::CHECKSUM) && !meta.checksums.is_empty() {
        out.checksum = Some(stored_checksums(
            &meta,
            Some(&ChecksumMode::from_static(ChecksumMode::ENABLED)),
        ));
    }
    if wants(ObjectAttributes::OBJECT_PARTS) && !meta.parts.is_empty() {
        let after = usize::try_from(input.part_number_marker.unwrap_or(0).max(0)).unwrap_or(0);
        let max = usize::try_from(input.max_parts.unwrap_or(1000).clamp(0, 1000)).unwrap_or(1000);
        let page: Vec<ObjectPart> = meta
            .parts
            .iter()
            .enumerate()
            .skip(after)
            .take(max)
            .map(|(i, size)| {
                let enabled = ChecksumMode::from_static(ChecksumMode::ENABLED);
                let sums = part_checksums(&meta, i as i64 + 1, Some(&enabled));
                ObjectPart {
                    part_number: Some(i as i32 + 1),
                    size: Some(*size),
                    ..Default::default()
                }
                .with_checksums(sums)
            })
            .collect();
        let last = page.last().and_then(|p| p.part_number).unwrap_or(0);
        let truncated = (last as usize) < meta.parts.len();
        out.object_parts = Some(GetObjectAttributesParts {
            is_truncated: Some(truncated),
            max_parts: Some(max as i32),
            next_part_number_marker: truncated.then_some(last),
            part_number_marker: input.part_number_marker,
            parts: Some(page),
            total_parts_count: Some(meta.parts.len() as i32),
        });
    }
    Ok(S3Response::new(out))
}

pub(super) async fn delete_object(
    face: &Face,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    let (who, bucket) = face.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
    let key = object_key(&bucket.name, &req.input.key);
    // S3 answers a delete of a missing key as a success.
    match face.service.delete_object(&who, &key).await {
        Ok(()) | Err(sluice_service::Error::NotFound(_)) => {}
        Err(e) => return Err(to_s3(e)),
    }
    Ok(S3Response::new(DeleteObjectOutput::default()))
}

pub(super) async fn delete_objects(
    face: &Face,
    req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let (who, bucket) = face.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
    let Delete { objects: keys, quiet } = req.input.delete;
    if keys.len() > 1000 {
        return Err(s3_error!(MalformedXML, "at most 1000 keys may be deleted at once"));
    }
    let quiet = quiet.unwrap_or(false);
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for o in keys {
        let key = object_key(&bucket.name, &o.key);
        match face.service.delete_object(&who, &key).await {
            Ok(()) | Err(sluice_service::Error::NotFound(_)) => {
                if !quiet {
                    deleted.push(DeletedObject {
                        key: Some(o.key),
                        ..Default::default()
                    });
                }
            }
            Err(e) => {
                let e = to_s3(e);
                errors.push(s3s::dto::Error {
                    code: Some(e.code().as_str().to_string()),
                    key: Some(o.key),
                    message: e.message().map(str::to_string),
                    version_id: None,
                });
            }
        }
    }
    Ok(S3Response::new(DeleteObjectsOutput {
        deleted: Some(deleted),
        errors: (!errors.is_empty()).then_some(errors),
        request_charged: None,
    }))
}
