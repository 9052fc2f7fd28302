//! Downloads that hold no thread: an object's content (all of it or a
//! range) as an async stream of authenticated plaintext chunks.
//!
//! ```text
//!  client pulls ─▶ next chunk: ranged read (async) ─▶ open on the CPU pool ─▶ yield
//!                  (+ a few more ahead while the read-ahead budget has room)
//! ```
//!
//! The stream does work only when the client's socket asks for more: a
//! slow client stops the reads and the decoding, and holds no thread
//! (blocking or engine) while it takes its time. Each chunk's record is
//! read with one ranged read (a `pread` on the local store, a ranged GET
//! on S3), opened by the engine's sans-I/O [`Archive::open_record`] on the
//! CPU pool in the tenant's lane (tenants take turns), and yielded in
//! order. A whole-object read also checks the whole-file digest at the
//! end, as a restore does; a failure ends the body with an error, which
//! cuts the response short (the client sees a truncated transfer, never
//! unauthenticated bytes).
//!
//! Opening the container (header, key unwrap, index) reads its head and
//! tail with ranged reads and unlocks it on the CPU pool; the result is
//! cached, so later reads of the object skip it.

use std::collections::VecDeque;
use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, Stream, StreamExt};
use sluice_engine::format::{parse_footer, KeyRing, FOOTER_LEN};
use sluice_engine::{Archive, CpuPool, DigestCheck, Lane, OpenedChunk, ReadAt, RecordRead};
use sluice_store::Objects;

use crate::transfers::{Held, TransferMemory, TransferPermit};

/// How much of a container's start is read to open it: far more than any
/// header with a few key slots.
const HEAD: u64 = 64 << 10;
/// How much of its end is read first for the footer and the index (a
/// larger index is read again, whole).
const TAIL: u64 = 64 << 10;

/// A container's head and tail, read ahead of opening it.
struct Prefetched {
    size: u64,
    head: Bytes,
    tail_start: u64,
    tail: Bytes,
}

impl ReadAt for Prefetched {
    fn size(&self) -> io::Result<u64> {
        Ok(self.size)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.size)
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        let (piece, start) = if end <= self.head.len() as u64 {
            (&self.head, 0)
        } else if offset >= self.tail_start {
            (&self.tail, self.tail_start)
        } else {
            return Err(io::Error::other(
                "the container's header is larger than sluice reads ahead to open it",
            ));
        };
        let from = usize::try_from(offset - start).map_err(io::Error::other)?;
        let src = piece
            .get(from..from + buf.len())
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// Opens the container at `location` (header unlocked with `keys`, index
/// authenticated) with ranged reads and the CPU pool.
pub(crate) async fn open(
    objects: &Objects,
    location: &str,
    keys: KeyRing,
    pool: &CpuPool,
    lane: Lane,
) -> crate::Result<(Archive<()>, u64)> {
    let size = objects
        .size_of(location)
        .await?
        .ok_or_else(|| crate::Error::NotFound(format!("container of {location:?}")))?;
    let head = objects.read_range(location, 0..size.min(HEAD)).await?;
    let mut tail_start = size.saturating_sub(TAIL);
    let mut tail = objects.read_range(location, tail_start..size).await?;
    // An index larger than the tail read: read it whole.
    let footer = tail.len().checked_sub(FOOTER_LEN).and_then(|at| tail.get(at..));
    if let Some(Ok(index_offset)) = footer.map(parse_footer) {
        if index_offset < tail_start && index_offset < size {
            tail_start = index_offset;
            tail = objects.read_range(location, tail_start..size).await?;
        }
    }
    let source = Prefetched {
        size,
        head,
        tail_start,
        tail,
    };
    let archive = pool
        .run(lane, HEAD, move || {
            Archive::open(source, &keys).map(|a| a.with_source(()))
        })
        .await??;
    Ok((archive, size))
}

/// What a download reads and where its work runs.
pub(crate) struct Download {
    /// The opened container.
    pub archive: Archive<()>,
    /// The store that holds it.
    pub objects: Objects,
    /// Its location.
    pub location: String,
    /// The plaintext bytes to send.
    pub range: Range<u64>,
    /// Whether that is the whole object (then the whole-file digest is
    /// checked too, unless the body is zstd frames).
    pub whole: bool,
    /// How the body is encoded.
    pub encoding: BodyEncoding,
    /// The CPU pool.
    pub pool: Arc<CpuPool>,
    /// The tenant's lane in it.
    pub lane: Lane,
    /// Chunks in flight at most.
    pub window: usize,
    /// Whose transfer this is (for its share of the memory).
    pub tenant_id: String,
    /// The memory chunks are held in.
    pub memory: Arc<TransferMemory>,
    /// The memory for the first chunk, if taken before answering.
    pub first: Option<Held>,
    /// Longest wait for memory for the next chunk (past it, the body is cut).
    pub memory_wait: Duration,
    /// The transfer's admission, held until the stream ends (none for a
    /// verify job, which is bounded by the job slots).
    #[expect(dead_code, reason = "held for its drop, which ends the transfer")]
    pub permit: Option<TransferPermit>,
}

/// How a download's body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoding {
    /// The plaintext.
    Identity,
    /// The whole object as zstd frames, one per chunk (`Content-Encoding:
    /// zstd`): compressed chunks are sent as stored, after their
    /// authentication and decryption, without being decompressed here; the
    /// client decompresses. Each chunk is authenticated as in any read;
    /// the whole-file digest, which needs the plaintext, is the client's
    /// to check (`sluice pull` does).
    Zstd,
}

