//! Listings: ListObjects v1 and v2 and ListObjectVersions, in S3's
//! byte order, with prefixes, delimiters, markers and tokens.

use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use sluice_service::Caller;

use crate::listing::{self, Listing, Query};

use super::headers::{etag, modified};
use super::Face;

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

/// How a listing's names go out: as they are, or url-encoded when asked.
#[derive(Clone, Copy)]
struct Names {
    url: bool,
}

impl Names {
    fn enc(self, s: Option<String>) -> Option<String> {
        if self.url {
            s.map(|s| listing::url_encode(&s))
        } else {
            s
        }
    }
}

/// One page of the listing `query` asks for, its names encoded as
/// `encoding` says, and how the answer's other names are to be encoded.
async fn page(
    face: &Face,
    who: &Caller,
    query: &Query<'_>,
    encoding: Option<&EncodingType>,
) -> S3Result<(Listing, Names)> {
    let listing = listing::list(&face.service, who, query).await?;
    let names = Names {
        url: listing::wants_url(encoding),
    };
    Ok((if names.url { listing.url_encoded() } else { listing }, names))
}

/// A continuation token: the key to continue after, hex (opaque to clients).
pub(super) fn encode_token(after: &str) -> String {
    hex::encode(after)
}

pub(super) fn decode_token(token: &str) -> S3Result<String> {
    hex::decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| s3_error!(InvalidArgument, "the continuation token is not one this server gave"))
}

/// Buckets are not versioned: every object is its one, latest
/// version, `null` (what clients that clean up by versions expect).
pub(super) async fn list_object_versions(
    face: &Face,
    req: S3Request<ListObjectVersionsInput>,
) -> S3Result<S3Response<ListObjectVersionsOutput>> {
    let (who, bucket) = face.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
    let input = req.input;
    let prefix = input.prefix.clone().unwrap_or_default();
    let max_keys = max_keys(input.max_keys)?;
    let query = Query {
        bucket: &bucket.name,
        prefix: &prefix,
        delimiter: input.delimiter.as_deref(),
        after: input.key_marker.as_deref(),
        max_keys,
    };
    let (listing, names) = page(face, &who, &query, input.encoding_type.as_ref()).await?;
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
        delimiter: names.enc(input.delimiter.filter(|d| !d.is_empty())),
        encoding_type: input.encoding_type,
        is_truncated: Some(truncated),
        key_marker: names.enc(input.key_marker),
        max_keys: Some(max_keys as i32),
        name: Some(bucket.name),
        next_key_marker: names.enc(next_key),
        next_version_id_marker: truncated.then(|| "null".to_string()),
        prefix: names.enc(Some(prefix)),
        version_id_marker: input.version_id_marker,
        versions: Some(versions),
        ..Default::default()
    }))
}

pub(super) async fn list_objects_v2(
    face: &Face,
    req: S3Request<ListObjectsV2Input>,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let (who, bucket) = face.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
    let input = req.input;
    let prefix = input.prefix.clone().unwrap_or_default();
    let token = match &input.continuation_token {
        Some(t) => Some(decode_token(t)?),
        None => None,
    };
    let after = token.as_deref().or(input.start_after.as_deref());
    let max_keys = max_keys(input.max_keys)?;
    let query = Query {
        bucket: &bucket.name,
        prefix: &prefix,
        delimiter: input.delimiter.as_deref(),
        after,
        max_keys,
    };
    let (listing, names) = page(face, &who, &query, input.encoding_type.as_ref()).await?;
    let key_count = (listing.contents.len() + listing.prefixes.len()) as i32;
    let truncated = listing.next_after.is_some();
    let next = listing.next_after.as_deref().map(encode_token);
    let owner = input.fetch_owner.unwrap_or(false).then(|| owner_of(&who));
    let (contents, prefixes) = entries(listing, owner);
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(bucket.name),
        prefix: names.enc(Some(prefix)),
        max_keys: Some(max_keys as i32),
        key_count: Some(key_count),
        continuation_token: input.continuation_token,
        is_truncated: Some(truncated),
        next_continuation_token: next,
        contents: Some(contents),
        common_prefixes: Some(prefixes),
        delimiter: names.enc(input.delimiter.filter(|d| !d.is_empty())),
        encoding_type: input.encoding_type,
        start_after: names.enc(input.start_after),
        request_charged: None,
    }))
}

pub(super) async fn list_objects(
    face: &Face,
    req: S3Request<ListObjectsInput>,
) -> S3Result<S3Response<ListObjectsOutput>> {
    let (who, bucket) = face.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
    let input = req.input;
    let prefix = input.prefix.clone().unwrap_or_default();
    let max_keys = max_keys(input.max_keys)?;
    let query = Query {
        bucket: &bucket.name,
        prefix: &prefix,
        delimiter: input.delimiter.as_deref(),
        after: input.marker.as_deref(),
        max_keys,
    };
    let (listing, names) = page(face, &who, &query, input.encoding_type.as_ref()).await?;
    let truncated = listing.next_after.is_some();
    // S3 gives NextMarker only when a delimiter is set (else the last key is it).
    let next_marker = listing.next_after.clone().filter(|_| input.delimiter.is_some());
    let (contents, prefixes) = entries(listing, Some(owner_of(&who)));
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(bucket.name),
        prefix: Some(prefix),
        marker: names.enc(Some(input.marker.unwrap_or_default())),
        max_keys: Some(max_keys as i32),
        is_truncated: Some(truncated),
        contents: Some(contents),
        common_prefixes: Some(prefixes),
        delimiter: names.enc(input.delimiter.filter(|d| !d.is_empty())),
        next_marker: names.enc(next_marker),
        encoding_type: input.encoding_type,
        request_charged: None,
    }))
}
