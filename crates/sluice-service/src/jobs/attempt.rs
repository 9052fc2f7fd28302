//! One attempt of a job: what it needs (a tenant's pipeline as engine
//! settings, a tenant's keys) and what it does (process a staged upload
//! into a container, verify a stored container), ending in an [`Outcome`].
//! Queued jobs (`dispatcher.rs`) and uploads processed as they stream in
//! (`streamed.rs`) share it.

use std::sync::Arc;

use futures_util::StreamExt;
use sluice_engine::format::{
    ChunkSize, Compression, FileParams, Identity, KeyRing, RawKey, Recipient, SlotSpec, Suite,
};
use sluice_engine::{CancelToken, Control, EncodeOptions, Progress};
use sluice_store::ByteStream;
use sluice_store::{now_ms, Job, ObjectInfo};

use super::JobError;
use crate::objects::download::{self, ReadFailure, VerifyAt};
use crate::objects::encode::{encode_stream, Also, Encoded};
use crate::objects::meta::Carried;
use crate::objects::small::Small;
use crate::{Error, Service};

/// The key a tenant's own slot of its objects holds: derived from its
/// identity, so only the server (which holds the identity) opens it.
fn tenant_key(identity: &Identity) -> RawKey {
    identity.derive_raw_key(b"sluice tenant objects")
}

/// How a job attempt ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Stored (process, with the object to make visible) or verified.
    Done(Option<ObjectInfo>),
    /// A small object made, its container to keep in its row.
    DoneSmall(ObjectInfo, bytes::Bytes),
    /// Failed: for good, or (if transient) worth another attempt.
    Failed(JobError),
    /// Stopped by its cancel token (user cancel, lost lease or shutdown).
    Stopped,
}

impl Outcome {
    /// The outcome of an engine error.
    pub(crate) fn of_engine(e: &sluice_engine::Error) -> Outcome {
        match JobError::of_engine(e) {
            Some(error) => Outcome::Failed(error),
            None => Outcome::Stopped,
        }
    }
}

/// A store error met by an attempt: transient ones may pass, the rest are
/// internal (the store's data is not what the service wrote).
fn store_failure(e: sluice_store::Error) -> JobError {
    if e.is_transient() {
        JobError::Unavailable(e.to_string())
    } else {
        JobError::Internal(e.to_string())
    }
}

impl Service {
    /// The engine settings of a tenant's pipeline: its codec, cipher and
    /// chunk size, and key slots for the tenant's identity and the
    /// pipeline's recipients.
    ///
    /// Kept for a second ([`crate::pipelines::OPTIONS_TTL`]; a change made
    /// on this node forgets them at once): small objects arrive by the
    /// thousand, and each would otherwise cost two database reads.
    pub(crate) async fn encode_options(&self, tenant_id: &str, pipeline_name: &str) -> Result<EncodeOptions, JobError> {
        let cache_key = (tenant_id.to_string(), pipeline_name.to_string());
        if let Some(opts) = self.options.get(&cache_key) {
            return Ok(opts);
        }
        let opts = self.read_encode_options(tenant_id, pipeline_name).await?;
        self.options.insert(cache_key, opts.clone());
        Ok(opts)
    }

    /// Whether `pipeline_name` of `tenant_id` is known to exist (its
    /// settings are cached).
    pub(crate) fn pipeline_cached(&self, tenant_id: &str, pipeline_name: &str) -> bool {
        self.options
            .contains_key(&(tenant_id.to_string(), pipeline_name.to_string()))
    }

    /// [`Service::encode_options`] read from the database.
    async fn read_encode_options(&self, tenant_id: &str, pipeline_name: &str) -> Result<EncodeOptions, JobError> {
        let pipeline = match self.db.pipeline(tenant_id, pipeline_name).await {
            Ok(p) => p,
            Err(sluice_store::Error::NotFound(_)) => {
                return Err(JobError::BadRequest(format!(
                    "pipeline {pipeline_name:?} no longer exists"
                )))
            }
            Err(e) => return Err(store_failure(e)),
        };
        let params = match (
            Suite::from_name(&pipeline.encrypt),
            Compression::parse(&pipeline.compress),
            ChunkSize::parse(&pipeline.chunk_size),
        ) {
            (Ok(suite), Ok(compression), Ok(chunk_size)) => FileParams {
                suite,
                compression,
                chunk_size,
            },
            _ => {
                return Err(JobError::BadRequest(format!(
                    "pipeline {:?} has invalid settings",
                    pipeline.name
                )))
            }
        };
        let mut slots = Vec::new();
        if params.suite.is_encrypted() {
            // The tenant's own slot: a key derived from its identity (a
            // key-file slot: no X25519 exchange per object, which small
            // objects would feel). The identity is the server's data: if it
            // cannot be unsealed, that is a bug or a damaged database.
            let identity = self
                .tenant_identity(tenant_id)
                .await
                .map_err(|e| JobError::Internal(format!("the tenant's identity cannot be read: {e}")))?;
            slots.push(SlotSpec::RawKey(tenant_key(&identity)));
            for r in &pipeline.recipients {
                match Recipient::parse(r) {
                    Ok(r) => slots.push(SlotSpec::Recipient(r)),
                    Err(e) => return Err(JobError::Key(format!("recipient {r:?}: {e}"))),
                }
            }
        }
        Ok(EncodeOptions {
            params,
            slots,
            adaptive: true,
        })
    }

