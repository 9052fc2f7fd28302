//! Multipart uploads: create, upload a part (or copy one), complete,
//! abort, list parts and uploads; and the checks of a part's checksums.

use futures_util::TryStreamExt;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use sluice_service::buckets::object_key;
use sluice_service::multipart::{upload_meta, ListedPart, PartsProblem};
use sluice_service::objects::meta::ObjectMeta;
use sluice_service::objects::ByteRange;
use sluice_service::{Caller, JobError, Multipart, MultipartPart, Service};

use crate::checksums::{self, Algo, Expected, Kind, Outcome};
use crate::errors::to_s3;
use crate::tags;

use super::copy::{copy_range, copy_source};
use super::headers::{
    checksum_wanted, content_md5, etag, listed_checksum, millis, stored_checksums, StoredHeaders, WithChecksums,
};
use super::{check_write, Face};

/// A service error of a multipart operation: what was not found is the upload.
fn upload_error(e: sluice_service::Error) -> s3s::S3Error {
    match e {
        sluice_service::Error::NotFound(what) => s3_error!(NoSuchUpload, "{what} not found"),
        e => to_s3(e),
    }
}

/// What a part's checksum will be once its body has ended.
type PartChecksum = Box<dyn FnOnce() -> Option<String> + Send>;

/// A part's checking, for its answer: a failed upload whose body's
/// checksum differed is `BadDigest`.
type Checking = Option<std::sync::Arc<std::sync::Mutex<Outcome>>>;

/// `e`, the error of storing a part whose body was checked by `checking`.
fn part_error(e: sluice_service::Error, checking: &Checking) -> s3s::S3Error {
    let mismatch = checking
        .as_ref()
        .and_then(|o| o.lock().ok().map(|o| *o == Outcome::Mismatch))
        .unwrap_or(false);
    if mismatch {
        s3_error!(BadDigest, "the part's checksum differs from the one sent with it")
    } else {
        upload_error(e)
    }
}

/// The body of a part of `upload`, checked against the checksum its
/// request carries (or hashed with the upload's algorithm, so that every
/// part of an upload with one has its checksum); and what to store as the
/// part's checksum once it has ended.
fn checked_part(
    service: &Service,
    who: &Caller,
    upload: &Multipart,
    given: Option<(Algo, Expected)>,
    body: sluice_service::Body,
) -> S3Result<(sluice_service::Body, PartChecksum, Checking)> {
    let wanted_algo = upload_meta(upload).checksum_algorithm.as_deref().and_then(Algo::parse);
    if let (Some(want), Some((got, _))) = (wanted_algo, &given) {
        if want != *got {
            return Err(s3_error!(
                InvalidRequest,
                "the upload's parts are checked with {}, not {}",
                want.name(),
                got.name()
            ));
        }
    }
    let Some((algo, expected)) = given.or(wanted_algo.map(|a| (a, Expected::None))) else {
        return Ok((body, Box::new(|| None), None));
    };
    let (body, outcome) = checksums::checked(service.clone(), who.clone(), body, algo, expected);
    let checking = Some(std::sync::Arc::clone(&outcome));
    let stored = move || match outcome.lock().ok().map(|o| o.clone()) {
        Some(Outcome::Ok(v)) => Some(format!("{}:{v}", algo.name())),
        _ => None,
    };
    Ok((body, Box::new(stored), checking))
}

