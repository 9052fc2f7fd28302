//! Object tags: get, put, delete.

use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};
use sluice_service::buckets::object_key;
use sluice_service::objects::meta::ObjectMeta;

use crate::errors::to_s3;
use crate::tags;

use super::Face;

pub(super) async fn get_object_tagging(
    face: &Face,
    req: S3Request<GetObjectTaggingInput>,
) -> S3Result<S3Response<GetObjectTaggingOutput>> {
    let (who, bucket) = face.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
    let key = object_key(&bucket.name, &req.input.key);
    let o = face.service.object(&who, &key).await.map_err(to_s3)?;
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

pub(super) async fn put_object_tagging(
    face: &Face,
    req: S3Request<PutObjectTaggingInput>,
) -> S3Result<S3Response<PutObjectTaggingOutput>> {
    let (who, bucket) = face.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
    let key = object_key(&bucket.name, &req.input.key);
    let tags = tags::checked(
        req.input
            .tagging
            .tag_set
            .into_iter()
            .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
            .collect(),
    )?;
    face.service
        .update_object_meta(&who, &key, |m| m.tags = tags.clone())
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(PutObjectTaggingOutput::default()))
}

pub(super) async fn delete_object_tagging(
    face: &Face,
    req: S3Request<DeleteObjectTaggingInput>,
) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
    let (who, bucket) = face.in_bucket(req.credentials.as_ref(), &req.input.bucket).await?;
    let key = object_key(&bucket.name, &req.input.key);
    face.service
        .update_object_meta(&who, &key, |m| m.tags.clear())
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(DeleteObjectTaggingOutput::default()))
}
