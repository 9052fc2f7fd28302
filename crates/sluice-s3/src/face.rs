//! The S3 operations, each a thin mapping onto the service core.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::TryStreamExt;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};
use sluice_service::buckets::object_key;
use sluice_service::multipart::{upload_meta, ListedPart, PartsProblem};
use sluice_service::objects::meta::ObjectMeta;
use sluice_service::objects::{ByteRange, LateChecksum, Put};
use sluice_service::{Caller, JobError, Multipart, MultipartPart, ObjectInfo, Service};

use crate::auth::caller;
use crate::checksums::{self, Algo, Expected, Kind, Outcome};
use crate::conditions::Conditions;
use crate::errors::{bucket_error, to_s3};
use crate::listing::{self, Listing, Query};
use crate::tags;

/// The S3 face over one service.
pub(crate) struct Face {
    service: Service,
}

impl Face {
    pub(crate) fn new(service: Service) -> Self {
        Face { service }
    }

    /// The caller, and bucket `name` (theirs, or an S3 error).
    async fn in_bucket(
        &self,
        credentials: Option<&s3s::auth::Credentials>,
        name: &str,
    ) -> S3Result<(Caller, sluice_service::Bucket)> {
        let who = caller(&self.service, credentials).await?;
        let bucket = self.service.bucket(&who, name).await.map_err(bucket_error)?;
        Ok((who, bucket))
    }
}

pub(crate) fn millis(ms: i64) -> Timestamp {
    Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
}

fn modified(o: &ObjectInfo) -> Timestamp {
    millis(o.created_at)
}