impl BodyEncoding {
    /// Its name, as `Content-Encoding` and metrics say it.
    pub fn as_str(self) -> &'static str {
        match self {
            BodyEncoding::Identity => "identity",
            BodyEncoding::Zstd => "zstd",
        }
    }
}

/// A chunk ready to send: its number, its bytes (plaintext, or a zstd
/// frame of it), and its plaintext's hash when it was opened.
struct Piece {
    index: u64,
    bytes: Bytes,
    hash: Option<sluice_engine::format::ChunkHash>,
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadFailure {
    /// The store failed to give the bytes.
    #[error("reading the stored object failed: {0}")]
    Store(#[from] sluice_store::Error),
    /// The bytes are not what was stored (or the engine refused them).
    #[error(transparent)]
    Engine(#[from] sluice_engine::Error),
}

type Opening = BoxFuture<'static, (Result<Piece, ReadFailure>, Option<Held>)>;

struct State {
    d: Download,
    reads: VecDeque<RecordRead>,
    in_flight: FuturesOrdered<Opening>,
    digest: Option<DigestCheck>,
    /// The memory of the chunk yielded last: the client's connection is
    /// still sending it until it asks for the next.
    last: Option<Held>,
    done: bool,
}

/// Memory a chunk takes while it is read, opened and sent: its record and
/// its plaintext (a small object's plaintext is small).
fn chunk_bytes(archive: &Archive<()>, read: &RecordRead) -> usize {
    let record = usize::try_from(read.bytes.end - read.bytes.start).unwrap_or(usize::MAX);
    let plain = archive.header().chunk_size.bytes() as u64;
    let plain = usize::try_from(plain.min(archive.plaintext_len())).unwrap_or(usize::MAX);
    record.saturating_add(plain)
}

/// The memory the first chunk a read of `range` needs takes.
pub(crate) fn first_chunk_bytes(archive: &Archive<()>, range: &Range<u64>) -> usize {
    archive
        .record_reads(range)
        .ok()
        .and_then(|reads| reads.first().map(|r| chunk_bytes(archive, r)))
        .unwrap_or(0)
}

/// The content as a stream of plaintext pieces, in order, for a response
/// body (an error cuts it off).
pub(crate) fn stream(d: Download) -> crate::Result<impl Stream<Item = io::Result<Bytes>> + Send + 'static> {
    let location = d.location.clone();
    let sent = metrics::counter!("sluice_download_bytes_total", "encoding" => d.encoding.as_str());
    Ok(chunks(d)?.map(move |piece| {
        if let Ok(bytes) = &piece {
            sent.increment(bytes.len() as u64);
        }
        piece.map_err(|e| {
            tracing::warn!(error = %e, location, "a download failed");
            io::Error::other(e.to_string())
        })
    }))
}

/// The content as authenticated plaintext pieces, in order.
pub(crate) fn chunks(d: Download) -> crate::Result<impl Stream<Item = Result<Bytes, ReadFailure>> + Send + 'static> {
    let reads = d.archive.record_reads(&d.range)?;
    let digest = (d.whole && d.encoding == BodyEncoding::Identity).then(|| d.archive.digest_check());
    let state = State {
        d,
        reads: reads.into(),
        in_flight: FuturesOrdered::new(),
        digest,
        last: None,
        done: false,
    };
    Ok(futures_util::stream::unfold(state, step))
}

async fn step(mut st: State) -> Option<(Result<Bytes, ReadFailure>, State)> {
    if st.done {
        return None;
    }
    // Asked for more: the previous chunk has (mostly) gone to the socket.
    st.last = None;
    if st.in_flight.is_empty() {
        if let Some(next) = st.reads.front() {
            // The chunk the client waits for: wait for its memory (no
            // thread waits), but not for ever.
            let bytes = st.chunk_bytes(next);
            let held = match st.d.first.take() {
                Some(h) => h,
                None => match st.d.memory.hold(&st.d.tenant_id, bytes, st.d.memory_wait).await {
                    Ok(h) => h,
                    Err(refused) => {
                        metrics::counter!("sluice_transfers_cut_total", "reason" => "memory", "direction" => "download")
                            .increment(1);
                        st.done = true;
                        let e = sluice_engine::Error::Internal(format!("waiting for memory: {refused}"));
                        return Some((Err(e.into()), st));
                    }
                },
            };
            st.start_next(held);
        }
    }
    st.top_up();
    let Some((opened, held)) = st.in_flight.next().await else {
        st.done = true;
        let check = st.digest.take().map(DigestCheck::finish);
        return match check {
            Some(Err(e)) => Some((Err(e.into()), st)),
            _ => None,
        };
    };
    match opened {
        Ok(piece) => {
            if let (Some(d), Some(hash)) = (st.digest.as_mut(), piece.hash) {
                d.push(hash);
            }
            st.last = held;
            let bytes = match st.d.encoding {
                BodyEncoding::Identity => {
                    let part = st.d.archive.slice_in(&st.d.range, piece.index, piece.bytes.len());
                    piece.bytes.slice(part)
                }
                BodyEncoding::Zstd => piece.bytes,
            };
            Some((Ok(bytes), st))
        }
        Err(e) => {
            st.done = true;
            Some((Err(e), st))
        }
    }
}

impl State {
    /// Memory a chunk takes while it is read, opened and sent: its record
    /// and its plaintext.
    fn chunk_bytes(&self, read: &RecordRead) -> usize {
        chunk_bytes(&self.d.archive, read)
    }