    /// The keys that open a tenant's object (unsealing runs off the async
    /// workers).
    pub(crate) async fn keyring_for(&self, tenant_id: &str, encrypted: bool) -> crate::Result<KeyRing> {
        let identity = self.tenant_identity(tenant_id).await?;
        // Objects sealed to the tenant's identity (X25519) or, since small
        // objects, to the key derived from it.
        let ring = KeyRing::new()
            .with_raw_key(tenant_key(&identity))
            .with_identity((*identity).clone());
        Ok(if encrypted { ring } else { ring.allowing_unencrypted() })
    }

    /// A tenant's identity, unsealed (cached; unsealing runs off the async
    /// workers).
    async fn tenant_identity(&self, tenant_id: &str) -> crate::Result<Arc<Identity>> {
        if let Some(id) = self.keys.cached(tenant_id) {
            return Ok(id);
        }
        let tenant = self.db.tenant(tenant_id).await?;
        let keys = Arc::clone(&self.keys);
        sluice_store::blocking::spawn(move || keys.identity(&tenant.id, &tenant.sealed_identity))
            .await
            .map_err(Error::internal)?
            .map_err(Error::internal)
    }

    /// Processes a queued upload's staged copy into the container at
    /// `location`.
    pub(crate) async fn process_staged(
        &self,
        job: &Job,
        location: &str,
        cancel: CancelToken,
        progress: Arc<Progress>,
    ) -> Outcome {
        let carried = Carried::from_row(job.meta.as_deref());
        if let Some(upload_id) = &carried.multipart {
            return self
                .assemble_multipart(job, location, upload_id, &carried.part_numbers, cancel, progress)
                .await;
        }
        let small = job.staged_bytes <= self.config.small_object_max as i64 && self.config.small_object_max > 0;
        if let (true, Some(staging)) = (small, job.staging.as_deref()) {
            return self.process_small(job, staging, &progress).await;
        }
        let Some(staging) = job.staging.clone() else {
            // Only uploads processed as they streamed in have no staged
            // copy; this one's node stopped before it was stored.
            return Outcome::Failed(JobError::Interrupted(
                "the upload was interrupted before it was stored (the server stopped); upload it again".into(),
            ));
        };
        let opts = match self.encode_options(&job.tenant_id, &job.pipeline).await {
            Ok(o) => o,
            Err(e) => return Outcome::Failed(e),
        };
        // One staged object, or the parts of a resumable upload in order.
        let opened = if staging.ends_with('/') {
            self.objects
                .staged_stream(&staging, job.staged_bytes.max(0) as u64)
                .await
        } else {
            // Opened through the store's guard, so a failing store opens its
            // breaker (and the job waits instead of using up attempts).
            self.objects.reader(&staging).await.map(|(r, _)| {
                Box::pin(tokio_util::io::ReaderStream::with_capacity(
                    r,
                    sluice_store::STREAM_BUFFER,
                )) as ByteStream
            })
        };
        let staged = match opened {
            Ok(s) => s,
            Err(sluice_store::Error::NotFound(_)) => {
                return Outcome::Failed(JobError::Internal("the staged upload is missing".into()))
            }
            Err(e) => return Outcome::Failed(store_failure(e)),
        };
        let source = StreamExt::map(staged, |piece| {
            piece.map_err(|e| JobError::Unavailable(format!("reading the staged upload failed: {e}")))
        });
        let encrypted = opts.params.suite.is_encrypted();
        let lanes = self.encode_lanes(&job.tenant_id, &opts);
        let ctl = Control { cancel, progress };
        let also = Also {
            md5: carried.md5,
            hashes_from: None,
        };
        match encode_stream(&self.objects, location, lanes, source, opts, also, &ctl).await {
            Ok(encoded) => stored(job, location, encrypted, &encoded),
            Err(stop) => match stop.into_job_error() {
                Some(error) => Outcome::Failed(error),
                None => Outcome::Stopped,
            },
        }
    }

