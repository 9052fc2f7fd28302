//! The job a multipart completion queues: the object's container made from
//! its staged parts.
//!
//! ```text
//!  part 1 container ─┐  each chunk: ranged read ─▶ authenticate + decrypt (still
//!  part 2 container ─┼─▶ compressed) ─▶ seal at its place in the object ─▶ in order ─▶ sink
//!  …                 ┘  (CPU pool, tenant's lane; `window` chunks in flight)
//! ```
//!
//! When every part but the last is a whole number of chunks long and was
//! sealed with the codec and chunk size of the object's pipeline (the
//! usual case: 8 MiB parts and chunks), the parts' chunks are the object's
//! chunks: each is moved without being decompressed or compressed again,
//! and its BLAKE3 subtree was computed at its place when its part arrived
//! (a part that arrived where it was not expected is decompressed and
//! hashed here). Otherwise the parts are decoded in order and the object
//! encoded afresh from their plaintext, as any staged upload is.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use sluice_engine::format::ChunkHash;
use sluice_engine::{Archive, CancelToken, Control, EncodeOptions, Encoder, Progress, SealedChunk};
use sluice_store::{Job, Objects};

use super::parts::SealedPart;
use crate::jobs::attempt::{stored, Outcome};
use crate::jobs::JobError;
use crate::objects::download::{self, Download};
use crate::objects::encode::{encode_stream, Also, EncodeStop, Encoded, Lanes};
use crate::objects::sink::Sink;
use crate::transfers::Held;
use crate::Service;

/// A part as the job finds it.
struct StagedPart {
    number: i64,
    location: String,
    size: u64,
    /// How it was sealed (`None`: staged as plaintext by an earlier version).
    sealed: Option<SealedPart>,
    /// Its container, opened (sealed parts).
    archive: Option<Archive<()>>,
}

/// A chunk on its way into the object: its sealing, and the memory its
/// record holds meanwhile.
type Moving = BoxFuture<'static, (Result<SealedChunk, EncodeStop>, Held)>;

impl Service {
    /// Assembles the object of multipart upload `upload_id` from its parts
    /// `numbers` (in order) into the container at `location`.
    pub(crate) async fn assemble_multipart(
        &self,
        job: &Job,
        location: &str,
        upload_id: &str,
        numbers: &[i64],
        cancel: CancelToken,
        progress: Arc<Progress>,
    ) -> Outcome {
        let opts = match self.encode_options(&job.tenant_id, &job.pipeline).await {
            Ok(o) => o,
            Err(e) => return Outcome::Failed(e),
        };
        let encrypted = opts.params.suite.is_encrypted();
        let parts = match self.staged_parts(&job.tenant_id, upload_id, numbers).await {
            Ok(p) => p,
            Err(e) => return Outcome::Failed(e),
        };
        let ctl = Control { cancel, progress };
        let lanes = self.encode_lanes(&job.tenant_id, &opts);
        let result = if movable(&parts, &opts) {
            move_chunks(&self.objects, location, lanes, parts, opts, &ctl).await
        } else {
            let source = self.decoded_parts(&job.tenant_id, parts);
            encode_stream(&self.objects, location, lanes, source, opts, Also::default(), &ctl).await
        };
        match result {
            Ok(encoded) => stored(job, location, encrypted, &encoded),
            Err(stop) => match stop.into_job_error() {
                Some(error) => Outcome::Failed(error),
                None => Outcome::Stopped,
            },
        }
    }

    /// The parts `numbers` of upload `upload_id`, sealed ones opened.
    async fn staged_parts(
        &self,
        tenant_id: &str,
        upload_id: &str,
        numbers: &[i64],
    ) -> Result<Vec<StagedPart>, JobError> {
        let unavailable = |e: &dyn std::fmt::Display| JobError::Unavailable(format!("reading the staged parts: {e}"));
        let rows = self.db.multipart_parts(upload_id).await.map_err(|e| unavailable(&e))?;
        // The parts were sealed for the tenant (with the pipeline's cipher
        // when they arrived: it may since have changed).
        let keys = self
            .keyring_for(tenant_id, true)
            .await
            .map_err(|e| unavailable(&e))?
            .allowing_unencrypted();
        let pool = self.engine.pool();
        let lane = self.lanes.of(tenant_id, pool);
        let mut parts = Vec::with_capacity(numbers.len());
        for &number in numbers {
            let row = rows
                .iter()
                .find(|p| p.number == number)
                .ok_or_else(|| JobError::Internal(format!("part {number} of the upload is missing")))?;
            let sealed = row.sealed.as_deref().map(|text| {
                SealedPart::from_text(text)
                    .ok_or_else(|| JobError::Internal(format!("part {number}'s record cannot be read")))
            });
            let sealed = sealed.transpose()?;
            let location = match &sealed {
                Some(s) => s.location(tenant_id, upload_id, number),
                None => Objects::upload_part_path(tenant_id, upload_id, number),
            };
            let size = u64::try_from(row.size).unwrap_or_default();
            let archive = match &sealed {
                None => None,
                Some(_) => {
                    let (archive, _) = download::open(&self.objects, &location, keys.clone(), pool, lane)
                        .await
                        .map_err(|e| match e {
                            crate::Error::NotFound(_) => {
                                JobError::Internal(format!("part {number}'s staged copy is missing"))
                            }
                            e => unavailable(&e),
                        })?;
                    if archive.plaintext_len() != size {
                        return Err(JobError::Internal(format!(
                            "part {number}'s staged copy holds {} bytes, not {size}",
                            archive.plaintext_len()
                        )));
                    }
                    Some(archive)
                }
            };
            parts.push(StagedPart {
                number,
                location,
                size,
                sealed,
                archive,
            });
        }
        Ok(parts)
    }