    /// Decodes ahead while the window and the memory allow.
    fn top_up(&mut self) {
        while self.in_flight.len() < self.d.window.max(1) {
            let Some(next) = self.reads.front() else {
                return;
            };
            let bytes = self.chunk_bytes(next);
            match self.d.memory.try_hold_spare(&self.d.tenant_id, bytes) {
                Some(held) => self.start_next(held),
                None => return,
            }
        }
    }

    /// Starts reading and opening the next chunk, in `held` memory.
    fn start_next(&mut self, mut held: Held) {
        let Some(read) = self.reads.pop_front() else {
            return;
        };
        let record_len = read.bytes.end - read.bytes.start;
        // The record's part is given back once the chunk is opened.
        let for_record = held.split(usize::try_from(record_len).unwrap_or(usize::MAX));
        let objects = self.d.objects.clone();
        let location = self.d.location.clone();
        let archive = self.d.archive.clone();
        let pool = Arc::clone(&self.d.pool);
        let lane = self.d.lane;
        let encoding = self.d.encoding;
        let opening = async move {
            let record = match objects.read_range(&location, read.bytes.clone()).await {
                Ok(r) => r,
                Err(e) => return (Err(e.into()), Some(held)),
            };
            let index = read.index;
            let opened = pool
                .run(lane, record_len, move || {
                    piece_of(&archive, index, Vec::from(record), encoding)
                })
                .await
                .and_then(|r| r)
                .map_err(ReadFailure::from);
            drop(for_record);
            (opened, Some(held))
        };
        // A task of its own: the read and the opening go on while the
        // connection is busy sending the chunk before (the body is polled
        // only when that is done), so sending and decoding overlap. Aborted
        // if the download is dropped.
        let task = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(opening));
        let joined = async move {
            match task.await {
                Ok(done) => done,
                Err(e) => {
                    let failed = sluice_engine::Error::Internal(format!("a chunk's task failed: {e}"));
                    (Err(failed.into()), None)
                }
            }
        };
        self.in_flight.push_back(joined.boxed());
    }
}

/// Chunk `index` from its `record`, authenticated, as `encoding` sends it.
fn piece_of(
    archive: &Archive<()>,
    index: u64,
    record: Vec<u8>,
    encoding: BodyEncoding,
) -> sluice_engine::Result<Piece> {
    match encoding {
        BodyEncoding::Identity => {
            let OpenedChunk { index, plaintext, hash } = archive.open_record(index, record)?;
            Ok(Piece {
                index,
                bytes: Bytes::from(plaintext),
                hash: Some(hash),
            })
        }
        BodyEncoding::Zstd => {
            let (buf, frame) = archive.unseal_record(index, record)?.into_zstd_frame().ok_or_else(|| {
                sluice_engine::Error::Internal(format!("chunk {index} is compressed with another codec than zstd"))
            })?;
            Ok(Piece {
                index,
                bytes: Bytes::from(buf).slice(frame),
                hash: None,
            })
        }
    }
}