    /// Processes a small staged upload as a small object (its container
    /// kept in its row, recorded by the group commit).
    async fn process_small(&self, job: &Job, staging: &str, progress: &Progress) -> Outcome {
        let len = job.staged_bytes.max(0) as u64;
        // One staged object, or the parts of a resumable upload in order.
        let read = async {
            let mut parts = self.objects.staged_stream(staging, len).await?;
            let mut data = bytes::BytesMut::with_capacity(len as usize);
            while let Some(piece) = parts.next().await {
                data.extend_from_slice(
                    &piece
                        .map_err(|e| sluice_store::Error::Objects(sluice_store::BlobError::failing(e.to_string())))?,
                );
            }
            Ok::<_, sluice_store::Error>(data.freeze())
        };
        let data = match read.await {
            Ok(d) if d.len() as u64 == len => d,
            Ok(_) => return Outcome::Failed(JobError::Internal("the staged upload has the wrong length".into())),
            Err(sluice_store::Error::NotFound(_)) => {
                return Outcome::Failed(JobError::Internal("the staged upload is missing".into()))
            }
            Err(e) => return Outcome::Failed(store_failure(e)),
        };
        let small = Small {
            tenant_id: &job.tenant_id,
            job_id: &job.id,
            attempt: job.attempts,
            key: &job.object_key,
            pipeline: &job.pipeline,
            expected_digest: job.expected_digest.as_deref(),
            carried: job.meta.as_deref(),
        };
        match self.make_small(small, data).await {
            Ok(made) => {
                progress.add_in(made.progress.bytes_in as u64);
                progress.add_done(made.progress.bytes_in as u64);
                progress.add_out(made.progress.bytes_out as u64);
                for _ in 0..made.progress.chunks {
                    progress.add_chunk();
                }
                Outcome::DoneSmall(made.object, made.container)
            }
            Err(e) => Outcome::Failed(e),
        }
    }

    /// Authenticates a stored object completely.
    pub(crate) async fn verify_stored(&self, job: &Job, cancel: CancelToken, progress: Arc<Progress>) -> Outcome {
        let object = match self.db.object_with_container(&job.tenant_id, &job.object_key).await {
            Ok((o, Some(container))) => {
                let len = container.len() as u64;
                return match self
                    .verify_small(&job.tenant_id, &o, bytes::Bytes::from(container))
                    .await
                {
                    Ok(digest) if hex::encode(digest) == o.digest => {
                        progress.add_in(len);
                        progress.add_done(len);
                        Outcome::Done(None)
                    }
                    Ok(_) => Outcome::Failed(JobError::Integrity(
                        "the container's digest differs from the one recorded".into(),
                    )),
                    Err(e) => Outcome::of_engine(&e),
                };
            }
            Ok((o, None)) => o,
            Err(sluice_store::Error::NotFound(_)) => {
                return Outcome::Failed(JobError::NotFound(format!(
                    "object {:?} no longer exists",
                    job.object_key
                )))
            }
            Err(e) => return Outcome::Failed(store_failure(e)),
        };
        let keys = match self.keyring_for(&job.tenant_id, object.encrypted).await {
            Ok(k) => k,
            Err(e) => return Outcome::Failed(JobError::Unavailable(e.to_string())),
        };
        let pool = self.engine.pool();
        let at = VerifyAt {
            objects: self.objects.clone(),
            location: object.location.clone(),
            pool: Arc::clone(pool),
            lane: self.lanes.of(&job.tenant_id, pool),
            window: self.engine.in_flight(),
            tenant_id: job.tenant_id.clone(),
            memory: Arc::clone(&self.memory),
            memory_wait: self.config.idle_body_timeout,
        };
        let ctl = Control { cancel, progress };
        match download::verify(at, keys, &ctl).await {
            Ok(digest) if hex::encode(digest) == object.digest => Outcome::Done(None),
            Ok(_) => Outcome::Failed(JobError::Integrity(
                "the container's digest differs from the one recorded".into(),
            )),
            Err(ReadFailure::Store(sluice_store::Error::NotFound(_))) => {
                Outcome::Failed(JobError::Integrity("the stored container is missing".into()))
            }
            Err(ReadFailure::Store(e)) => Outcome::Failed(store_failure(e)),
            Err(ReadFailure::Engine(e)) => Outcome::of_engine(&e),
        }
    }
}

/// The object a process job stored, once its digest is what the client
/// expected.
pub(crate) fn stored(job: &Job, location: &str, encrypted: bool, encoded: &Encoded) -> Outcome {
    let summary = &encoded.summary;
    let digest = hex::encode(summary.digest);
    if let Some(expected) = &job.expected_digest {
        if *expected != digest {
            return Outcome::Failed(JobError::DigestMismatch(format!(
                "the upload's BLAKE3 is {digest}, the client expected {expected}"
            )));
        }
    }
    let carried = Carried::from_row(job.meta.as_deref());
    let etag = encoded.md5.map(hex::encode).or_else(|| carried.etag.clone());
    if let (Some(expected), Some(got)) = (&carried.expected_md5, &etag) {
        if expected != got {
            return Outcome::Failed(JobError::DigestMismatch(format!(
                "the upload's MD5 is {got}, its Content-MD5 says {expected}"
            )));
        }
    }
    Outcome::Done(Some(ObjectInfo {
        key: job.object_key.clone(),
        location: location.to_string(),
        pipeline: job.pipeline.clone(),
        encrypted,
        container_len: summary.container_len as i64,
        plaintext_len: summary.plaintext_len as i64,
        chunk_count: summary.chunk_count as i64,
        digest,
        job_id: job.id.clone(),
        created_at: now_ms(),
        meta: carried.meta.to_row(),
        etag,
    }))
}