/// Adds to a completing upload's metadata the checksum made of its
/// `parts`' (when the upload has an algorithm), after checking the one
/// the client gave for the whole (`BadDigest`) and those it gave for
/// each part (`InvalidPart`).
fn finish_checksums(
    parts: &[MultipartPart],
    meta: &mut ObjectMeta,
    given_whole: Option<&str>,
    given_parts: &[(i64, Option<String>)],
) -> sluice_service::Result<()> {
    let bad = |detail: String| sluice_service::Error::Parts {
        kind: PartsProblem::InvalidPart,
        detail,
    };
    let Some(algo) = meta.checksum_algorithm.take().as_deref().and_then(Algo::parse) else {
        return Ok(());
    };
    let kind = meta
        .checksum_type
        .as_deref()
        .and_then(Kind::parse)
        .unwrap_or_else(|| Kind::default_for(algo));
    let mut values = Vec::with_capacity(parts.len());
    for p in parts {
        let value = p
            .checksum
            .as_deref()
            .and_then(|c| c.split_once(':'))
            .filter(|(a, _)| Algo::parse(a) == Some(algo))
            .map(|(_, v)| v.to_string());
        let Some(value) = value else {
            // A part stored before its upload had an algorithm cannot be
            // covered: the object then has no checksum.
            return Ok(());
        };
        if let Some((_, Some(given))) = given_parts.iter().find(|(n, _)| *n == p.number) {
            if given.trim() != value {
                return Err(bad(format!("part {}'s {} is not {given}", p.number, algo.name())));
            }
        }
        values.push((value, p.size.max(0) as u64));
    }
    let listed: Vec<(&str, u64)> = values.iter().map(|(v, n)| (v.as_str(), *n)).collect();
    let whole = checksums::of_parts(algo, kind, &listed)
        .ok_or_else(|| sluice_service::Error::internal("a part's checksum is malformed"))?;
    if let Some(given) = given_whole {
        if !checksums::same(given, &whole) {
            return Err(sluice_service::Error::Job {
                job: None,
                error: JobError::DigestMismatch(format!("the upload's {} is {whole}, not {given}", algo.name())),
            });
        }
    }
    meta.checksums.insert(algo.name().to_string(), whole);
    meta.checksum_type = Some(kind.name().to_string());
    meta.part_checksums = values.into_iter().map(|(v, _)| v).collect();
    Ok(())
}

pub(super) async fn create_multipart_upload(
    face: &Face,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let (who, bucket) = face.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
    let input = req.input;
    let mut meta = input.stored_meta();
    if let Some(h) = &input.tagging {
        meta.tags = tags::from_header(h)?;
    }
    let algo = match &input.checksum_algorithm {
        Some(a) => Some(
            Algo::parse(a.as_str())
                .ok_or_else(|| s3_error!(InvalidRequest, "unknown checksum algorithm {:?}", a.as_str()))?,
        ),
        None => None,
    };
    let kind = match &input.checksum_type {
        Some(t) => Some(
            Kind::parse(t.as_str())
                .ok_or_else(|| s3_error!(InvalidRequest, "unknown checksum type {:?}", t.as_str()))?,
        ),
        None => None,
    };
    match (algo, kind) {
        (None, Some(_)) => return Err(s3_error!(InvalidRequest, "a checksum type needs a checksum algorithm")),
        (Some(a), Some(k)) if !k.allows(a) => {
            return Err(s3_error!(
                InvalidRequest,
                "{} cannot make a {} checksum",
                a.name(),
                k.name()
            ))
        }
        _ => {}
    }
    let kind = algo.map(|a| kind.unwrap_or_else(|| Kind::default_for(a)));
    meta.checksum_algorithm = algo.map(|a| a.name().to_string());
    meta.checksum_type = kind.map(|k| k.name().to_string());
    let key = object_key(&bucket.name, &input.key);
    let u = face
        .service
        .create_multipart(&who, &key, bucket.pipeline.as_deref(), meta)
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(bucket.name),
        key: Some(input.key),
        upload_id: Some(u.id),
        checksum_algorithm: input.checksum_algorithm,
        checksum_type: kind.map(|k| ChecksumType::from_static(k.name())),
        ..Default::default()
    }))
}

pub(super) async fn upload_part(
    face: &Face,
    mut req: S3Request<UploadPartInput>,
) -> S3Result<S3Response<UploadPartOutput>> {
    let (who, bucket) = face.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
    let key = object_key(&bucket.name, &req.input.key);
    let upload = face
        .service
        .open_multipart(&who, &key, &req.input.upload_id)
        .await
        .map_err(upload_error)?;
    let body: sluice_service::Body = match req.input.body.take() {
        Some(blob) => Box::pin(blob.map_err(std::io::Error::other)),
        None => Box::pin(futures_util::stream::empty()),
    };
    let i = &req.input;
    let given = checksum_wanted(
        &req,
        i.checksum_algorithm.as_ref(),
        [
            i.checksum_crc32.as_ref(),
            i.checksum_crc32c.as_ref(),
            i.checksum_crc64nvme.as_ref(),
            i.checksum_sha1.as_ref(),
            i.checksum_sha256.as_ref(),
        ],
    );
    let (body, checksum, checking) = checked_part(&face.service, &who, &upload, given, body)?;
    let input = req.input;
    let part = face
        .service
        .upload_multipart_part(
            &who,
            &key,
            &input.upload_id,
            i64::from(input.part_number),
            input.content_length.and_then(|n| u64::try_from(n).ok()),
            body,
            checksum,
        )
        .await
        .map_err(|e| part_error(e, &checking))?;
    if let Some(b64) = &input.content_md5 {
        if hex::encode(content_md5(b64)?) != part.etag {
            return Err(s3_error!(BadDigest, "the part's MD5 differs from its Content-MD5"));
        }
    }
    let sums = listed_checksum(part.checksum.as_deref());
    Ok(S3Response::new(
        UploadPartOutput {
            e_tag: Some(ETag::Strong(part.etag)),
            ..Default::default()
        }
        .with_checksums(sums),
    ))
}

