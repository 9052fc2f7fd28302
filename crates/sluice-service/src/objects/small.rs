//! Small objects: an upload of at most `--small-object-max` bytes is read
//! whole, sealed on the CPU pool in one task (its container fits in a few
//! pages), and recorded by the group commit with its container in the
//! object's row: no staged copy, no queue row, no file, and one database
//! sync shared with every other small object that arrived meanwhile. The
//! answer comes once that commit is durable; the job it reports has
//! already succeeded.
//!
//! Reads get the container with the row, in one query (so an overwrite
//! committing meanwhile cannot take it from a reader that looked the
//! object up), and open it from memory.

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use md5::{Digest, Md5};
use sluice_engine::format::RECORD_HEADER_LEN;
use sluice_engine::{Archive, EncodeOptions, EncodeSummary, Encoder};
use sluice_store::{Fenced, Job, JobProgress, NewJob, ObjectInfo, Objects};

use super::meta::Carried;
use super::FIRST_CHUNK_WAIT;
use crate::auth::Caller;
use crate::body::{Body, BodyReader};
use crate::jobs::group_commit::Entry;
use crate::jobs::JobError;
use crate::telemetry::JobEnd;
use crate::tenants::limits::BodyLimit;
use crate::{Error, Result, Service};

/// An upload's body read as far as the small-object limit allows.
pub(crate) enum Read {
    /// All of it: small enough to store on arrival.
    Whole(Bytes),
    /// More than the limit: what was read, then the rest, as one body.
    Large(Body),
}

/// A small object sealed: its container and what the engine made.
struct Sealed {
    container: Vec<u8>,
    summary: EncodeSummary,
    md5: Option<[u8; 16]>,
}

impl Service {
    /// Whether an upload that announced `declared` bytes may be small:
    /// announced within the limit, or not announced at all (read to see).
    pub(crate) fn may_be_small(&self, declared: Option<u64>) -> bool {
        let max = self.config.small_object_max;
        max > 0 && declared.is_none_or(|n| n <= max)
    }

    /// Reads `body` whole if it holds at most `--small-object-max` bytes
    /// (an idle client is cut as any upload is; `limit` applies).
    pub(crate) async fn read_small(&self, body: Body, limit: &BodyLimit) -> Result<Read> {
        let max = usize::try_from(self.config.small_object_max).unwrap_or(usize::MAX);
        let mut reader = BodyReader::new(body, self.config.idle_body_timeout, limit);
        let mut data = BytesMut::new();
        while let Some(piece) = reader.next().await.map_err(Error::upload)? {
            if data.len() + piece.len() > max {
                // Larger: what was read goes first, then the rest.
                let read = std::mem::take(&mut data).freeze();
                let head = futures_util::stream::iter([Ok(read), Ok(piece)]);
                let rest = reader.into_body();
                return Ok(Read::Large(Box::pin(futures_util::StreamExt::chain(head, rest))));
            }
            if data.is_empty() {
                data.reserve(max.min(piece.len().max(64 << 10)));
            }
            data.extend_from_slice(&piece);
        }
        Ok(Read::Whole(data.freeze()))
    }

