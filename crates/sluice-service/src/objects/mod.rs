//! Objects: uploads (which become jobs), stored containers, restored
//! content (whole or by byte range), listing, deletion and verification —
//! what every face offers, in one place. Writing goes through
//! [`write`](mod@write), reading through [`read`](mod@read).

pub(crate) mod download;

pub use download::BodyEncoding;
pub(crate) mod encode;
mod md5;
pub mod meta;
pub mod read;
pub(crate) mod sink;
pub(crate) mod small;
pub mod write;

use std::ops::Range;
use std::sync::Arc;

use sluice_engine::Archive;
use sluice_store::{JobKind, ObjectInfo, Objects, Scope};

use crate::auth::Caller;
use crate::body::{Body, ByteStream};
use crate::jobs::{page, page_size, Job, Page};
use crate::tenants::limits::BodyLimit;
use crate::transfers::Direction;
use crate::{Error, Result, Service};

/// How long a transfer waits for memory for its first chunk before it is
/// refused.
const FIRST_CHUNK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
/// Longest object key, bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// Longest key stored: a bucket name, `/` and S3's longest key.
pub const MAX_STORED_KEY_LEN: usize = 63 + 1 + 1024;
/// How long a waiting upload waits for a job slot the dispatcher holds
/// only while it claims.
const CLAIM_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// An upload of one object.
#[derive(Debug, Clone, Default)]
pub struct Put {
    /// The object's key.
    pub key: String,
    /// The pipeline to store it through (`default` if none).
    pub pipeline: Option<String>,
    /// Answer only once the object is stored (and readable).
    pub wait: bool,
    /// The BLAKE3 (hex) the original must have.
    pub expected_blake3: Option<String>,
    /// The body's length, if the client announced it.
    pub declared_len: Option<u64>,
    /// Content headers and user metadata to store with it.
    pub meta: meta::ObjectMeta,
    /// Compute the plaintext's MD5 as it streams in (the object's ETag).
    pub md5: bool,
    /// The MD5 the plaintext must have (`Content-MD5`); implies `md5`.
    pub expected_md5: Option<[u8; 16]>,
    /// A checksum the face computes as the body streams in, kept with the
    /// object once the body has ended.
    pub late_checksum: Option<LateChecksum>,
}

/// A checksum a face computes while a body streams in (S3's
/// `x-amz-checksum-*`, from a header or a trailer), known once the body
/// has ended: `(algorithm, value)` to keep in the object's metadata, or
/// `None`. It is written with the object itself, in the same commit.
#[derive(Clone)]
pub struct LateChecksum(pub Arc<dyn Fn() -> Option<(String, String)> + Send + Sync>);

impl std::fmt::Debug for LateChecksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LateChecksum")
    }
}

impl LateChecksum {
    /// Adds the checksum (if known) to `meta`, the row form of an
    /// object's metadata or of what its job carries (`carried`).
    pub(crate) fn apply(late: Option<&LateChecksum>, row: Option<String>, carried: bool) -> Option<String> {
        let Some((algo, value)) = late.and_then(|l| (l.0)()) else {
            return row;
        };
        if carried {
            let mut c = meta::Carried::from_row(row.as_deref());
            c.meta.checksums.insert(algo, value);
            c.to_row()
        } else {
            let mut m = meta::ObjectMeta::from_row(row.as_deref());
            m.checksums.insert(algo, value);
            m.to_row()
        }
    }
}

/// How an accepted upload stands.
#[derive(Debug, Clone)]
pub enum Stored {
    /// Stored: the object is durable and readable.
    Now(Job),
    /// Accepted (durably staged): its job is queued.
    Queued(Job),
}

/// A byte range asked of an object's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// From `first` to the end.
    From(u64),
    /// From `first` to `last`, both included.
    Span {
        /// First byte.
        first: u64,
        /// Last byte (clipped to the content).
        last: u64,
    },
    /// The last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// The bytes this range means in content of `len` bytes, or `None` if
    /// it holds none of them.
    pub fn resolve(self, len: u64) -> Option<Range<u64>> {
        let range = match self {
            ByteRange::From(first) => first..len,
            ByteRange::Span { first, last } => first..last.saturating_add(1).min(len),
            ByteRange::Suffix(0) => return None,
            ByteRange::Suffix(n) => len.saturating_sub(n)..len,
        };
        (range.start < range.end).then_some(range)
    }
}

