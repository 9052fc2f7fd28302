//! Buckets: list, create, head, location, versioning, delete.

use std::time::{Duration, SystemTime};

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use crate::auth::caller;
use crate::errors::{bucket_error, to_s3};

use super::lists::{decode_token, encode_token};
use super::Face;

pub(super) async fn list_buckets(
    face: &Face,
    req: S3Request<ListBucketsInput>,
) -> S3Result<S3Response<ListBucketsOutput>> {
    let who = caller(&face.service, req.credentials.as_ref()).await?;
    let input = req.input;
    let after = match &input.continuation_token {
        Some(t) => Some(decode_token(t)?),
        None => None,
    };
    let prefix = input.prefix.clone().unwrap_or_default();
    let mut buckets: Vec<_> = face
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

pub(super) async fn create_bucket(
    face: &Face,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    let who = caller(&face.service, req.credentials.as_ref()).await?;
    let name = &req.input.bucket;
    match face.service.create_bucket(&who, name).await {
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

pub(super) async fn head_bucket(
    face: &Face,
    req: S3Request<HeadBucketInput>,
) -> S3Result<S3Response<HeadBucketOutput>> {
    face.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
    Ok(S3Response::new(HeadBucketOutput::default()))
}

pub(super) async fn get_bucket_location(
    face: &Face,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    face.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
    // One region, us-east-1, whose location constraint S3 gives as none.
    Ok(S3Response::new(GetBucketLocationOutput::default()))
}

pub(super) async fn get_bucket_versioning(
    face: &Face,
    req: S3Request<GetBucketVersioningInput>,
) -> S3Result<S3Response<GetBucketVersioningOutput>> {
    face.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
    // Versioning was never enabled: S3 then answers no status.
    Ok(S3Response::new(GetBucketVersioningOutput::default()))
}

pub(super) async fn delete_bucket(
    face: &Face,
    req: S3Request<DeleteBucketInput>,
) -> S3Result<S3Response<DeleteBucketOutput>> {
    let who = caller(&face.service, req.credentials.as_ref()).await?;
    face.service
        .delete_bucket(&who, &req.input.bucket)
        .await
        .map_err(bucket_error)?;
    Ok(S3Response::new(DeleteBucketOutput {}))
}
