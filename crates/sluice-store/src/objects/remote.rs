//! [`RemoteStore`]: a backend on any `object_store` store (S3-compatible
//! buckets; in-memory ones in tests), its calls guarded by [`Resilient`].
//! Only this module and the wrappers it uses know the `object_store` crate.

use std::fmt;
use std::io;
use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::buffered::{BufReader, BufWriter};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::blob::{
    BlobError, BlobResult, BlobStore, ByteStream, Listed, ObjectReader, ObjectWrite, ObjectWriter, PartsStore,
};
use super::guard::Classify;
use super::resilient::Resilient;
use super::{PART_SIZE, STREAM_BUFFER};

/// The backend's error, sorted as the guard sorts it.
fn blob_error(e: object_store::Error) -> BlobError {
    match e {
        object_store::Error::NotFound { path, .. } => BlobError::NotFound(path),
        e if e.is_breaker_open() => BlobError::breaker_open(),
        e if e.is_failing() => BlobError::Failing(Box::new(e)),
        e => BlobError::Rejected(Box::new(e)),
    }
}

/// A store's multipart API and the key prefix the service's names live
/// under in it (the `PrefixStore` that serves everything else does not
/// offer the multipart API).
struct PartsTarget {
    store: Arc<dyn MultipartStore>,
    prefix: String,
}

impl PartsTarget {
    fn path(&self, location: &str) -> Path {
        if self.prefix.is_empty() {
            Path::from(location)
        } else {
            Path::from(format!("{}/{location}", self.prefix))
        }
    }
}

/// A backend on an `object_store` store.
pub struct RemoteStore {
    store: Arc<Resilient>,
    parts: Option<PartsTarget>,
}

impl fmt::Debug for RemoteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteStore")
            .field("store", &self.store)
            .field("parts", &self.parts.as_ref().map(|p| &p.prefix))
            .finish()
    }
}

impl RemoteStore {
    /// `store`, guarded; with its multipart API (and the prefix the
    /// service's names live under in it) if it has one.
    pub fn new(store: Arc<Resilient>, parts: Option<(Arc<dyn MultipartStore>, String)>) -> RemoteStore {
        RemoteStore {
            store,
            parts: parts.map(|(store, prefix)| PartsTarget { store, prefix }),
        }
    }

    fn target(&self) -> BlobResult<&PartsTarget> {
        self.parts
            .as_ref()
            .ok_or_else(|| BlobError::rejected("this store has no multipart uploads"))
    }
}

/// An `object_store` writer is an object writer.
#[async_trait]
impl ObjectWrite for BufWriter {
    async fn abort(&mut self) -> BlobResult<()> {
        BufWriter::abort(self).await.map_err(blob_error)
    }
}

#[async_trait]
impl BlobStore for RemoteStore {
    async fn put(&self, location: &str, data: Bytes) -> BlobResult<()> {
        self.store
            .put(&Path::from(location), data.into())
            .await
            .map(|_| ())
            .map_err(blob_error)
    }

    async fn size(&self, location: &str) -> BlobResult<u64> {
        let meta = self.store.head(&Path::from(location)).await.map_err(blob_error)?;
        Ok(meta.size)
    }

    async fn read(&self, location: &str) -> BlobResult<(ObjectReader, u64)> {
        let meta = self.store.head(&Path::from(location)).await.map_err(blob_error)?;
        let store: Arc<dyn ObjectStore> = self.store.clone();
        let reader = BufReader::with_capacity(store, &meta, STREAM_BUFFER);
        Ok((Box::pin(reader), meta.size))
    }

    async fn stream(&self, location: &str) -> BlobResult<(ByteStream, u64)> {
        let got = self.store.get(&Path::from(location)).await.map_err(blob_error)?;
        let size = got.meta.size;
        let stream = got.into_stream().map_err(io::Error::other).boxed();
        Ok((stream, size))
    }

    async fn read_range(&self, location: &str, range: Range<u64>) -> BlobResult<Bytes> {
        self.store
            .get_range(&Path::from(location), range)
            .await
            .map_err(blob_error)
    }

    fn list(&self, prefix: &str) -> BoxStream<'static, BlobResult<Listed>> {
        let prefix = Path::from(prefix.trim_end_matches('/'));
        self.store
            .list(Some(&prefix))
            .map(|meta| {
                let meta = meta.map_err(blob_error)?;
                Ok(Listed {
                    location: meta.location.to_string(),
                    size: meta.size,
                    modified_ms: meta.last_modified.timestamp_millis(),
                })
            })
            .boxed()
    }

    async fn delete(&self, location: &str) -> BlobResult<()> {
        self.store.delete(&Path::from(location)).await.map_err(blob_error)
    }

    async fn rename(&self, from: &str, to: &str) -> BlobResult<()> {
        self.store
            .rename(&Path::from(from), &Path::from(to))
            .await
            .map_err(blob_error)
    }

    fn writer(&self, location: &str) -> ObjectWriter {
        let store: Arc<dyn ObjectStore> = self.store.clone();
        Box::new(BufWriter::with_capacity(store, Path::from(location), PART_SIZE).with_max_concurrency(2))
    }

    fn parts(&self) -> Option<&dyn PartsStore> {
        self.parts.as_ref().map(|_| self as &dyn PartsStore)
    }
}

#[async_trait]
impl PartsStore for RemoteStore {
    async fn begin(&self, location: &str) -> BlobResult<String> {
        let t = self.target()?;
        let path = t.path(location);
        self.store
            .call("multipart_create", || t.store.create_multipart(&path))
            .await
            .map_err(blob_error)
    }

    async fn put_part(&self, location: &str, id: &str, index: usize, data: Vec<Bytes>) -> BlobResult<String> {
        let t = self.target()?;
        let path = t.path(location);
        let id = id.to_string();
        let payload: object_store::PutPayload = data.into_iter().collect();
        let part = self
            .store
            .call("multipart_part", || {
                t.store.put_part(&path, &id, index, payload.clone())
            })
            .await
            .map_err(blob_error)?;
        Ok(part.content_id)
    }

    async fn complete(&self, location: &str, id: &str, parts: Vec<String>) -> BlobResult<()> {
        let t = self.target()?;
        let path = t.path(location);
        let id = id.to_string();
        let parts: Vec<PartId> = parts.into_iter().map(|content_id| PartId { content_id }).collect();
        self.store
            .call("multipart_complete", || {
                t.store.complete_multipart(&path, &id, parts.clone())
            })
            .await
            .map(|_| ())
            .map_err(blob_error)
    }

    async fn abort(&self, location: &str, id: &str, raw: bool) -> BlobResult<()> {
        let t = self.target()?;
        let path = if raw { Path::from(location) } else { t.path(location) };
        let id = id.to_string();
        self.store
            .call("multipart_abort", || t.store.abort_multipart(&path, &id))
            .await
            .map_err(blob_error)
    }
}