/// An object's content on its way out.
pub struct Content {
    /// The object.
    pub object: ObjectInfo,
    /// The bytes sent: `None` for all of them.
    pub range: Option<Range<u64>>,
    /// How the body is encoded.
    pub encoding: BodyEncoding,
    /// The bytes.
    pub body: ByteStream,
}

/// The largest chunk whose zstd frames are sent as a `zstd` content
/// encoding: a frame's window is its chunk, and RFC 8878 asks HTTP
/// decoders (browsers) to accept windows of 8 MiB, not more.
const MAX_ENCODED_CHUNK: usize = 8 << 20;

/// Checks an object key as every face may write it: 1 to
/// [`MAX_STORED_KEY_LEN`] bytes of UTF-8 with no control character (S3's
/// keys are nearly anything; a bucket's objects are `BUCKET/KEY`).
pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_STORED_KEY_LEN {
        return Err(Error::InvalidKey(format!("must be 1 to {MAX_STORED_KEY_LEN} bytes")));
    }
    if key.chars().any(char::is_control) {
        return Err(Error::InvalidKey("no control characters".into()));
    }
    Ok(())
}

/// Checks a key the native API creates: 1..=1024 bytes of `A-Z a-z 0-9 .
/// _ - /`, no empty, `.` or `..` segment, not ending in a `content` or
/// `verify` segment (the native API's routes end so). Objects the S3 face
/// stored under other keys are still read, listed and deleted natively.
pub fn check_native_key(key: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::InvalidKey(why.to_string()));
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return bad("must be 1 to 1024 bytes");
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
    {
        return bad("only letters, digits, '.', '_', '-' and '/' are allowed");
    }
    if key.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return bad("no empty, '.' or '..' path segment (and no leading or trailing '/')");
    }
    if key.ends_with("/content") || key.ends_with("/verify") || key == "content" || key == "verify" {
        return bad("may not end in a 'content' or 'verify' segment");
    }
    Ok(())
}

/// A BLAKE3 digest as 64 lowercase hex digits, or why it is not one.
pub fn check_blake3(digest: &str) -> Result<String> {
    let d = digest.trim().to_ascii_lowercase();
    if d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::BadRequest("a BLAKE3 digest is 64 hex digits".into()));
    }
    Ok(d)
}

