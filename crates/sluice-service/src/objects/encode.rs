//! Encoding from async code, holding no thread: plaintext arrives as a
//! stream (a request body, a staged upload), is cut into chunks, each
//! sealed on the CPU pool in the tenant's lane through the engine's
//! sans-I/O [`Encoder`], and written in order to a [`Sink`].
//!
//! ```text
//!  source (async) ─▶ chunk ─▶ seal on the CPU pool ─▶ in order ─▶ sink (short writes)
//!                     at most `window` chunks in flight: a fast source waits here
//! ```
//!
//! A slow source holds nothing but its partial chunk: no thread waits for
//! it. The container is durable and under its name only when
//! [`encode_stream`] returns `Ok`; on any failure nothing is left there.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::md5::Md5Chain;
use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, Stream, StreamExt};
use sluice_engine::format::{hash_chunk, ChunkHash};
use sluice_engine::{Control, CpuPool, EncodeOptions, EncodeSummary, Encoder, Lane, PoolResult, SealedChunk};
use sluice_store::Objects;
use tokio_util::sync::CancellationToken;

use super::sink::Sink;
use crate::jobs::JobError;
use crate::tenants::limits::Refusal;
use crate::transfers::{Held, TransferMemory};

/// Why an encode did not complete.
#[derive(Debug)]
pub(crate) enum EncodeStop {
    /// The source failed (the upload broke off, went idle, grew too large).
    Source(JobError),
    /// The control's cancel token was cancelled.
    Cancelled,
    /// The engine refused (e.g. too many chunks).
    Engine(sluice_engine::Error),
    /// Writing the container failed.
    Store(io::Error),
    /// No memory came free in time.
    Refused(Refusal),
}

impl EncodeStop {
    /// The job failure it means, or `None` for a cancel (the job's row
    /// says why it stopped).
    pub(crate) fn into_job_error(self) -> Option<JobError> {
        match self {
            EncodeStop::Source(e) => Some(e),
            EncodeStop::Cancelled => None,
            EncodeStop::Engine(e) => JobError::of_engine(&e),
            EncodeStop::Store(e) => Some(JobError::Unavailable(format!("writing the container failed: {e}"))),
            EncodeStop::Refused(r) => Some(JobError::Unavailable(r.to_string())),
        }
    }
}

/// Where an encode runs.
pub(crate) struct Lanes<'a> {
    /// The CPU pool.
    pub pool: &'a Arc<CpuPool>,
    /// The tenant's lane in it.
    pub lane: Lane,
    /// Chunks in flight at most.
    pub window: usize,
    /// Whose upload this is (for its share of the memory).
    pub tenant_id: &'a str,
    /// The memory chunks are held in.
    pub memory: &'a TransferMemory,
    /// Longest wait for memory (past it, the encode stops: 429/503).
    pub memory_wait: Duration,
}

/// What an encode computes besides the container.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Also {
    /// The plaintext's MD5 (an S3 ETag).
    pub md5: bool,
    /// Each chunk's BLAKE3 subtree as if the plaintext began at this
    /// chunk of a larger whole (an S3 part at its expected place in the
    /// object), so that the whole's digest needs no second pass.
    pub hashes_from: Option<u64>,
}

/// What an encode made.
#[derive(Debug)]
pub(crate) struct Encoded {
    /// The engine's summary (lengths, BLAKE3).
    pub summary: EncodeSummary,
    /// The plaintext's MD5, if it was asked for.
    pub md5: Option<[u8; 16]>,
    /// The chunks' subtrees from [`Also::hashes_from`] on, if asked for.
    pub hashes: Vec<ChunkHash>,
}

/// Memory is taken for a chunk as it fills, in steps of this much.
const MEMORY_STEP: usize = 256 << 10;

/// A sealed chunk, and its subtree at the expected place if asked for.
type Sealed = (SealedChunk, Option<ChunkHash>);
type Sealing = PoolResult<sluice_engine::Result<Sealed>>;

/// A chunk on its way: its plaintext (while it fills) or its sealing, and
/// the memory it holds (for its plaintext and its sealed record).
struct Filling {
    data: BytesMut,
    held: Vec<Held>,
    held_bytes: usize,
}