/// User metadata as stored: names in lower case.
fn user_meta(given: Option<Metadata>) -> std::collections::BTreeMap<String, String> {
    given
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

/// A service error of a multipart operation: what was not found is the upload.
fn upload_error(e: sluice_service::Error) -> s3s::S3Error {
    match e {
        sluice_service::Error::NotFound(what) => s3_error!(NoSuchUpload, "{what} not found"),
        e => to_s3(e),
    }
}

/// The object's ETag: the MD5 of its plaintext when it was computed (any
/// object stored through S3), else its BLAKE3 (objects stored natively).
fn etag(o: &ObjectInfo) -> ETag {
    ETag::Strong(etag_value(o).to_string())
}

/// The ETag's value, unquoted.
pub(crate) fn etag_value(o: &ObjectInfo) -> &str {
    o.etag.as_deref().unwrap_or(&o.digest)
}

/// An object's metadata from a request's headers.
fn meta_of(
    content_type: Option<&String>,
    content_encoding: Option<&String>,
    content_disposition: Option<&String>,
    content_language: Option<&String>,
    cache_control: Option<&String>,
    expires: Option<&Timestamp>,
    metadata: Option<&Metadata>,
) -> ObjectMeta {
    ObjectMeta {
        content_type: content_type.cloned(),
        // `aws-chunked` is how the body was sent, not what it is.
        content_encoding: content_encoding
            .map(|e| {
                e.split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("aws-chunked"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .filter(|e| !e.is_empty()),
        content_disposition: content_disposition.cloned(),
        content_language: content_language.cloned(),
        cache_control: cache_control.cloned(),
        expires: expires.and_then(http_date),
        user: user_meta(metadata.cloned()),
        tags: Default::default(),
        ..ObjectMeta::default()
    }
}

/// The checksum an upload asks to be checked (or computed): a value in a
/// header, else one its trailer will carry, else an algorithm alone.
fn checksum_wanted<T>(
    req: &S3Request<T>,
    algorithm: Option<&ChecksumAlgorithm>,
    values: [Option<&String>; 5],
) -> Option<(Algo, Expected)> {
    let algos = [Algo::Crc32, Algo::Crc32c, Algo::Crc64Nvme, Algo::Sha1, Algo::Sha256];
    if let Some((algo, v)) = algos.iter().zip(values).find_map(|(a, v)| v.map(|v| (*a, v))) {
        return Some((algo, Expected::Header(v.clone())));
    }
    let from_trailer = req
        .headers
        .get("x-amz-trailer")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.trim().strip_prefix("x-amz-checksum-"))
        .and_then(Algo::parse);
    let algo = from_trailer.or_else(|| algorithm.and_then(|a| Algo::parse(a.as_str())))?;
    Some(match (&req.trailing_headers, from_trailer) {
        (Some(t), Some(_)) => (algo, Expected::Trailer(t.clone())),
        _ => (algo, Expected::None),
    })
}

/// The stored checksums, for an answer that asked for them.
fn stored_checksums(meta: &ObjectMeta, mode: Option<&ChecksumMode>) -> Checksum {
    let mut c = Checksum::default();
    if mode.is_none_or(|m| m.as_str() != ChecksumMode::ENABLED) {
        return c;
    }
    for (name, v) in &meta.checksums {
        if let Some(algo) = Algo::parse(name) {
            algo.put(&mut c, v.clone());
        }
    }
    if !meta.checksums.is_empty() {
        c.checksum_type = Some(checksum_type(meta));
    }
    c
}

/// How the object's checksum covers it.
fn checksum_type(meta: &ObjectMeta) -> ChecksumType {
    ChecksumType::from(
        meta.checksum_type
            .clone()
            .unwrap_or_else(|| ChecksumType::FULL_OBJECT.to_string()),
    )
}

/// Part `number`'s checksum (from 1), for an answer that asked for it: a
/// multipart object's part has its own, of the object's algorithm.
fn part_checksums(meta: &ObjectMeta, number: i64, mode: Option<&ChecksumMode>) -> Checksum {
    if meta.parts.is_empty() {
        return stored_checksums(meta, mode);
    }
    let mut c = Checksum::default();
    let index = usize::try_from(number - 1).ok();
    let value = index.and_then(|i| meta.part_checksums.get(i));
    let algo = meta.checksums.keys().next().and_then(|n| Algo::parse(n));
    if let (Some(v), Some(algo), Some(m)) = (value, algo, mode) {
        if m.as_str() == ChecksumMode::ENABLED {
            algo.put(&mut c, v.clone());
            c.checksum_type = Some(checksum_type(meta));
        }
    }
    c
}

/// A part's checksum as stored (`ALGO:BASE64`), as a checksum answer.
fn listed_checksum(stored: Option<&str>) -> Checksum {
    let mut c = Checksum::default();
    if let Some((algo, v)) = stored.and_then(|s| s.split_once(':')) {
        if let Some(algo) = Algo::parse(algo) {
            algo.put(&mut c, v.to_string());
        }
    }
    c
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

/// The object under `key`, if there is one.
async fn current(service: &Service, who: &Caller, key: &str) -> S3Result<Option<ObjectInfo>> {
    match service.object(who, key).await {
        Ok(o) => Ok(Some(o)),
        Err(sluice_service::Error::NotFound(_)) => Ok(None),
        Err(e) => Err(to_s3(e)),
    }
}

/// A `Content-MD5` header's 16 bytes, or `InvalidDigest`.
fn content_md5(b64: &str) -> S3Result<[u8; 16]> {
    base64_simd::STANDARD
        .decode_to_vec(b64.trim())
        .ok()
        .and_then(|b| <[u8; 16]>::try_from(b).ok())
        .ok_or_else(|| s3_error!(InvalidDigest, "Content-MD5 is not the base64 of 16 bytes"))
}

/// A timestamp as an HTTP date, as `Expires` is stored.
fn http_date(t: &Timestamp) -> Option<String> {
    let mut out = Vec::new();
    t.format(TimestampFormat::HttpDate, &mut out).ok()?;
    String::from_utf8(out).ok()
}

fn parse_http_date(s: &str) -> Option<Timestamp> {
    Timestamp::parse(TimestampFormat::HttpDate, s).ok()
}

#[async_trait::async_trait]
impl S3 for Face {
    async fn list_buckets(&self, req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
        let who = caller(&self.service, req.credentials.as_ref()).await?;
        let input = req.input;
        let after = match &input.continuation_token {
            Some(t) => Some(decode_token(t)?),
            None => None,
        };
        let prefix = input.prefix.clone().unwrap_or_default();
        let mut buckets: Vec<_> = self
            .service
            .buckets(&who)
            .await
            .map_err(to_s3)?
            .into_iter()
            .filter(|b| b.name.starts_with(&prefix) && after.as_ref().is_none_or(|a| b.name > *a))
            .collect();
        let max = input.max_buckets.map_or(10_000, |m| m.clamp(1, 10_000)) as usize;
        let next = (buckets.len() > max).then(|| encode_token(&buckets[max - 1].name));
        buckets.truncate(max);
        let owner = Owner {
            display_name: Some(who.0.tenant_name.clone()),
            id: Some(who.0.tenant_id.clone()),
        };
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(
                buckets
                    .into_iter()
                    .map(|b| Bucket {
                        bucket_region: None,
                        creation_date: Some(Timestamp::from(
                            SystemTime::UNIX_EPOCH + Duration::from_millis(b.created_at.max(0) as u64),
                        )),
                        name: Some(b.name),
                    })
                    .collect(),
            ),
            continuation_token: next,
            owner: Some(owner),
            prefix: input.prefix,
        }))
    }

    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        let who = caller(&self.service, req.credentials.as_ref()).await?;
        let name = &req.input.bucket;
        match self.service.create_bucket(&who, name).await {
            // As S3 in us-east-1: creating a bucket one owns again succeeds
            // (and keeps what it holds).
            Ok(_)
            | Err(sluice_service::Error::Conflict {
                kind: sluice_service::Conflict::BucketOwned,
                ..
            }) => {}
            Err(e) => return Err(bucket_error(e)),
        }
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{name}")),
        }))
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        // One region, us-east-1, whose location constraint S3 gives as none.
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        // Versioning was never enabled: S3 then answers no status.
        Ok(S3Response::new(GetBucketVersioningOutput::default()))
    }

    async fn delete_bucket(&self, req: S3Request<DeleteBucketInput>) -> S3Result<S3Response<DeleteBucketOutput>> {
        let who = caller(&self.service, req.credentials.as_ref()).await?;
        self.service
            .delete_bucket(&who, &req.input.bucket)
            .await
            .map_err(bucket_error)?;
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        let (who, bucket) = self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
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
        let input = req.input;
        let key = object_key(&bucket.name, &input.key);
        let body: sluice_service::Body = match input.body {
            Some(blob) => Box::pin(blob.map_err(std::io::Error::other)),
            None => Box::pin(futures_util::stream::empty()),
        };
        let (body, checking) = match wanted {
            Some((algo, expected)) => {
                let (body, outcome) = checksums::checked(self.service.clone(), who.clone(), body, algo, expected);
                (body, Some((algo, outcome)))
            }
            None => (body, None),
        };
        let expected_md5 = match &input.content_md5 {
            Some(b64) => Some(content_md5(b64)?),
            None => None,
        };
        let meta = meta_of(
            input.content_type.as_ref(),
            input.content_encoding.as_ref(),
            input.content_disposition.as_ref(),
            input.content_language.as_ref(),
            input.cache_control.as_ref(),
            input.expires.as_ref(),
            input.metadata.as_ref(),
        );
        let mut meta = meta;
        if let Some(h) = &input.tagging {
            meta.tags = tags::from_header(h)?;
        }
        let conditions = Conditions {
            if_match: input.if_match.as_ref(),
            if_none_match: input.if_none_match.as_ref(),
            ..Conditions::default()
        };
        if conditions.any() {
            conditions.check(current(&self.service, &who, &key).await?.as_ref(), false)?;
        }
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
        let stored = self.service.put_object(&who, put, body).await;
        let checked = checking.and_then(|(algo, o)| o.lock().ok().map(|o| (algo, o.clone())));
        if matches!(checked, Some((_, Outcome::Mismatch))) {
            return Err(s3_error!(
                BadDigest,
                "the body's checksum differs from the one sent with it"
            ));
        }
        stored.map_err(to_s3)?;
        let o = self.service.object(&who, &key).await.map_err(to_s3)?;
        let sums = stored_checksums(
            &ObjectMeta::from_row(o.meta.as_deref()),
            Some(&ChecksumMode::from_static(ChecksumMode::ENABLED)),
        );
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(etag(&o)),
            size: Some(o.plaintext_len),
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
            checksum_type: sums.checksum_type,
            ..Default::default()
        }))
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let (who, bucket) = self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        let key = object_key(&bucket.name, &req.input.key);
        let i = &req.input;
        let conditions = Conditions {
            if_match: i.if_match.as_ref(),
            if_none_match: i.if_none_match.as_ref(),
            if_modified_since: i.if_modified_since.as_ref(),
            if_unmodified_since: i.if_unmodified_since.as_ref(),
        };
        let mut now = None;
        if conditions.any() || i.part_number.is_some() {
            now = current(&self.service, &who, &key).await?;
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
        let content = self.service.content(&who, &key, range).await.map_err(to_s3)?;
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
        Ok(S3Response::new(GetObjectOutput {
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
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
            checksum_type: sums.checksum_type,
            metadata: (!meta.user.is_empty()).then(|| meta.user.into_iter().collect()),
            ..Default::default()
        }))
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        let (who, bucket) = self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        let key = object_key(&bucket.name, &req.input.key);
        let o = self.service.object(&who, &key).await.map_err(to_s3)?;
        let i = &req.input;
        Conditions {
            if_match: i.if_match.as_ref(),
            if_none_match: i.if_none_match.as_ref(),
            if_modified_since: i.if_modified_since.as_ref(),
            if_unmodified_since: i.if_unmodified_since.as_ref(),
        }
        .check(Some(&o), true)?;
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
        let mut resp = S3Response::new(HeadObjectOutput {
            accept_ranges: Some("bytes".into()),
            content_length: Some(length),
            parts_count,
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
            checksum_type: sums.checksum_type,
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
        });
        // HeadObjectOutput has no field for it; S3 sends it.
        if tags > 0 {
            resp.headers.insert("x-amz-tagging-count", tags.into());
        }
        Ok(resp)
    }

    async fn get_object_attributes(
        &self,
        req: S3Request<GetObjectAttributesInput>,
    ) -> S3Result<S3Response<GetObjectAttributesOutput>> {
        let (who, bucket) = self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        let input = req.input;
        let key = object_key(&bucket.name, &input.key);
        let o = self.service.object(&who, &key).await.map_err(to_s3)?;
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
                        checksum_crc32: sums.checksum_crc32,
                        checksum_crc32c: sums.checksum_crc32c,
                        checksum_crc64nvme: sums.checksum_crc64nvme,
                        checksum_sha1: sums.checksum_sha1,
                        checksum_sha256: sums.checksum_sha256,
                    }
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

    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        let (who, bucket) = self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        let key = object_key(&bucket.name, &req.input.key);
        let o = self.service.object(&who, &key).await.map_err(to_s3)?;
        let meta = ObjectMeta::from_row(o.meta.as_deref());
        Ok(S3Response::new(GetObjectTaggingOutput {
            tag_set: meta
                .tags
                .into_iter()
                .map(|(k, v)| Tag {
                    key: Some(k),
                    value: Some(v),
                })
                .collect(),
            version_id: None,
        }))
    }

    async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        let (who, bucket) = self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        let key = object_key(&bucket.name, &req.input.key);
        let tags = tags::checked(
            req.input
                .tagging
                .tag_set
                .into_iter()
                .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
                .collect(),
        )?;
        self.service
            .update_object_meta(&who, &key, |m| m.tags = tags.clone())
            .await
            .map_err(to_s3)?;
        Ok(S3Response::new(PutObjectTaggingOutput::default()))
    }

    async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        let (who, bucket) = self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        let key = object_key(&bucket.name, &req.input.key);
        self.service
            .update_object_meta(&who, &key, |m| m.tags.clear())
            .await
            .map_err(to_s3)?;
        Ok(S3Response::new(DeleteObjectTaggingOutput::default()))
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        let (who, bucket) = self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        let key = object_key(&bucket.name, &req.input.key);
        // S3 answers a delete of a missing key as a success.
        match self.service.delete_object(&who, &key).await {
            Ok(()) | Err(sluice_service::Error::NotFound(_)) => {}
            Err(e) => return Err(to_s3(e)),
        }
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let (who, bucket) = self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        let input = req.input;
        let meta = meta_of(
            input.content_type.as_ref(),
            input.content_encoding.as_ref(),
            input.content_disposition.as_ref(),
            input.content_language.as_ref(),
            input.cache_control.as_ref(),
            input.expires.as_ref(),
            input.metadata.as_ref(),
        );
        let mut meta = meta;
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
        let u = self
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

    async fn upload_part(&self, mut req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
        let (who, bucket) = self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        let key = object_key(&bucket.name, &req.input.key);
        let upload = self
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
        let (body, checksum, checking) = checked_part(&self.service, &who, &upload, given, body)?;
        let input = req.input;
        let part = self
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
        Ok(S3Response::new(UploadPartOutput {
            e_tag: Some(ETag::Strong(part.etag)),
            checksum_crc32: sums.checksum_crc32,
            checksum_crc32c: sums.checksum_crc32c,
            checksum_crc64nvme: sums.checksum_crc64nvme,
            checksum_sha1: sums.checksum_sha1,
            checksum_sha256: sums.checksum_sha256,
            ..Default::default()
        }))
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let (who, bucket) = self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        let input = req.input;
        let CopySource::Bucket {
            bucket: src_bucket,
            key: src_key,
            ..
        } = &input.copy_source
        else {
            return Err(s3_error!(NotImplemented, "copies from access points are not served"));
        };
        let source_bucket = self.service.bucket(&who, src_bucket).await.map_err(bucket_error)?;
        let source_key = object_key(&source_bucket.name, src_key);
        let source = self.service.object(&who, &source_key).await.map_err(to_s3)?;
        Conditions {
            if_match: input.copy_source_if_match.as_ref(),
            if_none_match: input.copy_source_if_none_match.as_ref(),
            if_modified_since: input.copy_source_if_modified_since.as_ref(),
            if_unmodified_since: input.copy_source_if_unmodified_since.as_ref(),
        }
        .check(Some(&source), false)?;
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
        let upload = self
            .service
            .open_multipart(&who, &key, &input.upload_id)
            .await
            .map_err(upload_error)?;
        let content = self.service.content(&who, &source_key, range).await.map_err(to_s3)?;
        let len = content
            .range
            .as_ref()
            .map_or(source.plaintext_len.max(0) as u64, |r| r.end - r.start);
        let (body, checksum, checking) = checked_part(&self.service, &who, &upload, None, content.body)?;
        let part = self
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
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(ETag::Strong(part.etag)),
                last_modified: Some(millis(part.created_at)),
                checksum_crc32: sums.checksum_crc32,
                checksum_crc32c: sums.checksum_crc32c,
                checksum_crc64nvme: sums.checksum_crc64nvme,
                checksum_sha1: sums.checksum_sha1,
                checksum_sha256: sums.checksum_sha256,
            }),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let (who, bucket) = self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        let input = req.input;
        let key = object_key(&bucket.name, &input.key);
        let conditions = Conditions {
            if_match: input.if_match.as_ref(),
            if_none_match: input.if_none_match.as_ref(),
            ..Conditions::default()
        };
        if conditions.any() {
            conditions.check(current(&self.service, &who, &key).await?.as_ref(), false)?;
        }
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
        let completing = self
            .service
            .complete_multipart(&who, &key, &input.upload_id, &listed, finish)
            .await
            .map_err(upload_error)?;
        // The parts were good: from here S3 answers 200 at once and keeps
        // the connection alive (whitespace) until the object is stored,
        // then sends its description, or an error, in the body.
        let service = self.service.clone();
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
                checksum_crc32: sums.checksum_crc32,
                checksum_crc32c: sums.checksum_crc32c,
                checksum_crc64nvme: sums.checksum_crc64nvme,
                checksum_sha1: sums.checksum_sha1,
                checksum_sha256: sums.checksum_sha256,
                checksum_type: sums.checksum_type,
                ..Default::default()
            })
        };
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            future: Some(Box::pin(stored)),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let (who, bucket) = self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        let key = object_key(&bucket.name, &req.input.key);
        self.service
            .abort_multipart(&who, &key, &req.input.upload_id)
            .await
            .map_err(upload_error)?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn list_parts(&self, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
        let (who, bucket) = self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        let input = req.input;
        let key = object_key(&bucket.name, &input.key);
        let parts = self
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
                            checksum_crc32: sums.checksum_crc32,
                            checksum_crc32c: sums.checksum_crc32c,
                            checksum_crc64nvme: sums.checksum_crc64nvme,
                            checksum_sha1: sums.checksum_sha1,
                            checksum_sha256: sums.checksum_sha256,
                        }
                    })
                    .collect(),
            ),
            storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
            ..Default::default()
        }))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let (who, bucket) = self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        let input = req.input;
        let base = format!("{}/", bucket.name);
        let prefix = format!("{base}{}", input.prefix.as_deref().unwrap_or(""));
        let max = u32::try_from(input.max_uploads.unwrap_or(1000).clamp(0, 1000)).unwrap_or(1000);
        let marker_key = input.key_marker.as_ref().map(|k| format!("{base}{k}"));
        // After a key marker alone: after every upload of that key.
        let after = marker_key
            .as_deref()
            .map(|k| (k, input.upload_id_marker.as_deref().unwrap_or("\u{10FFFF}")));
        let mut uploads = self
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

    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let (who, bucket) = self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        let Delete { objects: keys, quiet } = req.input.delete;
        if keys.len() > 1000 {
            return Err(s3_error!(MalformedXML, "at most 1000 keys may be deleted at once"));
        }
        let quiet = quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for o in keys {
            let key = object_key(&bucket.name, &o.key);
            match self.service.delete_object(&who, &key).await {
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

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        let (who, bucket) = self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        let input = req.input;
        let CopySource::Bucket {
            bucket: src_bucket,
            key: src_key,
            ..
        } = &input.copy_source
        else {
            return Err(s3_error!(NotImplemented, "copies from access points are not served"));
        };
        let source_bucket = self.service.bucket(&who, src_bucket).await.map_err(bucket_error)?;
        let source_key = object_key(&source_bucket.name, src_key);
        let dest_key = object_key(&bucket.name, &input.key);
        let source = self.service.object(&who, &source_key).await.map_err(to_s3)?;
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
        let content = self.service.content(&who, &source_key, None).await.map_err(to_s3)?;
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
        self.service.put_object(&who, put, content.body).await.map_err(to_s3)?;
        let o = self.service.object(&who, &dest_key).await.map_err(to_s3)?;
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(etag(&o)),
                last_modified: Some(modified(&o)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    /// Buckets are not versioned: every object is its one, latest
    /// version, `null` (what clients that clean up by versions expect).
    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let (who, bucket) = self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let max_keys = max_keys(input.max_keys)?;
        let listing = listing::list(
            &self.service,
            &who,
            &Query {
                bucket: &bucket.name,
                prefix: &prefix,
                delimiter: input.delimiter.as_deref(),
                after: input.key_marker.as_deref(),
                max_keys,
            },
        )
        .await?;
        let url = listing::wants_url(input.encoding_type.as_ref());
        let listing = if url { listing.url_encoded() } else { listing };
        let enc = |s: Option<String>| if url { s.map(|s| listing::url_encode(&s)) } else { s };
        let truncated = listing.next_after.is_some();
        let next_key = listing.next_after.clone();
        let versions = listing
            .contents
            .iter()
            .map(|(key, o)| ObjectVersion {
                e_tag: Some(etag(o)),
                is_latest: Some(true),
                key: Some(key.clone()),
                last_modified: Some(modified(o)),
                size: Some(o.plaintext_len),
                storage_class: Some(ObjectVersionStorageClass::from_static(
                    ObjectVersionStorageClass::STANDARD,
                )),
                version_id: Some("null".into()),
                owner: Some(owner_of(&who)),
                ..Default::default()
            })
            .collect();
        let (_, prefixes) = entries(listing, None);
        Ok(S3Response::new(ListObjectVersionsOutput {
            common_prefixes: Some(prefixes),
            delimiter: enc(input.delimiter.filter(|d| !d.is_empty())),
            encoding_type: input.encoding_type,
            is_truncated: Some(truncated),
            key_marker: enc(input.key_marker),
            max_keys: Some(max_keys as i32),
            name: Some(bucket.name),
            next_key_marker: enc(next_key),
            next_version_id_marker: truncated.then(|| "null".to_string()),
            prefix: enc(Some(prefix)),
            version_id_marker: input.version_id_marker,
            versions: Some(versions),
            ..Default::default()
        }))
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        let (who, bucket) = self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let token = match &input.continuation_token {
            Some(t) => Some(decode_token(t)?),
            None => None,
        };
        let after = token.as_deref().or(input.start_after.as_deref());
        let max_keys = max_keys(input.max_keys)?;
        let listing = listing::list(
            &self.service,
            &who,
            &Query {
                bucket: &bucket.name,
                prefix: &prefix,
                delimiter: input.delimiter.as_deref(),
                after,
                max_keys,
            },
        )
        .await?;
        let url = listing::wants_url(input.encoding_type.as_ref());
        let listing = if url { listing.url_encoded() } else { listing };
        let enc = |s: Option<String>| if url { s.map(|s| listing::url_encode(&s)) } else { s };
        let key_count = (listing.contents.len() + listing.prefixes.len()) as i32;
        let truncated = listing.next_after.is_some();
        let next = listing.next_after.as_deref().map(encode_token);
        let owner = input.fetch_owner.unwrap_or(false).then(|| owner_of(&who));
        let (contents, prefixes) = entries(listing, owner);
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(bucket.name),
            prefix: enc(Some(prefix)),
            max_keys: Some(max_keys as i32),
            key_count: Some(key_count),
            continuation_token: input.continuation_token,
            is_truncated: Some(truncated),
            next_continuation_token: next,
            contents: Some(contents),
            common_prefixes: Some(prefixes),
            delimiter: enc(input.delimiter.filter(|d| !d.is_empty())),
            encoding_type: input.encoding_type,
            start_after: enc(input.start_after),
            request_charged: None,
        }))
    }

    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
        let (who, bucket) = self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        let input = req.input;
        let prefix = input.prefix.clone().unwrap_or_default();
        let max_keys = max_keys(input.max_keys)?;
        let listing = listing::list(
            &self.service,
            &who,
            &Query {
                bucket: &bucket.name,
                prefix: &prefix,
                delimiter: input.delimiter.as_deref(),
                after: input.marker.as_deref(),
                max_keys,
            },
        )
        .await?;
        let url = listing::wants_url(input.encoding_type.as_ref());
        let listing = if url { listing.url_encoded() } else { listing };
        let enc = |s: Option<String>| if url { s.map(|s| listing::url_encode(&s)) } else { s };
        let truncated = listing.next_after.is_some();
        // S3 gives NextMarker only when a delimiter is set (else the last key is it).
        let next_marker = listing.next_after.clone().filter(|_| input.delimiter.is_some());
        let (contents, prefixes) = entries(listing, Some(owner_of(&who)));
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(bucket.name),
            prefix: Some(prefix),
            marker: enc(Some(input.marker.unwrap_or_default())),
            max_keys: Some(max_keys as i32),
            is_truncated: Some(truncated),
            contents: Some(contents),
            common_prefixes: Some(prefixes),
            delimiter: enc(input.delimiter.filter(|d| !d.is_empty())),
            next_marker: enc(next_marker),
            encoding_type: input.encoding_type,
            request_charged: None,
        }))
    }
}

