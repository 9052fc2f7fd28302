//! The S3 operations, each a thin mapping onto the service core.

use std::time::{Duration, SystemTime};

use futures_util::TryStreamExt;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};
use sluice_service::buckets::object_key;
use sluice_service::objects::{ByteRange, Put};
use sluice_service::{Caller, ObjectInfo, Service};

use crate::auth::caller;
use crate::errors::{bucket_error, to_s3};
use crate::listing::{self, Listing, Query};

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

fn modified(o: &ObjectInfo) -> Timestamp {
    Timestamp::from(SystemTime::UNIX_EPOCH + Duration::from_millis(o.created_at.max(0) as u64))
}

fn etag(o: &ObjectInfo) -> ETag {
    ETag::Strong(o.digest.clone())
}

#[async_trait::async_trait]
impl S3 for Face {
    async fn list_buckets(&self, req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
        let who = caller(&self.service, req.credentials.as_ref()).await?;
        let buckets = self.service.buckets(&who).await.map_err(to_s3)?;
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
            continuation_token: None,
            owner: Some(owner),
            prefix: None,
        }))
    }

    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        let who = caller(&self.service, req.credentials.as_ref()).await?;
        let name = &req.input.bucket;
        self.service.create_bucket(&who, name).await.map_err(bucket_error)?;
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{name}")),
        }))
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        Ok(S3Response::new(HeadBucketOutput::default()))
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
        let input = req.input;
        let key = object_key(&bucket.name, &input.key);
        let body: sluice_service::Body = match input.body {
            Some(blob) => Box::pin(blob.map_err(std::io::Error::other)),
            None => Box::pin(futures_util::stream::empty()),
        };
        let put = Put {
            key: key.clone(),
            pipeline: bucket.pipeline.clone(),
            wait: true,
            expected_blake3: None,
            declared_len: input.content_length.and_then(|n| u64::try_from(n).ok()),
        };
        self.service.put_object(&who, put, body).await.map_err(to_s3)?;
        let o = self.service.object(&who, &key).await.map_err(to_s3)?;
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(etag(&o)),
            size: Some(o.plaintext_len),
            ..Default::default()
        }))
    }

    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let (who, bucket) = self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        let key = object_key(&bucket.name, &req.input.key);
        let range = req.input.range.map(|r| match r {
            Range::Int { first, last: None } => ByteRange::From(first),
            Range::Int {
                first,
                last: Some(last),
            } => ByteRange::Span { first, last },
            Range::Suffix { length } => ByteRange::Suffix(length),
        });
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
        Ok(S3Response::new(GetObjectOutput {
            accept_ranges: Some("bytes".into()),
            body: Some(StreamingBlob::wrap(body)),
            content_length: Some(length),
            content_range,
            e_tag: Some(etag(&content.object)),
            last_modified: Some(modified(&content.object)),
            ..Default::default()
        }))
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        let (who, bucket) = self.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
        let key = object_key(&bucket.name, &req.input.key);
        let o = self.service.object(&who, &key).await.map_err(to_s3)?;
        Ok(S3Response::new(HeadObjectOutput {
            accept_ranges: Some("bytes".into()),
            content_length: Some(o.plaintext_len),
            e_tag: Some(etag(&o)),
            last_modified: Some(modified(&o)),
            ..Default::default()
        }))
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
        let key_count = (listing.contents.len() + listing.prefixes.len()) as i32;
        let truncated = listing.next_after.is_some();
        let next = listing.next_after.as_deref().map(encode_token);
        let (contents, prefixes) = entries(listing);
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(bucket.name),
            prefix: Some(prefix),
            max_keys: Some(max_keys as i32),
            key_count: Some(key_count),
            continuation_token: input.continuation_token,
            is_truncated: Some(truncated),
            next_continuation_token: next,
            contents: Some(contents),
            common_prefixes: Some(prefixes),
            delimiter: input.delimiter,
            encoding_type: input.encoding_type,
            start_after: input.start_after,
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
        let truncated = listing.next_after.is_some();
        // S3 gives NextMarker only when a delimiter is set (else the last key is it).
        let next_marker = listing.next_after.clone().filter(|_| input.delimiter.is_some());
        let (contents, prefixes) = entries(listing);
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(bucket.name),
            prefix: Some(prefix),
            marker: input.marker,
            max_keys: Some(max_keys as i32),
            is_truncated: Some(truncated),
            contents: Some(contents),
            common_prefixes: Some(prefixes),
            delimiter: input.delimiter,
            next_marker,
            encoding_type: input.encoding_type,
            request_charged: None,
        }))
    }
}

/// `max-keys`: 1000 unless given, never more.
fn max_keys(given: Option<i32>) -> S3Result<usize> {
    match given {
        None => Ok(1000),
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "max-keys must not be negative")),
        Some(n) => Ok((n as usize).min(1000)),
    }
}

fn entries(listing: Listing) -> (Vec<Object>, Vec<CommonPrefix>) {
    let contents = listing
        .contents
        .into_iter()
        .map(|(key, o)| Object {
            e_tag: Some(etag(&o)),
            key: Some(key),
            last_modified: Some(modified(&o)),
            size: Some(o.plaintext_len),
            storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
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