/// Where a verify reads and runs.
pub(crate) struct VerifyAt {
    /// The store.
    pub objects: Objects,
    /// The container.
    pub location: String,
    /// The CPU pool.
    pub pool: Arc<CpuPool>,
    /// The tenant's lane in it.
    pub lane: Lane,
    /// Chunks in flight at most.
    pub window: usize,
    /// Whose object it is.
    pub tenant_id: String,
    /// The memory chunks are held in.
    pub memory: Arc<TransferMemory>,
    /// Longest wait for memory for a chunk.
    pub memory_wait: Duration,
}

/// Authenticates every byte of the container (opened afresh, not from the
/// cache, so its header is checked again too), as a restore would, writing
/// nothing; counts container bytes on `ctl.progress`. Returns the
/// whole-file digest.
pub(crate) async fn verify(at: VerifyAt, keys: KeyRing, ctl: &sluice_engine::Control) -> Result<[u8; 32], ReadFailure> {
    let (archive, container_len) = match open(&at.objects, &at.location, keys, &at.pool, at.lane).await {
        Ok(opened) => opened,
        Err(crate::Error::NotFound(what)) => return Err(sluice_store::Error::NotFound(what).into()),
        Err(crate::Error::Unavailable) => {
            return Err(
                sluice_store::Error::Objects(sluice_store::BlobError::failing("the store is unavailable")).into(),
            )
        }
        Err(e) => return Err(sluice_engine::Error::Internal(e.to_string()).into()),
    };
    let digest = archive.index().digest;
    let cs = archive.header().chunk_size.bytes() as u64;
    let d = Download {
        range: 0..archive.plaintext_len(),
        whole: true,
        encoding: BodyEncoding::Identity,
        archive,
        objects: at.objects,
        location: at.location,
        pool: at.pool,
        lane: at.lane,
        window: at.window,
        tenant_id: at.tenant_id,
        memory: at.memory,
        first: None,
        memory_wait: at.memory_wait,
        permit: None,
    };
    let mut body = Box::pin(chunks(d).map_err(|e| sluice_engine::Error::Internal(e.to_string()))?);
    while let Some(piece) = body.next().await {
        if ctl.cancel.is_cancelled() {
            return Err(sluice_engine::Error::Cancelled.into());
        }
        let n = piece?.len() as u64;
        // About a chunk's record per chunk; the exact total is set below.
        ctl.progress.add_in(n.min(cs));
        ctl.progress.add_done(n.min(cs));
        ctl.progress.add_chunk();
    }
    let rest = container_len.saturating_sub(ctl.progress.done());
    ctl.progress.add_in(rest);
    ctl.progress.add_done(rest);
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;
    use object_store::path::Path;
    use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
    use sluice_engine::format::{ChunkSize, FileParams, RawKey, SlotSpec};
    use sluice_engine::{Control, EncodeOptions, Engine, EngineConfig};

    use super::*;
    use crate::transfers::{Direction, Transfers};

    struct Fixture {
        engine: Engine,
        objects: Objects,
        store: Arc<dyn ObjectStore>,
        keys: KeyRing,
        original: Vec<u8>,
        container: Vec<u8>,
    }

    fn fixture() -> Fixture {
        let engine = Engine::new(EngineConfig {
            threads: Some(2),
            ..Default::default()
        })
        .unwrap();
        let key = RawKey::generate().unwrap();
        let opts = EncodeOptions {
            slots: vec![SlotSpec::RawKey(key.clone())],
            params: FileParams {
                chunk_size: ChunkSize::from_log2(16).unwrap(),
                ..Default::default()
            },
            ..EncodeOptions::default()
        };
        let original: Vec<u8> = (0..1_000_003u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut container = Vec::new();
        engine
            .encode(&original[..], &mut container, &opts, &Control::new())
            .unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let objects = Objects::new(Arc::clone(&store), crate::Config::defaults().unwrap().store);
        Fixture {
            engine,
            objects,
            store,
            keys: KeyRing::new().with_raw_key(key),
            original,
            container,
        }
    }

    async fn read(f: &Fixture, range: Option<Range<u64>>, memory: usize) -> io::Result<Vec<u8>> {
        read_as(f, range, memory, BodyEncoding::Identity).await
    }

    async fn read_as(
        f: &Fixture,
        range: Option<Range<u64>>,
        memory: usize,
        encoding: BodyEncoding,
    ) -> io::Result<Vec<u8>> {
        let pool = Arc::clone(f.engine.pool());
        let lane = pool.lane();
        let (archive, _) = open(&f.objects, "c", f.keys.clone(), &pool, lane).await.unwrap();
        let transfers = Arc::new(Transfers::new(4, 4));
        let d = Download {
            range: range.clone().unwrap_or(0..archive.plaintext_len()),
            whole: range.is_none(),
            encoding,
            archive,
            objects: f.objects.clone(),
            location: "c".into(),
            pool,
            lane,
            window: 4,
            tenant_id: "t".into(),
            memory: Arc::new(TransferMemory::new(memory)),
            first: None,
            memory_wait: Duration::from_secs(5),
            permit: Some(transfers.enter("t", Direction::Download).unwrap()),
        };
        let mut body = Box::pin(stream(d).unwrap());
        let mut out = Vec::new();
        while let Some(piece) = body.next().await {
            out.extend_from_slice(&piece?);
        }
        drop(body);
        assert_eq!(transfers.total(), 0, "the permit ends with the stream");
        Ok(out)
    }

    #[tokio::test]
    async fn whole_objects_and_ranges_come_out_exact_with_little_or_much_memory() {
        let f = fixture();
        f.store
            .put(&Path::from("c"), PutPayload::from(f.container.clone()))
            .await
            .unwrap();
        // 256 KiB: a tenant's share holds one chunk (64 KiB record + 64
        // KiB plaintext) at a time; 64 MiB: all of them.
        for budget in [256 << 10, 64 << 20] {
            assert_eq!(read(&f, None, budget).await.unwrap(), f.original);
            for r in [0..1, 70_000..300_001, 999_999..1_000_003, 65_536..131_072, 5..5] {
                let got = read(&f, Some(r.clone()), budget).await.unwrap();
                assert_eq!(got, &f.original[r.start as usize..r.end as usize], "{r:?}");
            }
        }
    }

    #[tokio::test]
    async fn a_whole_object_as_zstd_frames_decodes_to_it_and_is_smaller() {
        let f = fixture();
        f.store
            .put(&Path::from("c"), PutPayload::from(f.container.clone()))
            .await
            .unwrap();
        for budget in [256 << 10, 64 << 20] {
            let framed = read_as(&f, None, budget, BodyEncoding::Zstd).await.unwrap();
            assert!(framed.len() < f.original.len() / 2, "{} bytes", framed.len());
            assert_eq!(zstd::stream::decode_all(&framed[..]).unwrap(), f.original);
        }
        // Tampered: cut off, never sent unauthenticated.
        let mut bad = f.container.clone();
        let at = bad.len() / 2;
        bad[at] ^= 1;
        f.store.put(&Path::from("c"), PutPayload::from(bad)).await.unwrap();
        assert!(read_as(&f, None, 64 << 20, BodyEncoding::Zstd).await.is_err());
    }

    #[tokio::test]
    async fn a_tampered_chunk_ends_the_body_with_an_error() {
        let f = fixture();
        let mut bad = f.container.clone();
        // A byte in the middle of the data, well past the header.
        let at = bad.len() / 2;
        bad[at] ^= 1;
        f.store.put(&Path::from("c"), PutPayload::from(bad)).await.unwrap();
        assert!(read(&f, None, 64 << 20).await.is_err());
    }

    #[tokio::test]
    async fn a_large_index_is_read_whole() {
        // 72 MiB in 4 KiB chunks: an index of 72 KiB, more than the tail read.
        let engine = Engine::new(Default::default()).unwrap();
        let key = RawKey::generate().unwrap();
        let opts = EncodeOptions {
            slots: vec![SlotSpec::RawKey(key.clone())],
            params: FileParams {
                chunk_size: ChunkSize::from_log2(12).unwrap(),
                ..Default::default()
            },
            ..EncodeOptions::default()
        };
        let original = vec![0u8; 72 << 20];
        let mut container = Vec::new();
        engine
            .encode(&original[..], &mut container, &opts, &Control::new())
            .unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let objects = Objects::new(Arc::clone(&store), crate::Config::defaults().unwrap().store);
        store.put(&Path::from("c"), PutPayload::from(container)).await.unwrap();
        let pool = engine.pool();
        let (archive, _) = open(&objects, "c", KeyRing::new().with_raw_key(key), pool, pool.lane())
            .await
            .unwrap();
        assert!(archive.index().body_lens.len() as u64 * 4 > TAIL);
        assert_eq!(archive.plaintext_len(), original.len() as u64);
    }
}
