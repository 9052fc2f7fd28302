//! [`Tracked`]: multipart uploads that can be found again. A node killed
//! while it writes a large object (a staged upload, a container) leaves an
//! S3 multipart upload behind, invisible, billed, and never completed;
//! `object_store` neither names it to the caller nor lists a bucket's
//! multipart uploads. So each one this store starts is recorded in a small
//! marker object (`pending-multipart/…`: its path and upload id), deleted
//! when the upload completes or is aborted, and written again with each
//! part, so its age is the time since the writer was last heard of. The
//! reaper aborts the uploads of markers older than
//! `--reaper-multipart-age-secs` ([`Objects::abandoned_multipart`]).
//!
//! [`Objects::abandoned_multipart`]: crate::Objects::abandoned_multipart

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, UploadPart,
};

use super::{Marker, MARKERS};

/// An object store whose multipart uploads leave markers.
pub struct Tracked<T> {
    inner: Arc<T>,
    /// The prefix the service's names live under (markers go there too).
    prefix: String,
}

impl<T> fmt::Debug for Tracked<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracked").field("prefix", &self.prefix).finish()
    }
}

impl<T> fmt::Display for Tracked<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tracked({})", self.prefix)
    }
}

impl<T: ObjectStore + MultipartStore> Tracked<T> {
    /// Wraps `inner`; markers go under `prefix/pending-multipart/`.
    pub fn new(inner: Arc<T>, prefix: &str) -> Tracked<T> {
        Tracked {
            inner,
            prefix: prefix.trim_matches('/').to_string(),
        }
    }

    fn marker_path(&self, path: &Path, id: &str) -> Path {
        let name = blake3::hash(format!("{path}\n{id}").as_bytes()).to_hex();
        if self.prefix.is_empty() {
            Path::from(format!("{MARKERS}/{name}"))
        } else {
            Path::from(format!("{}/{MARKERS}/{name}", self.prefix))
        }
    }
}

struct TrackedUpload<T> {
    inner: Arc<T>,
    path: Path,
    id: String,
    marker: Path,
    record: Bytes,
    next: usize,
    parts: Arc<Mutex<Vec<Option<PartId>>>>,
}

impl<T> fmt::Debug for TrackedUpload<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackedUpload").field("path", &self.path).finish()
    }
}

#[async_trait]
impl<T: ObjectStore + MultipartStore> MultipartUpload for TrackedUpload<T> {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let idx = self.next;
        self.next += 1;
        let (inner, path, id, parts) = (
            Arc::clone(&self.inner),
            self.path.clone(),
            self.id.clone(),
            Arc::clone(&self.parts),
        );
        let (marker, record) = (self.marker.clone(), self.record.clone());
        Box::pin(async move {
            let part = inner.put_part(&path, &id, idx, data).await?;
            // Still alive: the marker's age restarts.
            inner.put(&marker, record.into()).await?;
            let mut parts = parts.lock().unwrap_or_else(|e| e.into_inner());
            if parts.len() <= idx {
                parts.resize(idx + 1, None);
            }
            parts[idx] = Some(part);
            Ok(())
        })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let parts: Option<Vec<PartId>> = {
            let parts = self.parts.lock().unwrap_or_else(|e| e.into_inner());
            (0..self.next).map(|i| parts.get(i).cloned().flatten()).collect()
        };
        let parts = parts.ok_or_else(|| object_store::Error::Generic {
            store: "tracked",
            source: "a part of the upload did not finish".into(),
        })?;
        let done = self.inner.complete_multipart(&self.path, &self.id, parts).await?;
        // A marker left behind only costs the reaper a no-op abort.
        let _ = self.inner.delete(&self.marker).await;
        Ok(done)
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort_multipart(&self.path, &self.id).await?;
        let _ = self.inner.delete(&self.marker).await;
        Ok(())
    }
}

#[async_trait]
impl<T: ObjectStore + MultipartStore> ObjectStore for Tracked<T> {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let id = self.inner.create_multipart_opts(location, opts).await?;
        let marker = self.marker_path(location, &id);
        let record = Marker {
            path: location.to_string(),
            id: id.clone(),
        };
        let body = Bytes::from(serde_json::to_vec(&record).map_err(|e| object_store::Error::Generic {
            store: "tracked",
            source: Box::new(e),
        })?);
        if let Err(e) = self.inner.put(&marker, body.clone().into()).await {
            let _ = self.inner.abort_multipart(location, &id).await;
            return Err(e);
        }
        Ok(Box::new(TrackedUpload {
            inner: Arc::clone(&self.inner),
            path: location.clone(),
            id,
            marker,
            record: body,
            next: 0,
            parts: Arc::new(Mutex::new(Vec::new())),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use object_store::memory::InMemory;

    async fn markers(store: &InMemory) -> Vec<Path> {
        store
            .list(Some(&Path::from(format!("p/{MARKERS}"))))
            .map(|m| m.unwrap().location)
            .collect()
            .await
    }

    #[tokio::test]
    async fn a_multipart_upload_is_marked_until_it_completes_or_is_aborted() {
        let mem = Arc::new(InMemory::new());
        let tracked = Tracked::new(Arc::clone(&mem), "p/");
        let mut up = tracked.put_multipart(&Path::from("p/objects/a")).await.unwrap();
        up.put_part(Bytes::from_static(b"abc").into()).await.unwrap();
        up.put_part(Bytes::from_static(b"def").into()).await.unwrap();
        let marked = markers(&mem).await;
        assert_eq!(marked.len(), 1, "marked while in progress");
        let record: Marker =
            serde_json::from_slice(&mem.get(&marked[0]).await.unwrap().bytes().await.unwrap()).unwrap();
        assert_eq!(record.path, "p/objects/a");
        up.complete().await.unwrap();
        assert!(markers(&mem).await.is_empty(), "unmarked once complete");
        let got = mem
            .get(&Path::from("p/objects/a"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&got[..], b"abcdef");

        // A writer that died: the reaper's abort removes upload and marker.
        let mut up = tracked.put_multipart(&Path::from("p/objects/b")).await.unwrap();
        up.put_part(Bytes::from_static(b"xyz").into()).await.unwrap();
        drop(up);
        let marked = markers(&mem).await;
        let record: Marker =
            serde_json::from_slice(&mem.get(&marked[0]).await.unwrap().bytes().await.unwrap()).unwrap();
        assert_eq!(record.path, "p/objects/b");
        mem.abort_multipart(&Path::from(record.path.as_str()), &record.id)
            .await
            .unwrap();
    }
}