pub(super) async fn upload_part_copy(
    face: &Face,
    req: S3Request<UploadPartCopyInput>,
) -> S3Result<S3Response<UploadPartCopyOutput>> {
    let (who, bucket) = face.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
    let input = req.input;
    let (source_key, source) = copy_source(face, &who, &input).await?;
    let range = match &input.copy_source_range {
        Some(r) => {
            let (first, last) = copy_range(r)?;
            if last >= source.plaintext_len.max(0) as u64 {
                return Err(s3_error!(InvalidRange, "the copy range is outside the source object"));
            }
            Some(ByteRange::Span { first, last })
        }
        None => None,
    };
    let key = object_key(&bucket.name, &input.key);
    // Make sure the upload is open before reading anything.
    let upload = face
        .service
        .open_multipart(&who, &key, &input.upload_id)
        .await
        .map_err(upload_error)?;
    let content = face.service.content(&who, &source_key, range).await.map_err(to_s3)?;
    let len = content
        .range
        .as_ref()
        .map_or(source.plaintext_len.max(0) as u64, |r| r.end - r.start);
    let (body, checksum, checking) = checked_part(&face.service, &who, &upload, None, content.body)?;
    let part = face
        .service
        .upload_multipart_part(
            &who,
            &key,
            &input.upload_id,
            i64::from(input.part_number),
            Some(len),
            body,
            checksum,
        )
        .await
        .map_err(|e| part_error(e, &checking))?;
    let sums = listed_checksum(part.checksum.as_deref());
    Ok(S3Response::new(UploadPartCopyOutput {
        copy_part_result: Some(
            CopyPartResult {
                e_tag: Some(ETag::Strong(part.etag)),
                last_modified: Some(millis(part.created_at)),
                ..Default::default()
            }
            .with_checksums(sums),
        ),
        ..Default::default()
    }))
}

pub(super) async fn complete_multipart_upload(
    face: &Face,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let (who, bucket) = face.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
    let input = req.input;
    let key = object_key(&bucket.name, &input.key);
    check_write(face, &who, &key, &input).await?;
    let completed = input.multipart_upload.and_then(|m| m.parts).unwrap_or_default();
    let listed: Vec<ListedPart> = completed
        .iter()
        .map(|p| ListedPart {
            number: p.part_number.map_or(0, i64::from),
            etag: p.e_tag.as_ref().map(|e| e.value().to_string()).unwrap_or_default(),
        })
        .collect();
    let whole = [
        input.checksum_crc32,
        input.checksum_crc32c,
        input.checksum_crc64nvme,
        input.checksum_sha1,
        input.checksum_sha256,
    ];
    let finish = move |parts: &[MultipartPart], meta: &mut ObjectMeta| {
        let algo = meta.checksum_algorithm.as_deref().and_then(Algo::parse);
        let given_whole = algo.and_then(|a| a.pick(whole));
        let given_parts: Vec<(i64, Option<String>)> = completed
            .into_iter()
            .map(|p| {
                let n = p.part_number.map_or(0, i64::from);
                let v = algo.and_then(|a| {
                    a.pick([
                        p.checksum_crc32,
                        p.checksum_crc32c,
                        p.checksum_crc64nvme,
                        p.checksum_sha1,
                        p.checksum_sha256,
                    ])
                });
                (n, v)
            })
            .collect();
        finish_checksums(parts, meta, given_whole.as_deref(), &given_parts)
    };
    let completing = face
        .service
        .complete_multipart(&who, &key, &input.upload_id, &listed, finish)
        .await
        .map_err(upload_error)?;
    // The parts were good: from here S3 answers 200 at once and keeps
    // the connection alive (whitespace) until the object is stored,
    // then sends its description, or an error, in the body.
    let service = face.service.clone();
    let stored = async move {
        let o = service.completed(&who, completing).await.map_err(upload_error)?;
        let sums = stored_checksums(
            &ObjectMeta::from_row(o.meta.as_deref()),
            Some(&ChecksumMode::from_static(ChecksumMode::ENABLED)),
        );
        Ok(CompleteMultipartUploadOutput {
            bucket: Some(bucket.name.clone()),
            key: Some(input.key.clone()),
            e_tag: Some(etag(&o)),
            location: Some(format!("/{}/{}", bucket.name, input.key)),
            ..Default::default()
        }
        .with_checksums(sums))
    };
    Ok(S3Response::new(CompleteMultipartUploadOutput {
        future: Some(Box::pin(stored)),
        ..Default::default()
    }))
}