    /// The plaintext of `parts`, in order: sealed ones decoded (each
    /// chunk authenticated, the whole part's digest checked), plaintext
    /// ones as they are.
    fn decoded_parts(
        &self,
        tenant_id: &str,
        parts: Vec<StagedPart>,
    ) -> impl futures_util::Stream<Item = Result<bytes::Bytes, JobError>> + Send + Unpin + 'static {
        let st = self.clone();
        let tenant_id = tenant_id.to_string();
        let failed = |e: &dyn std::fmt::Display| JobError::Unavailable(format!("reading a staged part failed: {e}"));
        let pieces = futures_util::stream::iter(parts).then(move |part| {
            let st = st.clone();
            let tenant_id = tenant_id.clone();
            async move {
                let stream: futures_util::stream::BoxStream<'static, Result<bytes::Bytes, JobError>> =
                    match part.archive {
                        Some(archive) => {
                            let pool = st.engine.pool();
                            let d = Download {
                                range: 0..archive.plaintext_len(),
                                whole: true,
                                encoding: download::BodyEncoding::Identity,
                                archive,
                                objects: st.objects.clone(),
                                location: part.location.clone(),
                                pool: Arc::clone(pool),
                                lane: st.lanes.of(&tenant_id, pool),
                                window: st.engine.in_flight(),
                                tenant_id,
                                memory: Arc::clone(&st.memory),
                                first: None,
                                memory_wait: st.config.idle_body_timeout,
                                permit: None,
                            };
                            match download::chunks(d) {
                                Ok(s) => s.map(move |p| p.map_err(|e| failed(&e))).boxed(),
                                Err(e) => futures_util::stream::once(async move { Err(failed(&e)) }).boxed(),
                            }
                        }
                        None => match st.objects.stream(&part.location).await {
                            Ok((s, _)) => s.map(move |p| p.map_err(|e| failed(&e))).boxed(),
                            Err(e) => futures_util::stream::once(async move { Err(failed(&e)) }).boxed(),
                        },
                    };
                stream
            }
        });
        Box::pin(pieces.flatten())
    }
}

/// Whether the parts' chunks can move into the object as they are: all
/// sealed with the object's codec and chunk size, and every part but the
/// last a whole number of chunks long.
fn movable(parts: &[StagedPart], opts: &EncodeOptions) -> bool {
    let cs = opts.params.chunk_size.bytes() as u64;
    let last = parts.len().saturating_sub(1);
    parts.iter().enumerate().all(|(i, p)| {
        p.archive.as_ref().is_some_and(|a| {
            a.header().compression.codec == opts.params.compression.codec && a.header().chunk_size.bytes() as u64 == cs
        }) && (i == last || p.size.is_multiple_of(cs))
    })
}