/// A copy source range: exactly `bytes=FIRST-LAST`, FIRST at most LAST.
fn copy_range(r: &str) -> S3Result<(u64, u64)> {
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

/// `max-keys`: 1000 unless given, never more.
fn max_keys(given: Option<i32>) -> S3Result<usize> {
    match given {
        None => Ok(1000),
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "max-keys must not be negative")),
        Some(n) => Ok((n as usize).min(1000)),
    }
}

/// The owner shown in listings: the bucket's tenant.
fn owner_of(who: &Caller) -> Owner {
    Owner {
        display_name: Some(who.0.tenant_name.clone()),
        id: Some(who.0.tenant_id.clone()),
    }
}

fn entries(listing: Listing, owner: Option<Owner>) -> (Vec<Object>, Vec<CommonPrefix>) {
    let contents = listing
        .contents
        .into_iter()
        .map(|(key, o)| Object {
            e_tag: Some(etag(&o)),
            key: Some(key),
            last_modified: Some(modified(&o)),
            size: Some(o.plaintext_len),
            storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
            owner: owner.clone(),
            ..Default::default()
        })
        .collect();
    let prefixes = listing
        .prefixes
        .into_iter()
        .map(|p| CommonPrefix { prefix: Some(p) })
        .collect();
    (contents, prefixes)
}

/// A continuation token: the key to continue after, hex (opaque to clients).
fn encode_token(after: &str) -> String {
    hex::encode(after)
}

fn decode_token(token: &str) -> S3Result<String> {
    hex::decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| s3_error!(InvalidArgument, "the continuation token is not one this server gave"))
}