pub(super) async fn abort_multipart_upload(
    face: &Face,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let (who, bucket) = face.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
    let key = object_key(&bucket.name, &req.input.key);
    face.service
        .abort_multipart(&who, &key, &req.input.upload_id)
        .await
        .map_err(upload_error)?;
    Ok(S3Response::new(AbortMultipartUploadOutput::default()))
}

pub(super) async fn list_parts(face: &Face, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
    let (who, bucket) = face.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
    let input = req.input;
    let key = object_key(&bucket.name, &input.key);
    let parts = face
        .service
        .multipart_parts(&who, &key, &input.upload_id)
        .await
        .map_err(upload_error)?;
    let after = i64::from(input.part_number_marker.unwrap_or(0));
    let max = usize::try_from(input.max_parts.unwrap_or(1000).clamp(0, 1000)).unwrap_or(1000);
    let rest: Vec<_> = parts.into_iter().filter(|p| p.number > after).collect();
    let truncated = rest.len() > max;
    let page: Vec<_> = rest.into_iter().take(max).collect();
    let next = page.last().map(|p| p.number as i32).filter(|_| truncated);
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(bucket.name),
        key: Some(input.key),
        upload_id: Some(input.upload_id),
        max_parts: Some(max as i32),
        part_number_marker: input.part_number_marker,
        next_part_number_marker: next,
        is_truncated: Some(truncated),
        parts: Some(
            page.into_iter()
                .map(|p| {
                    let sums = listed_checksum(p.checksum.as_deref());
                    Part {
                        e_tag: Some(ETag::Strong(p.etag)),
                        last_modified: Some(millis(p.created_at)),
                        part_number: Some(p.number as i32),
                        size: Some(p.size),
                        ..Default::default()
                    }
                    .with_checksums(sums)
                })
                .collect(),
        ),
        storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
        ..Default::default()
    }))
}

pub(super) async fn list_multipart_uploads(
    face: &Face,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let (who, bucket) = face.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
    let input = req.input;
    let base = format!("{}/", bucket.name);
    let prefix = format!("{base}{}", input.prefix.as_deref().unwrap_or(""));
    let max = u32::try_from(input.max_uploads.unwrap_or(1000).clamp(0, 1000)).unwrap_or(1000);
    let marker_key = input.key_marker.as_ref().map(|k| format!("{base}{k}"));
    // After a key marker alone: after every upload of that key.
    let after = marker_key
        .as_deref()
        .map(|k| (k, input.upload_id_marker.as_deref().unwrap_or("\u{10FFFF}")));
    let mut uploads = face
        .service
        .multipart_uploads(&who, &prefix, after, max.saturating_add(1))
        .await
        .map_err(to_s3)?;
    let truncated = uploads.len() > max as usize;
    uploads.truncate(max as usize);
    let last = uploads.last().filter(|_| truncated).cloned();
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(bucket.name),
        prefix: input.prefix,
        key_marker: input.key_marker,
        upload_id_marker: input.upload_id_marker,
        max_uploads: Some(max as i32),
        is_truncated: Some(truncated),
        next_key_marker: last.as_ref().map(|u| u.object_key[base.len()..].to_string()),
        next_upload_id_marker: last.map(|u| u.id),
        uploads: Some(
            uploads
                .into_iter()
                .map(|u| MultipartUpload {
                    initiated: Some(millis(u.created_at)),
                    key: Some(u.object_key[base.len()..].to_string()),
                    upload_id: Some(u.id),
                    storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    }))
}