    /// Stores `data`, the whole body of the upload `job` describes, as a
    /// small object: sealed on the CPU pool, recorded by the group commit
    /// with its container in its row. Returns the job, succeeded.
    pub(crate) async fn store_small(&self, job: NewJob, data: Bytes) -> Result<Job> {
        let started = std::time::Instant::now();
        let made = match self
            .make_small(
                Small {
                    tenant_id: &job.tenant_id,
                    job_id: &job.id,
                    attempt: 1,
                    key: &job.object_key,
                    pipeline: &job.pipeline,
                    expected_digest: job.expected_digest.as_deref(),
                    carried: job.meta.as_deref(),
                },
                data,
            )
            .await
        {
            Ok(made) => made,
            Err(error) => {
                // Listed as any failed upload's job is (not for a transient
                // failure: the client sends it again).
                let recorded = match error.is_transient() {
                    true => None,
                    false => self.db.add_failed(&job, error.code(), error.detail()).await.ok(),
                };
                if let Some(failed) = &recorded {
                    self.note_end(failed, JobEnd::Failed, Some(&error), started, &JobProgress::default());
                }
                return Err(Error::Job {
                    job: recorded.map(|j| j.id),
                    error,
                });
            }
        };
        let progress = made.progress;
        let entry = Entry::Arrived {
            job,
            progress,
            object: made.object,
            container: Some(made.container),
        };
        match self.commits.record(entry).await {
            Ok(Fenced::Done((_, job))) => {
                self.note_end(&job, JobEnd::Succeeded, None, started, &progress);
                Ok(job)
            }
            // A job added in the commit cannot have lost its lease.
            Ok(Fenced::Lost) => Err(Error::internal("a small upload's job was lost as it was recorded")),
            Err(e) => {
                tracing::warn!(error = %e, "recording a small upload failed");
                Err(e.into())
            }
        }
    }

    /// Makes the small object `data` is the whole plaintext of: sealed on
    /// the CPU pool through its tenant's pipeline, checked against what
    /// the upload expected, described for its row.
    pub(crate) async fn make_small(&self, s: Small<'_>, data: Bytes) -> std::result::Result<MadeSmall, JobError> {
        let carried = Carried::from_row(s.carried);
        let opts = self.encode_options(s.tenant_id, s.pipeline).await?;
        let encrypted = opts.params.suite.is_encrypted();
        let pool = self.engine.pool();
        let lane = self.lanes.of(s.tenant_id, pool);
        let md5 = carried.md5;
        let sealed = pool
            .run(lane, data.len() as u64, move || seal(&opts, &data, md5))
            .await
            .map_err(|e| JobError::Internal(e.to_string()))?
            .map_err(|e| JobError::of_engine(&e).unwrap_or_else(|| JobError::Internal(e.to_string())))?;
        let digest = hex::encode(sealed.summary.digest);
        if let Some(expected) = s.expected_digest {
            if expected != digest {
                return Err(JobError::DigestMismatch(format!(
                    "the upload's BLAKE3 is {digest}, the client expected {expected}"
                )));
            }
        }
        let etag = sealed.md5.map(hex::encode).or_else(|| carried.etag.clone());
        if let (Some(expected), Some(got)) = (&carried.expected_md5, &etag) {
            if expected != got {
                return Err(JobError::DigestMismatch(format!(
                    "the upload's MD5 is {got}, its Content-MD5 says {expected}"
                )));
            }
        }
        let summary = &sealed.summary;
        let object = ObjectInfo {
            key: s.key.to_string(),
            location: Objects::inline_path(s.tenant_id, s.job_id, s.attempt),
            pipeline: s.pipeline.to_string(),
            encrypted,
            container_len: summary.container_len as i64,
            plaintext_len: summary.plaintext_len as i64,
            chunk_count: summary.chunk_count as i64,
            digest,
            job_id: s.job_id.to_string(),
            created_at: sluice_store::now_ms(),
            meta: carried.meta.to_row(),
            etag,
        };
        let progress = JobProgress {
            bytes_in: summary.plaintext_len as i64,
            bytes_out: summary.container_len as i64,
            chunks: summary.chunk_count as i64,
        };
        Ok(MadeSmall {
            object,
            container: Bytes::from(sealed.container),
            progress,
        })
    }
}

/// The upload a small object is made for.
pub(crate) struct Small<'a> {
    /// Its tenant.
    pub tenant_id: &'a str,
    /// Its job.
    pub job_id: &'a str,
    /// The job's attempt.
    pub attempt: i64,
    /// The object's key.
    pub key: &'a str,
    /// The pipeline it goes through.
    pub pipeline: &'a str,
    /// The BLAKE3 (hex) it must have.
    pub expected_digest: Option<&'a str>,
    /// What its job carries (the row's form of [`Carried`]).
    pub carried: Option<&'a str>,
}