impl Service {
    /// Takes an upload: with `wait` and a job slot free, processed while it
    /// streams in; otherwise staged durably and queued (and, with `wait`,
    /// answered once its job is done).
    pub async fn put_object(&self, caller: &Caller, put: Put, body: Body) -> Result<Stored> {
        let who = caller.require(Scope::Write)?;
        check_key(&put.key)?;
        // A failing store: answer at once rather than take a body it cannot
        // keep (a small one lives in the database, not the store).
        let may_be_small = self.may_be_small(put.declared_len);
        if !may_be_small {
            self.require_storage()?;
        }
        // Held until the body is stored (and, with `wait`, processed).
        let _transfer = self.transfers.enter(&who.tenant_id, Direction::Upload)?;
        let pipeline = put.pipeline.as_deref().unwrap_or("default");
        if !self.pipeline_cached(&who.tenant_id, pipeline) {
            self.db.pipeline(&who.tenant_id, pipeline).await?;
        }
        let expected_digest = put.expected_blake3.as_deref().map(check_blake3).transpose()?;
        let max_upload = self.config.max_upload_bytes;
        if put.declared_len.is_some_and(|len| len > max_upload) {
            return Err(Error::upload(BodyLimit::bytes(max_upload).exceeded()));
        }
        let stored = match self.limits.of(&who.tenant_id).quota_bytes {
            Some(_) => self.db.stored_bytes(&who.tenant_id).await?.max(0) as u64,
            None => 0,
        };
        // Counts against the quota until the upload is stored or refused.
        let reservation = self.limits.reserve(&who.tenant_id, stored, put.declared_len)?;
        let limit = BodyLimit::new(max_upload, &reservation);
        put.meta.check()?;
        let mut job = self.new_job(&who.tenant_id, JobKind::Process, &put.key, pipeline)?;
        job.expected_digest = expected_digest;
        job.meta = meta::Carried {
            meta: put.meta.clone(),
            md5: put.md5 || put.expected_md5.is_some(),
            expected_md5: put.expected_md5.map(hex::encode),
            ..meta::Carried::default()
        }
        .to_row();
        // A small body: stored on arrival, waiting or not (the job it
        // answers with has already succeeded).
        let body = match may_be_small {
            true => match self.read_small(body, &limit).await? {
                small::Read::Whole(data) => {
                    self.admit_running(&who.tenant_id)?;
                    job.meta = LateChecksum::apply(put.late_checksum.as_ref(), job.meta, true);
                    let job = self.store_small(job, data).await?;
                    return Ok(if put.wait {
                        Stored::Now(job)
                    } else {
                        Stored::Queued(job)
                    });
                }
                small::Read::Large(body) => {
                    self.require_storage()?;
                    body
                }
            },
            false => body,
        };
        // A client that waits, with a job slot free (and its tenant within
        // its share of them): process while it streams in.
        if put.wait {
            if let Some(place) = self.streamed.try_take(&who.tenant_id) {
                if let Some(slot) = self.free_job_slot().await {
                    self.admit_running(&who.tenant_id)?;
                    let result = self
                        .process_streaming(job, body, limit, put.late_checksum.clone())
                        .await;
                    drop((slot, place));
                    return result.map(Stored::Now);
                }
            }
        }
        let mut admitted = self.admit(job)?;
        let staging = Objects::staging_path(&who.tenant_id, &admitted.job.id);
        let (received, _, _) = write::store_body(self, body, &staging, &limit, false, None).await?;
        admitted.job.staging = Some(staging);
        admitted.job.staged_bytes = received as i64;
        admitted.job.meta = LateChecksum::apply(put.late_checksum.as_ref(), admitted.job.meta.take(), true);
        // On an error the staged upload stays: the insert may have
        // committed although its answer was lost, and then the queued job
        // needs it. If no job points at it, the reaper deletes it.
        let job = admitted.enqueue().await?;
        // Queued: its bytes are now counted as staged, not reserved.
        drop(reservation);
        tracing::info!(job = %job.id, tenant = %who.tenant_name, bytes = received, "upload staged");
        if put.wait {
            return self.wait_for_job(&who.tenant_id, &job.id).await.map(Stored::Now);
        }
        Ok(Stored::Queued(job))
    }