/// Encodes everything `source` yields into a new container at `location`
/// (and computes what `also` asks for on the way); counts on
/// `ctl.progress`, stops on `ctl.cancel`.
pub(crate) async fn encode_stream<S>(
    objects: &Objects,
    location: &str,
    lanes: Lanes<'_>,
    mut source: S,
    opts: EncodeOptions,
    also: Also,
    ctl: &Control,
) -> Result<Encoded, EncodeStop>
where
    S: Stream<Item = Result<Bytes, JobError>> + Unpin,
{
    let stop = CancellationToken::new();
    ctl.cancel.on_cancel({
        let stop = stop.clone();
        move || stop.cancel()
    });
    // Building the header may run Argon2 (a passphrase slot): CPU work.
    let (mut encoder, head) = lanes
        .pool
        .run(lanes.lane, 1, move || Encoder::new(&opts))
        .await
        .and_then(|r| r)
        .map_err(EncodeStop::Engine)?;
    let mut sink = Sink::open(objects, location).await.map_err(EncodeStop::Store)?;
    let mut out = Writer {
        encoder: &mut encoder,
        sink: &mut sink,
        ctl,
        in_flight: FuturesOrdered::new(),
        md5: also.md5.then(Md5Chain::new),
        hashes_from: also.hashes_from,
        hashes: Vec::new(),
    };
    let written = async {
        out.sink.write(&head).await.map_err(EncodeStop::Store)?;
        ctl.progress.add_out(head.len() as u64);
        let cs = out.encoder.chunk_size();
        let window = lanes.window.max(1);
        let mut filling = Filling {
            data: BytesMut::new(),
            held: Vec::new(),
            held_bytes: 0,
        };
        loop {
            // Write what is sealed; wait for it when the window is full.
            if out.in_flight.len() >= window {
                out.write_next().await?;
                continue;
            }
            if out.write_ready().await? {
                continue;
            }
            let next = tokio::select! {
                biased;
                () = stop.cancelled() => return Err(EncodeStop::Cancelled),
                n = source.next() => n,
            };
            match next {
                Some(Ok(data)) => {
                    ctl.progress.add_in(data.len() as u64);
                    let want = filling.data.len().saturating_add(data.len()).min(cs).saturating_mul(2);
                    out.hold_until(&mut filling, want, &lanes).await?;
                    if filling.data.capacity() < cs {
                        // One allocation per chunk, not a doubling series
                        // of copies as it fills.
                        let mut fresh = BytesMut::with_capacity(cs);
                        fresh.extend_from_slice(&filling.data);
                        filling.data = fresh;
                    }
                    filling.data.extend_from_slice(&data);
                    while filling.data.len() >= cs {
                        let chunk = filling.data.split_to(cs).freeze();
                        // The chunk takes what was held (the rest of the
                        // piece, if any, holds anew).
                        let held = std::mem::take(&mut filling.held);
                        filling.held_bytes = 0;
                        out.seal(&lanes, chunk, held).await?;
                        // The rest of the piece (a body piece larger than
                        // a chunk) needs its memory too.
                        let want = filling.data.len().min(cs).saturating_mul(2);
                        out.hold_until(&mut filling, want, &lanes).await?;
                    }
                }
                Some(Err(e)) => return Err(EncodeStop::Source(e)),
                None => break,
            }
        }
        if !filling.data.is_empty() {
            let chunk = filling.data.split().freeze();
            let held = std::mem::take(&mut filling.held);
            out.seal(&lanes, chunk, held).await?;
        }
        while !out.in_flight.is_empty() {
            out.write_next().await?;
        }
        if ctl.cancel.is_cancelled() {
            return Err(EncodeStop::Cancelled);
        }
        match out.md5.take() {
            Some(chain) => chain
                .finish(lanes.pool, lanes.lane)
                .await
                .map(Some)
                .map_err(EncodeStop::Engine),
            None => Ok(None),
        }
    }
    .await;
    let hashes = std::mem::take(&mut out.hashes);
    drop(out);
    let finished = match written {
        Ok(md5) => encoder.finish().map_err(EncodeStop::Engine).map(|f| (f, md5)),
        Err(e) => Err(e),
    };
    let ((tail, summary), md5) = match finished {
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
    Ok(Encoded { summary, md5, hashes })
}

/// The ordered writing side of an encode.
struct Writer<'a> {
    encoder: &'a mut Encoder,
    sink: &'a mut Sink,
    ctl: &'a Control,
    in_flight: FuturesOrdered<BoxFuture<'static, (sluice_engine::Result<Sealed>, Vec<Held>)>>,
    md5: Option<Md5Chain>,
    hashes_from: Option<u64>,
    hashes: Vec<ChunkHash>,
}