/// A small object made, to record.
pub(crate) struct MadeSmall {
    /// Its row.
    pub object: ObjectInfo,
    /// Its container, kept in its row.
    pub container: Bytes,
    /// What making it did.
    pub progress: JobProgress,
}

impl Service {
    /// The content of a small object, whose `container` came with its row:
    /// the chunks `range` needs (all of them, digest checked, for `None`)
    /// opened from memory on the CPU pool in one task.
    pub(crate) async fn small_content(
        &self,
        caller: &Caller,
        o: &ObjectInfo,
        container: Bytes,
        range: Option<Range<u64>>,
    ) -> Result<Bytes> {
        let archive = self.opened_small(caller.tenant(), o, &container).await?;
        let whole = range.is_none();
        let reading = range.unwrap_or(0..archive.plaintext_len());
        // Its container and its plaintext, while it is opened and sent.
        let bytes = container
            .len()
            .saturating_add(usize::try_from(reading.end - reading.start).unwrap_or(0));
        let _held = self.memory.hold(caller.tenant(), bytes, FIRST_CHUNK_WAIT).await?;
        let pool = self.engine.pool();
        let lane = self.lanes.of(caller.tenant(), pool);
        let opened = pool
            .run(lane, bytes as u64, move || {
                open_range(&archive, &container, reading, whole)
            })
            .await
            .map_err(Error::internal)?;
        opened.map_err(|e| {
            tracing::warn!(error = %e, location = %o.location, "a small object failed to open");
            Error::internal(e)
        })
    }

    /// Authenticates every byte of a small object of `tenant_id`'s whose
    /// `container` came with its row; its whole-file digest.
    pub(crate) async fn verify_small(
        &self,
        tenant_id: &str,
        o: &ObjectInfo,
        container: Bytes,
    ) -> sluice_engine::Result<[u8; 32]> {
        let keys = self
            .keyring_for(tenant_id, o.encrypted)
            .await
            .map_err(|e| sluice_engine::Error::Internal(e.to_string()))?;
        let pool = self.engine.pool();
        let lane = self.lanes.of(tenant_id, pool);
        pool.run(lane, container.len() as u64, move || {
            let archive = Archive::open(&container[..], &keys)?.with_source(());
            open_range(&archive, &container, 0..archive.plaintext_len(), true)?;
            Ok(archive.index().digest)
        })
        .await?
    }

    /// A small object's container opened: from the cache, or unlocked now
    /// on the CPU pool and cached.
    async fn opened_small(&self, tenant_id: &str, o: &ObjectInfo, container: &Bytes) -> Result<Archive<()>> {
        if let Some(a) = self.opened.get(&o.location) {
            return Ok(a);
        }
        let keys = self.keyring_for(tenant_id, o.encrypted).await?;
        let pool = self.engine.pool();
        let lane = self.lanes.of(tenant_id, pool);
        let bytes = container.clone();
        let a = pool
            .run(lane, bytes.len() as u64, move || {
                Archive::open(&bytes[..], &keys).map(|a| a.with_source(()))
            })
            .await
            .map_err(Error::internal)?
            .map_err(|e| {
                tracing::warn!(error = %e, location = %o.location, "a small object failed to open");
                Error::internal(e)
            })?;
        self.opened.insert(&o.location, &a);
        Ok(a)
    }
}

