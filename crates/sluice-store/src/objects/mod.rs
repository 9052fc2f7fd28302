//! [`Objects`]: where containers and staged uploads live: a local
//! directory by default ([`local`], this crate's own), or an S3-compatible
//! bucket through the `object_store` crate ([`remote`], feature `remote`;
//! `s3` adds the AWS client). Both sit behind [`BlobStore`], so nothing
//! above this module sees the backend's crate.
//!
//! Layout: `staging/{tenant}/{job}` holds an upload until its job is done;
//! `objects/{tenant}/{job}-{attempt}.sluice` holds a container. A container
//! is written under a name no one else uses and becomes visible only when
//! the database points an object row at it, so a half-written container is
//! never served and a retried job never overwrites a finished one.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};

pub mod blob;
pub mod guard;
pub mod local;
#[cfg(feature = "remote")]
pub mod remote;
#[cfg(feature = "remote")]
pub mod resilient;
#[cfg(feature = "remote")]
pub mod tracked;

use crate::error::{Error, Result};
use blob::{BlobError, BlobStore, ByteStream, ObjectReader, ObjectWriter, PartsStore};
use guard::{BreakerState, Guard, Resilience};

/// Bytes buffered per reader or writer (memory per stream: this, not the object's size).
pub const STREAM_BUFFER: usize = 1 << 20;

/// A remote writer's part size: S3 refuses parts below 5 MiB (but the
/// last), and the writer buffers one part while two upload.
#[cfg(feature = "remote")]
pub const PART_SIZE: usize = 8 << 20;

/// Where markers of multipart uploads live (see `tracked`), under the
/// store's prefix.
pub const MARKERS: &str = "pending-multipart";

/// A marker: the multipart upload to abort if its writer never finished.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Marker {
    /// The object's path in the bucket (prefix included).
    pub path: String,
    /// The store's upload id.
    pub id: String,
}

/// Where the objects live, as named by a `--store` URL.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreLocation {
    /// A local directory (`file:///DIR`).
    Local(std::path::PathBuf),
    /// An S3-compatible bucket (`s3://BUCKET/PREFIX`); endpoint, region and
    /// credentials come from the standard `AWS_*` environment variables.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket (may be empty).
        prefix: String,
    },
}

impl StoreLocation {
    /// Parses `file:///DIR` or `s3://BUCKET[/PREFIX]`.
    pub fn parse(url: &str) -> Result<StoreLocation> {
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(Error::Config(format!(
                    "{url:?}: a file URL needs an absolute path (file:///DIR)"
                )));
            }
            return Ok(StoreLocation::Local(std::path::PathBuf::from(path)));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::Config(format!("{url:?}: no bucket (s3://BUCKET/PREFIX)")));
            }
            return Ok(StoreLocation::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        Err(Error::Config(format!(
            "{url:?}: expected file:///DIR or s3://BUCKET/PREFIX"
        )))
    }
}

/// The object store and the names the service uses in it.
#[derive(Debug, Clone)]
pub struct Objects {
    blobs: Arc<dyn BlobStore>,
    /// The backend's timeout, retries and breaker.
    guard: Arc<Guard>,
    /// The directory of a local store (a writer may write its files
    /// directly).
    local_root: Option<std::path::PathBuf>,
}

/// The smallest part S3 accepts in a multipart upload (but the last).
pub const S3_MIN_PART: u64 = 5 << 20;

impl Objects {
    /// A store in a local directory (created if missing), every call
    /// guarded by `resilience`.
    pub fn local(dir: &std::path::Path, resilience: Resilience) -> Result<Objects> {
        let guard = Arc::new(Guard::new("local", resilience));
        let local = local::LocalDir::new(dir, Arc::clone(&guard))
            .map_err(|e| Error::Config(format!("{}: {e}", dir.display())))?;
        Ok(Objects {
            blobs: Arc::new(local),
            guard,
            local_root: Some(dir.to_path_buf()),
        })
    }