impl Writer<'_> {
    /// Queues `chunk` for sealing on the pool, holding `held` (and for
    /// its MD5 update after the previous chunk's, if asked for).
    async fn seal(&mut self, lanes: &Lanes<'_>, chunk: Bytes, held: Vec<Held>) -> Result<(), EncodeStop> {
        if let Some(md5) = &mut self.md5 {
            md5.feed(lanes.pool, lanes.lane, chunk.clone())
                .await
                .map_err(EncodeStop::Engine)?;
        }
        let sealer = self.encoder.sealer().map_err(EncodeStop::Engine)?;
        let cost = chunk.len() as u64;
        // The chunk's subtree at its expected place in a larger whole: the
        // engine's own hash when that place is its own.
        let at = self.hashes_from.map(|first| first + sealer.index());
        let cs = self.encoder.chunk_size();
        let sealing: Sealing = lanes.pool.run(lanes.lane, cost, move || {
            let sealed = sealer.seal(&chunk)?;
            let hash = at.map(|i| match i == sealed.index() {
                true => sealed.hash(),
                false => hash_chunk(i, cs, &chunk),
            });
            Ok((sealed, hash))
        });
        self.in_flight
            .push_back(async move { (sealing.await.and_then(|r| r), held) }.boxed());
        Ok(())
    }

    /// Writes the next sealed chunk, waiting for it.
    async fn write_next(&mut self) -> Result<(), EncodeStop> {
        if let Some(next) = self.in_flight.next().await {
            self.write(next).await?;
        }
        Ok(())
    }

    /// Writes the next sealed chunk if it is ready; whether it was.
    async fn write_ready(&mut self) -> Result<bool, EncodeStop> {
        match self.in_flight.next().now_or_never().flatten() {
            Some(next) => self.write(next).await.map(|()| true),
            None => Ok(false),
        }
    }

    /// Writes a sealed chunk; its memory is given back after.
    async fn write(&mut self, (sealed, _held): (sluice_engine::Result<Sealed>, Vec<Held>)) -> Result<(), EncodeStop> {
        let (mut sealed, hash) = sealed.map_err(EncodeStop::Engine)?;
        self.hashes.extend(hash);
        self.encoder.push(&sealed).map_err(EncodeStop::Engine)?;
        let body = sealed.take_body();
        self.sink
            .write_parts(sealed.head(), body)
            .await
            .map_err(EncodeStop::Store)?;
        self.ctl.progress.add_out(sealed.record_len());
        self.ctl.progress.add_done(sealed.plain_len() as u64);
        self.ctl.progress.add_chunk();
        Ok(())
    }

    /// Holds memory for `filling` until it has `want` bytes: taken in steps
    /// while there is room; else this upload's own sealed chunks are
    /// written first (they give theirs back); with none left, what the
    /// chunk holds is given back and all of `want` waited for at once, so
    /// two uploads never wait on each other while holding memory.
    async fn hold_until(&mut self, filling: &mut Filling, want: usize, lanes: &Lanes<'_>) -> Result<(), EncodeStop> {
        let want = want.min(lanes.memory.share());
        while filling.held_bytes < want {
            if let Some(h) = lanes.memory.try_hold(lanes.tenant_id, MEMORY_STEP) {
                filling.held.push(h);
                filling.held_bytes += MEMORY_STEP;
            } else if !self.in_flight.is_empty() {
                self.write_next().await?;
            } else {
                filling.held.clear();
                filling.held_bytes = 0;
                let h = lanes
                    .memory
                    .hold(lanes.tenant_id, want, lanes.memory_wait)
                    .await
                    .map_err(EncodeStop::Refused)?;
                filling.held.push(h);
                filling.held_bytes = want;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use md5::Digest;
    use sluice_engine::format::{ChunkSize, FileParams, KeyRing, RawKey, SlotSpec};
    use sluice_engine::{Engine, EngineConfig};

    use super::*;

    fn setup() -> (tempfile::TempDir, Objects, Engine, RawKey, EncodeOptions) {
        let dir = tempfile::tempdir().unwrap();
        let objects = Objects::local(dir.path(), crate::Config::defaults().unwrap().store).unwrap();
        let engine = Engine::new(EngineConfig {
            threads: Some(2),
            ..Default::default()
        })
        .unwrap();
        let key = RawKey::generate().unwrap();
        let opts = EncodeOptions {
            slots: vec![SlotSpec::RawKey(key.clone())],
            params: FileParams {
                chunk_size: ChunkSize::from_log2(14).unwrap(),
                ..FileParams::default()
            },
            ..EncodeOptions::default()
        };
        (dir, objects, engine, key, opts)
    }

    #[tokio::test]
    async fn a_stream_in_odd_pieces_becomes_a_container_that_restores() {
        let (_dir, objects, engine, key, opts) = setup();
        // Little memory: a tenant's share is two chunks' worth.
        let memory = TransferMemory::new(256 << 10);
        let original: Vec<u8> = (0..300_007u32).map(|i| (i * 31 % 253) as u8).collect();
        let pieces: Vec<Result<Bytes, JobError>> =
            original.chunks(7_777).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        let lanes = Lanes {
            pool: engine.pool(),
            lane: engine.pool().lane(),
            window: 3,
            tenant_id: "t",
            memory: &memory,
            memory_wait: Duration::from_secs(5),
        };
        let ctl = Control::new();
        let Encoded { summary, md5, hashes } = encode_stream(
            &objects,
            "objects/t/c",
            lanes,
            futures_util::stream::iter(pieces),
            opts,
            Also {
                md5: true,
                hashes_from: Some(3),
            },
            &ctl,
        )
        .await
        .unwrap();
        let want: [u8; 16] = md5::Md5::digest(&original).into();
        assert_eq!(md5, Some(want), "the MD5 is computed as the chunks go by");
        // Each chunk's subtree as chunk 3 on of a larger whole.
        let cs = 1 << 14;
        let expected: Vec<Vec<u8>> = original
            .chunks(cs)
            .enumerate()
            .map(|(i, c)| hash_chunk(3 + i as u64, cs, c).to_bytes())
            .collect();
        assert_eq!(hashes.iter().map(ChunkHash::to_bytes).collect::<Vec<_>>(), expected);
        assert_eq!(summary.plaintext_len, original.len() as u64);
        assert_eq!(summary.digest, *blake3::hash(&original).as_bytes());
        let path = objects.local_path("objects/t/c").unwrap();
        let container = std::fs::read(path).unwrap();
        assert_eq!(container.len() as u64, summary.container_len);
        let mut restored = Vec::new();
        engine
            .decode(
                &container[..],
                &mut restored,
                &KeyRing::new().with_raw_key(key),
                &Control::new(),
            )
            .unwrap();
        assert_eq!(restored, original);
        assert_eq!(ctl.progress.done(), original.len() as u64);
        assert_eq!(memory.lent(), 0, "every chunk gave its memory back");
    }

    #[tokio::test]
    async fn a_broken_source_or_a_cancel_leaves_nothing() {
        let (dir, objects, engine, _key, opts) = setup();
        let memory = TransferMemory::new(64 << 20);
        let broken = futures_util::stream::iter(vec![
            Ok(Bytes::from(vec![1u8; 100_000])),
            Err(JobError::Interrupted("gone".into())),
        ]);
        let lanes = Lanes {
            pool: engine.pool(),
            lane: engine.pool().lane(),
            window: 2,
            tenant_id: "t",
            memory: &memory,
            memory_wait: Duration::from_secs(5),
        };
        let got = encode_stream(
            &objects,
            "objects/t/c",
            lanes,
            broken,
            opts.clone(),
            Also::default(),
            &Control::new(),
        )
        .await;
        assert!(matches!(got, Err(EncodeStop::Source(JobError::Interrupted(_)))));
        let ctl = Control::new();
        ctl.cancel.cancel();
        let lanes = Lanes {
            pool: engine.pool(),
            lane: engine.pool().lane(),
            window: 2,
            tenant_id: "t",
            memory: &memory,
            memory_wait: Duration::from_secs(5),
        };
        let idle = futures_util::stream::pending::<Result<Bytes, JobError>>();
        let got = encode_stream(&objects, "objects/t/d", lanes, idle, opts, Also::default(), &ctl).await;
        assert!(matches!(got, Err(EncodeStop::Cancelled)));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let left: Vec<_> = walk(dir.path());
        assert!(left.is_empty(), "{left:?}");
    }

    fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                files.extend(walk(&p));
            } else {
                files.push(p);
            }
        }
        files
    }
}
