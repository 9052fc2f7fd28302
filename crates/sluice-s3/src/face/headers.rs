//! What answers about an object say: ETag, dates, user metadata, stored
//! headers and checksums.

use std::time::{Duration, SystemTime};

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Result};
use sluice_service::objects::meta::ObjectMeta;
use sluice_service::ObjectInfo;

use crate::checksums::{Algo, Expected};

pub(crate) fn millis(ms: i64) -> Timestamp {
    Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64))
}

pub(super) fn modified(o: &ObjectInfo) -> Timestamp {
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

/// The object's ETag: the MD5 of its plaintext when it was computed (any
/// object stored through S3), else its BLAKE3 (objects stored natively).
pub(super) fn etag(o: &ObjectInfo) -> ETag {
    ETag::Strong(etag_value(o).to_string())
}

/// The ETag's value, unquoted.
pub(crate) fn etag_value(o: &ObjectInfo) -> &str {
    o.etag.as_deref().unwrap_or(&o.digest)
}

/// A request that carries the headers stored with an object (Content-Type,
/// Content-Encoding, Content-Disposition, Content-Language, Cache-Control,
/// Expires, `x-amz-meta-*`): a put, a multipart upload's creation, a copy
/// that replaces the metadata.
pub(super) trait StoredHeaders {
    /// The object's metadata from them (no tags).
    fn stored_meta(&self) -> ObjectMeta;
}

macro_rules! stored_headers {
    ($($input:ty),*) => {$(
        impl StoredHeaders for $input {
            fn stored_meta(&self) -> ObjectMeta {
                ObjectMeta {
                    content_type: self.content_type.clone(),
                    content_encoding: self.content_encoding.as_deref().and_then(content_encoding),
                    content_disposition: self.content_disposition.clone(),
                    content_language: self.content_language.clone(),
                    cache_control: self.cache_control.clone(),
                    expires: self.expires.as_ref().and_then(http_date),
                    user: user_meta(self.metadata.clone()),
                    ..ObjectMeta::default()
                }
            }
        }
    )*};
}

stored_headers!(PutObjectInput, CreateMultipartUploadInput, CopyObjectInput);

/// A Content-Encoding to store: `aws-chunked` is how the body was sent, not
/// what it is.
fn content_encoding(given: &str) -> Option<String> {
    let kept: Vec<&str> = given
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("aws-chunked"))
        .collect();
    (!kept.is_empty()).then(|| kept.join(", "))
}

/// The checksum an upload asks to be checked (or computed): a value in a
/// header, else one its trailer will carry, else an algorithm alone.
pub(super) fn checksum_wanted<T>(
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
pub(super) fn stored_checksums(meta: &ObjectMeta, mode: Option<&ChecksumMode>) -> Checksum {
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
pub(super) fn checksum_type(meta: &ObjectMeta) -> ChecksumType {
    ChecksumType::from(
        meta.checksum_type
            .clone()
            .unwrap_or_else(|| ChecksumType::FULL_OBJECT.to_string()),
    )
}

/// Part `number`'s checksum (from 1), for an answer that asked for it: a
/// multipart object's part has its own, of the object's algorithm.
pub(super) fn part_checksums(meta: &ObjectMeta, number: i64, mode: Option<&ChecksumMode>) -> Checksum {
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

/// An answer, or an entry of one, that carries checksums.
pub(super) trait WithChecksums: Sized {
    /// It with `sums`' values (and their type, where it has a field for it).
    fn with_checksums(self, sums: Checksum) -> Self;
}

macro_rules! with_checksums {
    (@set $this:expr, $sums:ident, { $($typed:tt)* }) => {
        Self {
            checksum_crc32: $sums.checksum_crc32,
            checksum_crc32c: $sums.checksum_crc32c,
            checksum_crc64nvme: $sums.checksum_crc64nvme,
            checksum_sha1: $sums.checksum_sha1,
            checksum_sha256: $sums.checksum_sha256,
            $($typed)*
            ..$this
        }
    };
    ($($answer:ty),* ; typed: $($typed:ty),*) => {
        $(impl WithChecksums for $answer {
            fn with_checksums(self, sums: Checksum) -> Self {
                with_checksums!(@set self, sums, {})
            }
        })*
        $(impl WithChecksums for $typed {
            fn with_checksums(self, sums: Checksum) -> Self {
                with_checksums!(@set self, sums, { checksum_type: sums.checksum_type, })
            }
        })*
    };
}

with_checksums!(UploadPartOutput, CopyPartResult, Part, ObjectPart;
    typed: PutObjectOutput, GetObjectOutput, HeadObjectOutput, CompleteMultipartUploadOutput);

/// A part's checksum as stored (`ALGO:BASE64`), as a checksum answer.
pub(super) fn listed_checksum(stored: Option<&str>) -> Checksum {
    let mut c = Checksum::default();
    if let Some((algo, v)) = stored.and_then(|s| s.split_once(':')) {
        if let Some(algo) = Algo::parse(algo) {
            algo.put(&mut c, v.to_string());
        }
    }
    c
}

/// A `Content-MD5` header's 16 bytes, or `InvalidDigest`.
pub(super) fn content_md5(b64: &str) -> S3Result<[u8; 16]> {
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

pub(super) fn parse_http_date(s: &str) -> Option<Timestamp> {
    Timestamp::parse(TimestampFormat::HttpDate, s).ok()
}