    /// Opens the store at `location`, every call guarded by `resilience`.
    /// An S3 store reads its endpoint, region and credentials from the
    /// environment (`AWS_ENDPOINT_URL` or `AWS_ENDPOINT`, `AWS_REGION`,
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ALLOW_HTTP`).
    pub fn open(location: &StoreLocation, resilience: Resilience) -> Result<Objects> {
        match location {
            StoreLocation::Local(dir) => Objects::local(dir, resilience),
            StoreLocation::S3 { bucket, prefix } => Objects::s3(bucket, prefix, resilience),
        }
    }

    #[cfg(feature = "s3")]
    fn s3(bucket: &str, prefix: &str, resilience: Resilience) -> Result<Objects> {
        use object_store::ObjectStore;
        let s3 = Arc::new(
            object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()
                .map_err(|e| Error::Config(format!("S3 store: {e}")))?,
        );
        let tracked = Arc::new(tracked::Tracked::new(Arc::clone(&s3), prefix));
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            tracked
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(tracked, prefix))
        };
        let guard = Arc::new(Guard::new("s3", resilience));
        let store = Arc::new(resilient::Resilient::new(store, Arc::clone(&guard)));
        let remote = remote::RemoteStore::new(store, Some((s3, prefix.to_string())));
        Ok(Objects {
            blobs: Arc::new(remote),
            guard,
            local_root: None,
        })
    }

    #[cfg(not(feature = "s3"))]
    fn s3(_bucket: &str, _prefix: &str, _resilience: Resilience) -> Result<Objects> {
        Err(Error::Config(
            "this build has no S3 support (sluice-store's `s3` feature)".into(),
        ))
    }

    /// Wraps any `object_store` store (one whose completed writes are
    /// durable), every call guarded by `resilience`.
    #[cfg(feature = "remote")]
    pub fn new(store: Arc<dyn object_store::ObjectStore>, resilience: Resilience) -> Objects {
        Objects::remote(store, None, resilience)
    }

    /// Like [`Objects::new`], with the store's multipart API for resumable
    /// uploads (`store` and `multipart` the same store).
    #[cfg(feature = "remote")]
    pub fn with_multipart(
        store: Arc<dyn object_store::ObjectStore>,
        multipart: Arc<dyn object_store::multipart::MultipartStore>,
        resilience: Resilience,
    ) -> Objects {
        Objects::remote(store, Some((multipart, String::new())), resilience)
    }

    #[cfg(feature = "remote")]
    fn remote(
        store: Arc<dyn object_store::ObjectStore>,
        parts: Option<(Arc<dyn object_store::multipart::MultipartStore>, String)>,
        resilience: Resilience,
    ) -> Objects {
        let guard = Arc::new(Guard::new("remote", resilience));
        let store = Arc::new(resilient::Resilient::new(store, Arc::clone(&guard)));
        Objects {
            blobs: Arc::new(remote::RemoteStore::new(store, parts)),
            guard,
            local_root: None,
        }
    }

    /// The backend's circuit breaker state.
    pub fn breaker_state(&self) -> BreakerState {
        self.guard.state()
    }

    /// Whether the breaker lets calls through now (a worker claims no job
    /// while it does not: jobs wait in the queue instead of failing).
    pub fn available(&self) -> bool {
        self.guard.permits_calls()
    }

    /// The file behind `location` when the store is a local directory (a
    /// writer may then write it directly, with the CLI's overlapped
    /// write-back, and rename it into place).
    pub fn local_path(&self, location: &str) -> Option<std::path::PathBuf> {
        self.local_root.as_ref().map(|root| root.join(location))
    }

    /// Where a job's upload is staged.
    pub fn staging_path(tenant_id: &str, job_id: &str) -> String {
        format!("staging/{tenant_id}/{job_id}")
    }

    /// Where an attempt of a job writes its container.
    pub fn container_path(tenant_id: &str, job_id: &str, attempt: i64) -> String {
        format!("objects/{tenant_id}/{job_id}-{attempt}.sluice")
    }

    /// The name of a container kept in its object's database row (a small
    /// object's), never in the store: it names the object's identity (for
    /// caches keyed by location) and that it is kept there.
    pub fn inline_path(tenant_id: &str, job_id: &str, attempt: i64) -> String {
        format!("inline/{tenant_id}/{job_id}-{attempt}.sluice")
    }

    /// Whether `location` names a container kept in its database row.
    pub fn is_inline(location: &str) -> bool {
        location.starts_with("inline/")
    }

    /// The job id and attempt whose container `location` is (the inverse
    /// of [`Objects::container_path`], also for the `.partial` file a local
    /// store writes first); `None` for any other path.
    pub fn container_owner(location: &str) -> Option<(&str, i64)> {
        let name = location.strip_prefix("objects/")?.split_once('/')?.1;
        let name = name.strip_suffix(".partial").unwrap_or(name);
        let (job_id, attempt) = name.strip_suffix(".sluice")?.rsplit_once('-')?;
        Some((job_id, attempt.parse().ok()?))
    }

    /// A writer of a new object at `location` (multipart for large objects
    /// on S3; finished only by `shutdown`, abandoned on drop or abort).
    pub fn writer(&self, location: &str) -> ObjectWriter {
        self.blobs.writer(location)
    }

    /// A reader of `location` and its size.
    pub async fn reader(&self, location: &str) -> Result<(ObjectReader, u64)> {
        self.blobs.read(location).await.map_err(not_found)
    }

    /// The bytes of `location` as a stream, and its size.
    pub async fn stream(&self, location: &str) -> Result<(ByteStream, u64)> {
        self.blobs.stream(location).await.map_err(not_found)
    }

    /// The bytes of `range` of `location`.
    pub async fn read_range(&self, location: &str, range: std::ops::Range<u64>) -> Result<Bytes> {
        self.blobs.read_range(location, range).await.map_err(not_found)
    }

    /// Deletes `location`; a missing object is not an error.
    pub async fn delete(&self, location: &str) -> Result<()> {
        match self.blobs.delete(location).await {
            Ok(()) | Err(BlobError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Where part `number` of resumable upload `upload` is kept.
    pub fn upload_part_path(tenant_id: &str, upload: &str, number: i64) -> String {
        format!("uploads/{tenant_id}/{upload}/{number:08}")
    }

    /// The prefix of an upload's parts: a job's staging when it came from
    /// a resumable upload (a staging ending in `/` names parts, in order).
    pub fn upload_prefix(tenant_id: &str, upload: &str) -> String {
        format!("uploads/{tenant_id}/{upload}/")
    }

    /// Where a resumable upload whose parts are the parts of one multipart
    /// upload is assembled (under its parts' prefix, so that deleting
    /// those deletes it too).
    pub fn upload_whole_path(tenant_id: &str, upload: &str) -> String {
        format!("uploads/{tenant_id}/{upload}/whole")
    }

    /// Whether a resumable upload of parts of `part_size` bytes can send
    /// its parts straight into one multipart upload of the store: on S3,
    /// when the parts are at least S3's minimum. Otherwise each part is an
    /// object of its own, read in order by the job.
    pub fn multipart_parts(&self, part_size: u64) -> bool {
        self.blobs.parts().is_some() && part_size >= S3_MIN_PART
    }

    fn parts(&self) -> Result<&dyn PartsStore> {
        self.blobs
            .parts()
            .ok_or_else(|| Error::Config("this store has no multipart uploads".into()))
    }

    /// Starts a multipart upload to `location`; returns its id.
    pub async fn begin_parts(&self, location: &str) -> Result<String> {
        Ok(self.parts()?.begin(location).await?)
    }

    /// Uploads part `number` (0-based) of multipart upload `id`; returns
    /// the store's id for it. Sending a part again replaces it, so this is
    /// retried like any single request.
    pub async fn put_part(&self, location: &str, id: &str, number: i64, data: Vec<Bytes>) -> Result<String> {
        let index = usize::try_from(number).map_err(|_| Error::Config(format!("part number {number}")))?;
        Ok(self.parts()?.put_part(location, id, index, data).await?)
    }

    /// Completes multipart upload `id` from its parts' ids, in order.
    pub async fn complete_parts(&self, location: &str, id: &str, parts: Vec<String>) -> Result<()> {
        Ok(self.parts()?.complete(location, id, parts).await?)
    }

    /// Aborts multipart upload `id` (its parts are dropped); one already
    /// completed or aborted is not an error.
    pub async fn abort_parts(&self, location: &str, id: &str) -> Result<()> {
        match self.parts()?.abort(location, id, false).await {
            Ok(()) | Err(BlobError::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Multipart uploads whose writer was last heard of more than `age`
    /// ago (a node killed while writing): `(marker location, marker)`.
    pub async fn abandoned_multipart(&self, age: Duration) -> Result<Vec<(String, Marker)>> {
        let mut out = Vec::new();
        let markers: Vec<String> = self.older_than(MARKERS, age).try_collect().await?;
        for location in markers {
            let bytes = match self.blobs.stream(&location).await {
                Ok((stream, _)) => stream
                    .try_collect::<Vec<Bytes>>()
                    .await
                    .map_err(BlobError::failing)?
                    .concat(),
                Err(BlobError::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            match serde_json::from_slice::<Marker>(&bytes) {
                Ok(marker) => out.push((location, marker)),
                // Not a marker of ours: left alone.
                Err(_) => tracing::warn!(%location, "not a multipart marker"),
            }
        }
        Ok(out)
    }

    /// Aborts an abandoned multipart upload and deletes its marker (an
    /// upload already completed or aborted is not an error).
    pub async fn abort_abandoned(&self, location: &str, marker: &Marker) -> Result<()> {
        match self.parts()?.abort(&marker.path, &marker.id, true).await {
            Ok(()) | Err(BlobError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        self.delete(location).await
    }

    /// The size of `location`, if it exists.
    pub async fn size_of(&self, location: &str) -> Result<Option<u64>> {
        match self.blobs.size(location).await {
            Ok(size) => Ok(Some(size)),
            Err(BlobError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The objects under `prefix` and their sizes, sorted by name.
    pub async fn listed(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        let mut out: Vec<(String, u64)> = self
            .blobs
            .list(prefix)
            .map_ok(|l| (l.location, l.size))
            .try_collect()
            .await?;
        out.sort();
        Ok(out)
    }

    /// Deletes a staged upload: one object, or every part under a prefix
    /// ending in `/`. Missing objects are not an error.
    pub async fn delete_staging(&self, staging: &str) -> Result<()> {
        if !staging.ends_with('/') {
            return self.delete(staging).await;
        }
        for (location, _) in self.listed(staging).await? {
            self.delete(&location).await?;
        }
        Ok(())
    }

    /// The bytes of a staged upload as one stream: the object itself, or
    /// the parts under a prefix ending in `/`, in order (each fetched when
    /// the one before is done: memory stays one buffer). Only part names
    /// count (a scratch copy left by a cut-off resend does not), and the
    /// parts must add up to `expected_len`: a missing part is an error,
    /// never a shorter object.
    pub async fn staged_stream(&self, staging: &str, expected_len: u64) -> Result<ByteStream> {
        if !staging.ends_with('/') {
            return Ok(self.stream(staging).await?.0);
        }
        let parts: Vec<(String, u64)> = self
            .listed(staging)
            .await?
            .into_iter()
            .filter(|(location, _)| {
                let name = location.rsplit('/').next().unwrap_or_default();
                name.len() == 8 && name.bytes().all(|b| b.is_ascii_digit())
            })
            .collect();
        let total: u64 = parts.iter().map(|(_, size)| size).sum();
        if parts.is_empty() || total != expected_len {
            return Err(Error::NotFound(format!(
                "the parts of {staging:?} ({total} of {expected_len} bytes)"
            )));
        }
        let blobs = Arc::clone(&self.blobs);
        let stream = futures_util::stream::iter(parts)
            .then(move |(part, _)| {
                let blobs = Arc::clone(&blobs);
                async move {
                    blobs
                        .stream(&part)
                        .await
                        .map(|(stream, _)| stream)
                        .map_err(std::io::Error::other)
                }
            })
            .try_flatten();
        Ok(stream.boxed())
    }

    /// Moves `from` to `to`, replacing `to` (a rename on local disk, a
    /// server-side copy and delete on S3).
    pub async fn rename(&self, from: &str, to: &str) -> Result<()> {
        Ok(self.blobs.rename(from, to).await?)
    }

    /// Writes and deletes a probe object: is the store writable?
    pub async fn check_writable(&self) -> Result<()> {
        self.blobs.put("health/probe", Bytes::from_static(b"ok")).await?;
        self.blobs.delete("health/probe").await?;
        Ok(())
    }

    /// Staged uploads older than `age`: `(location, job id)`.
    pub async fn old_staging(&self, age: Duration) -> Result<Vec<(String, String)>> {
        self.older_than("staging", age)
            .try_filter_map(|l| async move {
                let job = l.rsplit('/').next().map(str::to_string);
                Ok(job.map(|job| (l, job)))
            })
            .try_collect()
            .await
    }

    /// Files of resumable uploads (parts, scratch copies of parts, assembled
    /// wholes) older than `age`: `(location, upload id)`, to be checked
    /// against the sessions.
    pub async fn old_upload_files(&self, age: Duration) -> Result<Vec<(String, String)>> {
        self.older_than("uploads", age)
            .try_filter_map(|l| async move {
                // uploads/{tenant}/{upload}/...
                let upload = l.split('/').nth(2).map(str::to_string);
                Ok(upload.map(|upload| (l, upload)))
            })
            .try_collect()
            .await
    }

    /// Containers older than `age` (to be checked against the object rows),
    /// as a stream: a store may hold millions.
    pub fn old_containers(&self, age: Duration) -> BoxStream<'static, Result<String>> {
        self.older_than("objects", age)
    }

    fn older_than(&self, prefix: &str, age: Duration) -> BoxStream<'static, Result<String>> {
        let cutoff = crate::now_ms() - i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
        self.blobs
            .list(prefix)
            .map_err(Error::from)
            .try_filter_map(move |l| async move { Ok((l.modified_ms <= cutoff).then_some(l.location)) })
            .boxed()
    }
}

fn not_found(e: BlobError) -> Error {
    match e {
        BlobError::NotFound(_) => Error::NotFound("stored object".into()),
        e => Error::Objects(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(feature = "remote")]
    use object_store::{multipart::MultipartStore, path::Path, ObjectStore};

    #[cfg(feature = "remote")]
    #[tokio::test]
    async fn a_writer_that_died_mid_multipart_is_found_and_aborted() {
        let mem = Arc::new(object_store::memory::InMemory::new());
        let tracked: Arc<dyn ObjectStore> = Arc::new(tracked::Tracked::new(Arc::clone(&mem), ""));
        let objects = Objects::with_multipart(tracked, mem.clone(), Resilience::default());
        let mut w = objects.writer("objects/t/j-1.sluice");
        tokio::io::AsyncWriteExt::write_all(&mut w, &vec![7u8; PART_SIZE * 2 + 10])
            .await
            .unwrap();
        drop(w); // killed: never shut down
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let abandoned = objects.abandoned_multipart(Duration::ZERO).await.unwrap();
        assert_eq!(abandoned.len(), 1, "{abandoned:?}");
        let (location, marker) = &abandoned[0];
        assert_eq!(marker.path, "objects/t/j-1.sluice");
        objects.abort_abandoned(location, marker).await.unwrap();
        assert!(objects.abandoned_multipart(Duration::ZERO).await.unwrap().is_empty());
        assert!(
            mem.abort_multipart(&Path::from(marker.path.as_str()), &marker.id)
                .await
                .is_err(),
            "aborted"
        );

        // A writer that finishes leaves no marker.
        let mut w = objects.writer("objects/t/j-2.sluice");
        tokio::io::AsyncWriteExt::write_all(&mut w, &vec![7u8; PART_SIZE * 2 + 10])
            .await
            .unwrap();
        tokio::io::AsyncWriteExt::shutdown(&mut w).await.unwrap();
        assert!(objects.abandoned_multipart(Duration::ZERO).await.unwrap().is_empty());
        assert_eq!(
            objects.size_of("objects/t/j-2.sluice").await.unwrap(),
            Some(PART_SIZE as u64 * 2 + 10)
        );
    }

    #[cfg(feature = "remote")]
    #[tokio::test]
    async fn parts_sent_in_any_order_and_again_become_one_object() {
        let mem = Arc::new(object_store::memory::InMemory::new());
        let objects = Objects::with_multipart(mem.clone(), mem, Resilience::default());
        assert!(objects.multipart_parts(S3_MIN_PART) && !objects.multipart_parts(S3_MIN_PART - 1));
        let at = Objects::upload_whole_path("t", "u");
        let id = objects.begin_parts(&at).await.unwrap();
        let part = |b: &'static [u8]| vec![bytes::Bytes::from_static(b)];
        let p2 = objects.put_part(&at, &id, 2, part(b"ghi")).await.unwrap();
        let _stale = objects.put_part(&at, &id, 0, part(b"XXX")).await.unwrap();
        let p0 = objects.put_part(&at, &id, 0, part(b"abc")).await.unwrap();
        let p1 = objects.put_part(&at, &id, 1, part(b"def")).await.unwrap();
        assert_eq!(
            objects.size_of(&at).await.unwrap(),
            None,
            "nothing visible before completion"
        );
        objects.complete_parts(&at, &id, vec![p0, p1, p2]).await.unwrap();
        assert_eq!(objects.size_of(&at).await.unwrap(), Some(9));
        let (stream, _) = objects.stream(&at).await.unwrap();
        let got: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
        assert_eq!(got.concat(), b"abcdefghi");
        objects.delete_staging(&Objects::upload_prefix("t", "u")).await.unwrap();
        assert_eq!(objects.size_of(&at).await.unwrap(), None);

        // Aborted: its parts are gone and it cannot be completed.
        let id = objects.begin_parts(&at).await.unwrap();
        let p0 = objects.put_part(&at, &id, 0, part(b"abc")).await.unwrap();
        objects.abort_parts(&at, &id).await.unwrap();
        assert!(objects.complete_parts(&at, &id, vec![p0]).await.is_err());
        assert_eq!(objects.size_of(&at).await.unwrap(), None);

        let plain = Objects::new(Arc::new(object_store::memory::InMemory::new()), Resilience::default());
        assert!(!plain.multipart_parts(64 << 20));
        assert!(plain.begin_parts("x").await.is_err());
    }

    #[tokio::test]
    async fn staged_parts_are_read_in_order_without_scratch_copies_and_must_add_up() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Objects::local(dir.path(), Resilience::default()).unwrap();
        let put = |name: &'static str, data: &'static [u8]| {
            let blobs = Arc::clone(&objects.blobs);
            async move { blobs.put(name, Bytes::from_static(data)).await.unwrap() }
        };
        put("uploads/t/u/00000001", b"de").await;
        put("uploads/t/u/00000000", b"abc").await;
        // A resend cut off before its rename: not a part.
        put("uploads/t/u/00000001.01a2b3", b"JUNK").await;
        let stream = objects.staged_stream("uploads/t/u/", 5).await.unwrap();
        let got: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
        assert_eq!(got.concat(), b"abcde");
        assert!(
            objects.staged_stream("uploads/t/u/", 6).await.is_err(),
            "a missing part is an error, not a shorter object"
        );
        objects.delete_staging("uploads/t/u/").await.unwrap();
        assert!(objects.staged_stream("uploads/t/u/", 5).await.is_err());
    }
}