/// Moves the chunks of `parts` (see [`movable`]) into a new container at
/// `location`, in order, each authenticated and sealed again on the CPU
/// pool without being decompressed, at most `lanes.window` at a time.
async fn move_chunks(
    objects: &Objects,
    location: &str,
    lanes: Lanes<'_>,
    parts: Vec<StagedPart>,
    opts: EncodeOptions,
    ctl: &Control,
) -> Result<Encoded, EncodeStop> {
    let (mut encoder, head) = lanes
        .pool
        .run(lanes.lane, 1, move || Encoder::new(&opts))
        .await
        .and_then(|r| r)
        .map_err(EncodeStop::Engine)?;
    let mut sink = Sink::open(objects, location).await.map_err(EncodeStop::Store)?;
    let mut in_flight: FuturesOrdered<Moving> = FuturesOrdered::new();
    let moved = async {
        sink.write(&head).await.map_err(EncodeStop::Store)?;
        ctl.progress.add_out(head.len() as u64);
        let window = lanes.window.max(1);
        let mut next_chunk = 0u64;
        for part in parts {
            let Some(archive) = part.archive else {
                return Err(EncodeStop::Source(JobError::Internal("a part is not sealed".into())));
            };
            let reads = archive.record_reads(&(0..part.size)).map_err(EncodeStop::Engine)?;
            // The hashes made when the part arrived count only if it is
            // where it was expected.
            let hashes: Option<Vec<ChunkHash>> = part
                .sealed
                .and_then(|s| s.expected)
                .and_then(|(first, h)| (first == next_chunk && h.len() == reads.len()).then_some(h));
            if hashes.is_none() {
                tracing::debug!(part = part.number, "a part not where it was expected is hashed again");
            }
            for (i, read) in reads.into_iter().enumerate() {
                if ctl.cancel.is_cancelled() {
                    return Err(EncodeStop::Cancelled);
                }
                let record_len = usize::try_from(read.bytes.end - read.bytes.start).unwrap_or(usize::MAX);
                let held = loop {
                    if in_flight.len() >= window {
                        write_next(&mut in_flight, &mut encoder, &mut sink, ctl).await?;
                        continue;
                    }
                    if let Some(h) = lanes.memory.try_hold(lanes.tenant_id, record_len) {
                        break h;
                    }
                    if in_flight.is_empty() {
                        break lanes
                            .memory
                            .hold(lanes.tenant_id, record_len, lanes.memory_wait)
                            .await
                            .map_err(EncodeStop::Refused)?;
                    }
                    write_next(&mut in_flight, &mut encoder, &mut sink, ctl).await?;
                };
                let sealer = encoder.sealer().map_err(EncodeStop::Engine)?;
                let hash = hashes.as_ref().and_then(|h| h.get(i).copied());
                let (objects, location, archive) = (objects.clone(), part.location.clone(), archive.clone());
                let (pool, lane) = (Arc::clone(lanes.pool), lanes.lane);
                let moving = async move {
                    let record = objects
                        .read_range(&location, read.bytes.clone())
                        .await
                        .map_err(|e| match e {
                            sluice_store::Error::NotFound(_) => {
                                EncodeStop::Source(JobError::Internal("a staged part is missing".into()))
                            }
                            e => EncodeStop::Store(std::io::Error::other(e.to_string())),
                        })?;
                    let index = read.index;
                    pool.run(lane, record_len as u64, move || {
                        let stored = archive.unseal_record(index, Vec::from(record))?;
                        sealer.reseal(stored, hash)
                    })
                    .await
                    .and_then(|r| r)
                    .map_err(EncodeStop::Engine)
                };
                // A task of its own, so the reads and the sealing go on
                // while earlier chunks are written.
                let task = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(moving));
                in_flight.push_back(
                    async move {
                        let sealed = match task.await {
                            Ok(r) => r,
                            Err(e) => Err(EncodeStop::Engine(sluice_engine::Error::Internal(format!(
                                "a chunk's task failed: {e}"
                            )))),
                        };
                        (sealed, held)
                    }
                    .boxed(),
                );
                next_chunk += 1;
            }
        }
        while !in_flight.is_empty() {
            write_next(&mut in_flight, &mut encoder, &mut sink, ctl).await?;
        }
        Ok(())
    }
    .await;
    drop(in_flight);
    let finished = moved.and_then(|()| encoder.finish().map_err(EncodeStop::Engine));
    let (tail, summary) = match finished {
        Ok(f) => f,
        Err(e) => {
            sink.abort().await;
            return Err(e);
        }
    };
    if let Err(e) = sink.write(&tail).await {
        sink.abort().await;
        return Err(EncodeStop::Store(e));
    }
    ctl.progress.add_out(tail.len() as u64);
    sink.finish().await.map_err(EncodeStop::Store)?;
    Ok(Encoded {
        summary,
        md5: None,
        hashes: Vec::new(),
    })
}

/// Writes the next moved chunk, waiting for it; its memory is given back
/// after.
async fn write_next(
    in_flight: &mut FuturesOrdered<Moving>,
    encoder: &mut Encoder,
    sink: &mut Sink,
    ctl: &Control,
) -> Result<(), EncodeStop> {
    let Some((sealed, _held)) = in_flight.next().await else {
        return Ok(());
    };
    let mut sealed = sealed?;
    encoder.push(&sealed).map_err(EncodeStop::Engine)?;
    let body = sealed.take_body();
    sink.write_parts(sealed.head(), body).await.map_err(EncodeStop::Store)?;
    let plain = sealed.plain_len() as u64;
    ctl.progress.add_in(plain);
    ctl.progress.add_out(sealed.record_len());
    ctl.progress.add_done(plain);
    ctl.progress.add_chunk();
    Ok(())
}