/// The plaintext of `range` of the opened `archive`, whose container is
/// `container` (every chunk authenticated; with `whole`, the whole-file
/// digest checked too): CPU work.
fn open_range(archive: &Archive<()>, container: &[u8], range: Range<u64>, whole: bool) -> sluice_engine::Result<Bytes> {
    let mut digest = whole.then(|| archive.digest_check());
    let mut out = BytesMut::with_capacity(usize::try_from(range.end - range.start).unwrap_or(0));
    for read in archive.record_reads(&range)? {
        let record = usize::try_from(read.bytes.start)
            .ok()
            .zip(usize::try_from(read.bytes.end).ok())
            .and_then(|(a, b)| container.get(a..b))
            .ok_or_else(|| sluice_engine::Error::Internal("a record lies outside its container".into()))?;
        let chunk = archive.open_record(read.index, record.to_vec())?;
        if let Some(d) = digest.as_mut() {
            d.push(chunk.hash);
        }
        let part = archive.slice_in(&range, chunk.index, chunk.plaintext.len());
        out.extend_from_slice(chunk.plaintext.get(part).unwrap_or_default());
    }
    if let Some(d) = digest {
        d.finish()?;
    }
    Ok(out.freeze())
}

/// Seals `plain` into a whole container in memory (and hashes it with
/// MD5 if `md5`): CPU work for the pool.
fn seal(opts: &EncodeOptions, plain: &[u8], md5: bool) -> sluice_engine::Result<Sealed> {
    let (mut encoder, head) = Encoder::new(opts)?;
    let cs = encoder.chunk_size();
    let chunks = plain.len().div_ceil(cs);
    // The header, each record (its body at most the chunk and a tag) and
    // the index: one allocation.
    let mut container = Vec::with_capacity(head.len() + plain.len() + chunks * (RECORD_HEADER_LEN + 16) + 256);
    container.extend_from_slice(&head);
    for chunk in plain.chunks(cs) {
        let mut sealed = encoder.sealer()?.seal(chunk)?;
        encoder.push(&sealed)?;
        container.extend_from_slice(sealed.head());
        container.extend_from_slice(&sealed.take_body());
    }
    let (tail, summary) = encoder.finish()?;
    container.extend_from_slice(&tail);
    let md5 = md5.then(|| Md5::digest(plain).into());
    Ok(Sealed {
        container,
        summary,
        md5,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sluice_engine::format::KeyRing;
    use sluice_engine::{Control, Engine, EngineConfig};
    use sluice_store::{JobState, Scope};

    use super::*;
    use crate::objects::{ByteRange, Put, Stored};
    use crate::testing::TestService;
    use crate::uploads::NewSession;
    use crate::Settings;

    fn body(data: Vec<u8>) -> Body {
        Box::pin(futures_util::stream::iter([Ok(Bytes::from(data))]))
    }

    fn data(n: usize, seed: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8 / 3).wrapping_add(seed)).collect()
    }

    async fn content(t: &TestService, caller: &Caller, key: &str, range: Option<ByteRange>) -> Result<Vec<u8>> {
        let mut c = t.service.content(caller, key, range).await?;
        let mut all = Vec::new();
        while let Some(piece) = futures_util::StreamExt::next(&mut c.body).await {
            all.extend_from_slice(&piece.map_err(Error::internal)?);
        }
        Ok(all)
    }

    /// Small uploads are stored on arrival, many to a commit, their
    /// containers in their rows (no file anywhere); they read back whole,
    /// by range and as a container `sluice restore` opens; they verify,
    /// are replaced and deleted as any object; a queued small upload
    /// drains through the same commit.
    #[tokio::test]
    async fn small_objects_are_stored_on_arrival_many_to_a_commit() {
        let t = TestService::start(Settings::default()).await;
        let caller = t.caller(&t.tenant("acme", Scope::Write).await).await;
        let puts = (0..64).map(|i| {
            let put = Put {
                key: format!("small/{i}"),
                wait: i % 2 == 0,
                declared_len: (i % 3 != 0).then_some(4096 + i as u64),
                ..Put::default()
            };
            t.service.put_object(&caller, put, body(data(4096 + i, i as u8)))
        });
        let stored = futures_util::future::join_all(puts).await;
        for (i, s) in stored.into_iter().enumerate() {
            let job = match s.unwrap() {
                Stored::Now(job) => job,
                Stored::Queued(job) => job,
            };
            assert_eq!(
                job.state,
                JobState::Succeeded,
                "{i}: answered once stored, waiting or not"
            );
        }
        assert!(
            t.service.commits.batches() < 64,
            "the uploads shared commits ({} commits)",
            t.service.commits.batches()
        );
        for i in [0usize, 17, 63] {
            let key = format!("small/{i}");
            assert_eq!(content(&t, &caller, &key, None).await.unwrap(), data(4096 + i, i as u8));
            let part = content(&t, &caller, &key, Some(ByteRange::Span { first: 10, last: 19 }))
                .await
                .unwrap();
            assert_eq!(part, data(4096 + i, i as u8)[10..20]);
        }
        // No staged copy, no container file: the store holds nothing.
        for prefix in ["objects/", "staging/", "uploads/"] {
            assert!(t.service.objects.listed(prefix).await.unwrap().is_empty(), "{prefix}");
        }
        // The container, as `sluice restore` reads it.
        let (o, mut stream, size) = t.service.container(&caller, "small/5").await.unwrap();
        assert!(Objects::is_inline(&o.location));
        let mut container = Vec::new();
        while let Some(piece) = futures_util::StreamExt::next(&mut stream).await {
            container.extend_from_slice(&piece.unwrap());
        }
        assert_eq!(container.len() as u64, size);
        let identity = t.service.keyring_for(caller.tenant(), true).await.unwrap();
        let engine = Engine::new(EngineConfig::default()).unwrap();
        let mut restored = Vec::new();
        engine
            .decode(&container[..], &mut restored, &identity, &Control::new())
            .unwrap();
        assert_eq!(restored, data(4101, 5));
        let _: &KeyRing = &identity;
        // A verify job authenticates it.
        let verify = t.service.verify_object(&caller, "small/5").await.unwrap();
        let done = t.service.wait_for_job(caller.tenant(), &verify.id).await.unwrap();
        assert_eq!(done.state, JobState::Succeeded);
        // Replaced and deleted as any object.
        let put = Put {
            key: "small/5".into(),
            wait: true,
            ..Put::default()
        };
        t.service
            .put_object(&caller, put, body(b"newer".to_vec()))
            .await
            .unwrap();
        assert_eq!(content(&t, &caller, "small/5", None).await.unwrap(), b"newer");
        for i in 0..32 {
            t.service.delete_object(&caller, &format!("small/{i}")).await.unwrap();
        }
        assert!(matches!(
            content(&t, &caller, "small/3", None).await,
            Err(Error::NotFound(_))
        ));
        // A queued small upload (a resumable one) drains through the group
        // commit too, its container in its row.
        let before = t.service.commits.batches();
        let session = NewSession {
            key: "resumed".into(),
            size: 3000,
            part_size: Some(crate::uploads::MIN_PART_SIZE),
            ..NewSession::default()
        };
        let u = t.service.open_upload(&caller, session).await.unwrap();
        t.service
            .put_part(&caller, &u.id, "0", Some(3000), body(data(3000, 9)))
            .await
            .unwrap();
        t.service.complete_upload(&caller, &u.id).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let o = loop {
            if let Ok(o) = t.service.object(&caller, "resumed").await {
                break o;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the queued upload was not stored"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(Objects::is_inline(&o.location), "{}", o.location);
        assert!(t.service.commits.batches() > before);
        assert_eq!(content(&t, &caller, "resumed", None).await.unwrap(), data(3000, 9));
        // The reaper gives the freed pages back.
        crate::jobs::reaper::reap(&t.service, Duration::ZERO).await.unwrap();
        assert_eq!(t.service.db.reclaim_free_pages(1).await.unwrap(), 0);
        t.stop().await;
    }
}