    /// A job slot of this node, if one is free. The dispatcher holds every
    /// free slot for the moment of its claim query, so while fewer jobs
    /// run here than there are slots, a slot is waited for briefly rather
    /// than the upload sent the slower, staged way.
    async fn free_job_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        if let Ok(slot) = Arc::clone(&self.job_slots).try_acquire_owned() {
            return Some(slot);
        }
        if self.running.len() >= self.config.max_running_jobs {
            return None;
        }
        let wait = Arc::clone(&self.job_slots).acquire_owned();
        tokio::time::timeout(CLAIM_WAIT, wait).await.ok()?.ok()
    }

    /// A stored object of the caller's tenant.
    pub async fn object(&self, caller: &Caller, key: &str) -> Result<ObjectInfo> {
        let who = caller.require(Scope::Read)?;
        check_key(key).map_err(|_| Error::NotFound(format!("object {key:?}")))?;
        Ok(self.db.object(&who.tenant_id, key).await?)
    }

    /// The caller's objects whose key starts with `prefix`, in key order.
    pub async fn objects(
        &self,
        caller: &Caller,
        prefix: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<ObjectInfo>> {
        let who = caller.require(Scope::Read)?;
        let limit = page_size(limit)?;
        let objects = self.db.objects(&who.tenant_id, prefix, cursor, limit).await?;
        Ok(page(objects, limit, |o| o.key.clone()))
    }

    /// An object's stored container, as bytes, with its length.
    pub async fn container(&self, caller: &Caller, key: &str) -> Result<(ObjectInfo, ByteStream, u64)> {
        let (o, inline) = self.object_with_container(caller, key).await?;
        if let Some(bytes) = inline {
            let size = bytes.len() as u64;
            let stream = futures_util::stream::once(async move { Ok(bytes) });
            return Ok((o, Box::pin(stream), size));
        }
        let (stream, size) = self.objects.stream(&o.location).await?;
        Ok((o, stream, size))
    }

    /// A stored object of the caller's tenant, with its container if that
    /// is kept in its row (a small object's).
    async fn object_with_container(&self, caller: &Caller, key: &str) -> Result<(ObjectInfo, Option<bytes::Bytes>)> {
        let who = caller.require(Scope::Read)?;
        check_key(key).map_err(|_| Error::NotFound(format!("object {key:?}")))?;
        let (o, inline) = self.db.object_with_container(&who.tenant_id, key).await?;
        Ok((o, inline.map(bytes::Bytes::from)))
    }

    /// Runs CPU work `f` (about `cost` bytes' worth) for `caller` on the
    /// CPU pool, in its tenant's lane: for a face's own per-request
    /// computing (hashing a body with an algorithm the core does not).
    pub async fn compute<T: Send + 'static>(
        &self,
        caller: &Caller,
        cost: u64,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let pool = self.engine.pool();
        let lane = self.lanes.of(caller.tenant(), pool);
        pool.run(lane, cost, f).await.map_err(Error::internal)
    }

    /// Changes a stored object's metadata with `change` (its tags, say),
    /// without rewriting it; retried if the object is replaced meanwhile.
    pub async fn update_object_meta(
        &self,
        caller: &Caller,
        key: &str,
        change: impl Fn(&mut meta::ObjectMeta),
    ) -> Result<ObjectInfo> {
        let who = caller.require(Scope::Write)?;
        for _ in 0..8 {
            let mut o = self.object(caller, key).await?;
            let mut m = meta::ObjectMeta::from_row(o.meta.as_deref());
            change(&mut m);
            m.check()?;
            o.meta = m.to_row();
            if self
                .db
                .set_object_meta(&who.tenant_id, key, &o.job_id, o.meta.as_deref())
                .await?
            {
                return Ok(o);
            }
        }
        Err(Error::Unavailable)
    }

    /// Deletes an object, ordered after every upload of its key accepted
    /// before: their jobs, finishing later, do not bring it back. Its
    /// container is retired (readers that already looked it up finish;
    /// the reaper deletes it after the grace period).
    pub async fn delete_object(&self, caller: &Caller, key: &str) -> Result<()> {
        let who = caller.require(Scope::Write)?;
        check_key(key).map_err(|_| Error::NotFound(format!("object {key:?}")))?;
        Ok(self.db.delete_object(&who.tenant_id, key).await?)
    }

    /// Queues a verify job of an object.
    pub async fn verify_object(&self, caller: &Caller, key: &str) -> Result<Job> {
        let who = caller.require(Scope::Write)?;
        let o = self.object(caller, key).await?;
        let job = self.new_job(&who.tenant_id, JobKind::Verify, &o.key, &o.pipeline)?;
        self.admit(job)?.enqueue().await
    }

    /// An object's content, restored: all of it, or the bytes of `range`
    /// (reading only the chunks they are in).
    pub async fn content(&self, caller: &Caller, key: &str, range: Option<ByteRange>) -> Result<Content> {
        self.content_accepting(caller, key, range, false).await
    }

    /// [`Service::content`], sent as zstd frames ([`BodyEncoding::Zstd`])
    /// when the client accepts them (`accepts_zstd`) and they serve it: the
    /// whole object, stored in zstd chunks of at most 8 MiB, with no
    /// content encoding of its own. The server then decrypts and never
    /// decompresses, the network carries the compressed bytes, and the
    /// client's cores decompress.
    pub async fn content_accepting(
        &self,
        caller: &Caller,
        key: &str,
        range: Option<ByteRange>,
        accepts_zstd: bool,
    ) -> Result<Content> {
        let (o, inline) = self.object_with_container(caller, key).await?;
        let len = o.plaintext_len as u64;
        let range = match range {
            Some(r) => Some(r.resolve(len).ok_or(Error::RangeNotSatisfiable { len })?),
            None => None,
        };
        let permit = self.transfers.enter(caller.tenant(), Direction::Download)?;
        if let Some(container) = inline {
            let bytes = self.small_content(caller, &o, container, range.clone()).await?;
            metrics::counter!("sluice_download_bytes_total", "encoding" => BodyEncoding::Identity.as_str())
                .increment(bytes.len() as u64);
            drop(permit);
            return Ok(Content {
                object: o,
                range,
                encoding: BodyEncoding::Identity,
                body: Box::pin(futures_util::stream::once(async move { Ok(bytes) })),
            });
        }
        let archive = self.opened_archive(caller, &o).await?;
        let chunk_size = archive.header().chunk_size.bytes();
        let encoding = if accepts_zstd
            && range.is_none()
            && len > 0
            && archive.header().compression.codec == sluice_engine::format::Codec::Zstd
            && chunk_size <= MAX_ENCODED_CHUNK
            && meta::ObjectMeta::from_row(o.meta.as_deref()).content_encoding.is_none()
        {
            BodyEncoding::Zstd
        } else {
            BodyEncoding::Identity
        };
        // The first chunk's memory before answering: a node (or a tenant)
        // whose transfers hold all of it answers 503 (429) now, not with a
        // body that never starts.
        let reading = range.clone().unwrap_or(0..len);
        let first_bytes = download::first_chunk_bytes(&archive, &reading);
        let first = self.memory.hold(caller.tenant(), first_bytes, FIRST_CHUNK_WAIT).await?;
        let d = download::Download {
            range: reading,
            whole: range.is_none(),
            encoding,
            archive,
            objects: self.objects.clone(),
            location: o.location.clone(),
            pool: Arc::clone(self.engine.pool()),
            lane: self.lanes.of(caller.tenant(), self.engine.pool()),
            window: self.engine.in_flight_for(chunk_size),
            tenant_id: caller.tenant().to_string(),
            memory: Arc::clone(&self.memory),
            first: Some(first),
            memory_wait: self.config.idle_body_timeout,
            permit: Some(permit),
        };
        let body = download::stream(d)?;
        Ok(Content {
            object: o,
            range,
            encoding,
            body: Box::pin(body),
        })
    }

    /// Where an encode of `tenant_id` with `opts` runs: the tenant's lane,
    /// as many chunks in flight as the memory budget allows.
    pub(crate) fn encode_lanes<'a>(
        &'a self,
        tenant_id: &'a str,
        opts: &sluice_engine::EncodeOptions,
    ) -> encode::Lanes<'a> {
        let pool = self.engine.pool();
        encode::Lanes {
            pool,
            lane: self.lanes.of(tenant_id, pool),
            window: self.engine.in_flight_for(opts.params.chunk_size.bytes()),
            tenant_id,
            memory: &self.memory,
            memory_wait: self.config.idle_body_timeout,
        }
    }

    /// The object's container opened for reads: from the cache, or opened
    /// now (ranged reads and the CPU pool, no thread held) and cached.
    async fn opened_archive(&self, caller: &Caller, o: &ObjectInfo) -> Result<Archive<()>> {
        if let Some(a) = self.opened.get(&o.location) {
            return Ok(a);
        }
        let keys = self.keyring_for(caller.tenant(), o.encrypted).await?;
        let pool = self.engine.pool();
        let lane = self.lanes.of(caller.tenant(), pool);
        let (a, _) = download::open(&self.objects, &o.location, keys, pool, lane).await?;
        self.opened.insert(&o.location, &a);
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in ["a", "backups/2026/db.dump", "x-1_2.tar.zst"] {
            assert!(check_native_key(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/abs",
            "a//b",
            "a/../b",
            "..",
            "a/",
            "sp ace",
            "a/content",
            "verify",
            "é",
        ] {
            assert!(check_native_key(bad).is_err(), "{bad}");
            if !bad.is_empty() {
                assert!(check_key(bad).is_ok(), "any face may store {bad:?}");
            }
        }
        assert!(check_native_key(&"k".repeat(1025)).is_err());
        assert!(check_key(&"k".repeat(MAX_STORED_KEY_LEN)).is_ok());
        assert!(check_key(&"k".repeat(MAX_STORED_KEY_LEN + 1)).is_err());
        assert!(check_key("tab\there").is_err());
    }

    #[test]
    fn ranges_resolve_against_the_length() {
        assert_eq!(ByteRange::Span { first: 0, last: 9 }.resolve(100), Some(0..10));
        assert_eq!(ByteRange::From(90).resolve(100), Some(90..100));
        assert_eq!(ByteRange::Suffix(10).resolve(100), Some(90..100));
        assert_eq!(ByteRange::Suffix(1000).resolve(100), Some(0..100));
        assert_eq!(ByteRange::Span { first: 50, last: 500 }.resolve(100), Some(50..100));
        assert_eq!(ByteRange::From(100).resolve(100), None);
        assert_eq!(ByteRange::Span { first: 5, last: 2 }.resolve(100), None);
        assert_eq!(ByteRange::Suffix(0).resolve(100), None);
    }

    #[test]
    fn digests_are_64_hex_digits() {
        assert_eq!(check_blake3(&"AB".repeat(32)).unwrap(), "ab".repeat(32));
        assert!(check_blake3("abc").is_err());
        assert!(check_blake3(&"zz".repeat(32)).is_err());
    }
}

#[cfg(test)]
mod overwrite_tests {
    use std::time::Duration;

    use bytes::Bytes;
    use sluice_store::Scope;

    use super::*;
    use crate::testing::TestService;
    use crate::Settings;

    fn body(data: &'static [u8]) -> Body {
        Box::pin(futures_util::stream::iter([Ok(Bytes::from_static(data))]))
    }

    async fn content_of(t: &TestService, caller: &Caller, key: &str) -> Vec<u8> {
        let mut c = t.service.content(caller, key, None).await.unwrap();
        let mut all = Vec::new();
        while let Some(chunk) = futures_util::StreamExt::next(&mut c.body).await {
            all.extend_from_slice(&chunk.unwrap());
        }
        all
    }

    /// #23: a reader that looked an object up before an overwrite committed
    /// still finds the container it was told about; the reaper deletes it
    /// only after the grace period.
    #[tokio::test]
    async fn a_reader_of_the_replaced_object_can_still_read_it() {
        // Containers in the store (a small object's lives in its row, read
        // with it: nothing to retire).
        let t = TestService::start(Settings {
            retired_grace_secs: Some(1),
            small_object_max: Some(0),
            ..Settings::default()
        })
        .await;
        let caller = t.caller(&t.tenant("acme", Scope::Write).await).await;
        let put = |data| {
            let put = Put {
                key: "k".into(),
                wait: true,
                ..Put::default()
            };
            t.service.put_object(&caller, put, body(data))
        };
        assert!(matches!(put(b"first version").await.unwrap(), Stored::Now(_)));
        // A reader looks the object up ...
        let seen = t.service.object(&caller, "k").await.unwrap();
        // ... an overwrite commits ...
        assert!(matches!(put(b"second version").await.unwrap(), Stored::Now(_)));
        // ... and the reader goes on to read what it was told about.
        let (_, size) = t
            .service
            .objects
            .reader(&seen.location)
            .await
            .expect("the old container is kept");
        assert_eq!(size as i64, seen.container_len);
        assert_eq!(content_of(&t, &caller, "k").await, b"second version");
        // A delete retires the container likewise.
        let now = t.service.object(&caller, "k").await.unwrap();
        t.service.delete_object(&caller, "k").await.unwrap();
        assert!(t.service.objects.reader(&now.location).await.is_ok());
        // Past the grace period the reaper reclaims both.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let removed = crate::jobs::reaper::reap(&t.service, Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(removed, 2);
        for gone in [&seen.location, &now.location] {
            assert!(matches!(
                t.service.objects.reader(gone).await,
                Err(sluice_store::Error::NotFound(_))
            ));
        }
        t.stop().await;
    }

    /// A backlog of retired containers larger than one batch is cleared in
    /// one pass, not one batch a pass.
    #[tokio::test]
    async fn retired_containers_past_one_batch_are_all_reaped_in_a_pass() {
        let t = TestService::start(Settings {
            retired_grace_secs: Some(0),
            small_object_max: Some(0),
            ..Settings::default()
        })
        .await;
        let caller = t.caller(&t.tenant("acme", Scope::Write).await).await;
        let mut replaced = Vec::new();
        let versions: [&'static [u8]; 4] = [b"version 0", b"version 1", b"version 2", b"version 3"];
        for version in versions {
            if let Ok(o) = t.service.object(&caller, "k").await {
                replaced.push(o.location);
            }
            let put = Put {
                key: "k".into(),
                wait: true,
                ..Put::default()
            };
            let stored = t.service.put_object(&caller, put, body(version)).await.unwrap();
            assert!(matches!(stored, Stored::Now(_)));
        }
        assert_eq!(replaced.len(), 3);
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(crate::jobs::reaper::reap_retired(&t.service, 2).await.unwrap(), 3);
        for gone in &replaced {
            assert!(matches!(
                t.service.objects.reader(gone).await,
                Err(sluice_store::Error::NotFound(_))
            ));
        }
        assert_eq!(content_of(&t, &caller, "k").await, b"version 3");
        t.stop().await;
    }
}
