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

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, Stream, StreamExt};
use sluice_engine::format::{parse_footer, KeyRing, FOOTER_LEN};
use sluice_engine::{Archive, CpuPool, DigestCheck, Lane, OpenedChunk, ReadAt, RecordRead};
use sluice_store::Objects;

use crate::transfers::{Held, ReadAhead, TransferPermit};

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
) -> crate::Result<Archive<()>> {
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
    Ok(archive)
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
    /// checked too).
    pub whole: bool,
    /// The CPU pool.
    pub pool: Arc<CpuPool>,
    /// The tenant's lane in it.
    pub lane: Lane,
    /// Chunks in flight at most.
    pub window: usize,
    /// The shared budget for chunks decoded ahead.
    pub read_ahead: Arc<ReadAhead>,
    /// The transfer's admission, held until the stream ends.
    #[expect(dead_code, reason = "held for its drop, which ends the transfer")]
    pub permit: TransferPermit,
}

type Opening = BoxFuture<'static, (io::Result<OpenedChunk>, Option<Held>)>;

struct State {
    d: Download,
    reads: VecDeque<RecordRead>,
    in_flight: FuturesOrdered<Opening>,
    digest: Option<DigestCheck>,
    done: bool,
}

/// The content as a stream of plaintext pieces, in order.
pub(crate) fn stream(d: Download) -> crate::Result<impl Stream<Item = io::Result<Bytes>> + Send + 'static> {
    let reads = d.archive.record_reads(&d.range)?;
    let digest = d.whole.then(|| d.archive.digest_check());
    let state = State {
        d,
        reads: reads.into(),
        in_flight: FuturesOrdered::new(),
        digest,
        done: false,
    };
    Ok(futures_util::stream::unfold(state, step))
}

async fn step(mut st: State) -> Option<(io::Result<Bytes>, State)> {
    if st.done {
        return None;
    }
    st.top_up();
    let Some((opened, _held)) = st.in_flight.next().await else {
        st.done = true;
        let check = st.digest.take().map(DigestCheck::finish);
        return match check {
            Some(Err(e)) => Some((Err(failed(&st.d, e)), st)),
            _ => None,
        };
    };
    match opened {
        Ok(chunk) => {
            if let Some(d) = st.digest.as_mut() {
                d.push(chunk.hash);
            }
            let part = st.d.archive.slice_in(&st.d.range, chunk.index, chunk.plaintext.len());
            Some((Ok(Bytes::from(chunk.plaintext).slice(part)), st))
        }
        Err(e) => {
            st.done = true;
            Some((Err(e), st))
        }
    }
}

impl State {
    /// Starts reading the next chunk if none is in flight, and more while
    /// the window and the read-ahead budget allow.
    fn top_up(&mut self) {
        while self.in_flight.len() < self.d.window.max(1) {
            let Some(next) = self.reads.front() else {
                return;
            };
            let record_len = usize::try_from(next.bytes.end - next.bytes.start).unwrap_or(usize::MAX);
            // Record and plaintext: about twice the record.
            let held = if self.in_flight.is_empty() {
                None
            } else {
                match self.d.read_ahead.try_hold(record_len.saturating_mul(2)) {
                    Some(h) => Some(h),
                    None => return,
                }
            };
            let Some(read) = self.reads.pop_front() else {
                return;
            };
            let objects = self.d.objects.clone();
            let location = self.d.location.clone();
            let archive = self.d.archive.clone();
            let pool = Arc::clone(&self.d.pool);
            let lane = self.d.lane;
            let opening = async move {
                let record = match objects.read_range(&location, read.bytes.clone()).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(error = %e, location, "reading a chunk of a download failed");
                        return (
                            Err(io::Error::other(format!("reading the stored object failed: {e}"))),
                            held,
                        );
                    }
                };
                let index = read.index;
                let opened = pool
                    .run(lane, record_len as u64, move || {
                        archive.open_record(index, Vec::from(record))
                    })
                    .await
                    .and_then(|r| r);
                let opened = opened.map_err(|e| {
                    tracing::warn!(error = %e, location, chunk = index, "a chunk of a download failed to open");
                    io::Error::other(e.to_string())
                });
                (opened, held)
            };
            self.in_flight.push_back(opening.boxed());
        }
    }
}

fn failed(d: &Download, e: sluice_engine::Error) -> io::Error {
    tracing::warn!(error = %e, location = d.location, "a download failed its whole-file check");
    io::Error::other(e.to_string())
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

    async fn read(f: &Fixture, range: Option<Range<u64>>, read_ahead: usize) -> io::Result<Vec<u8>> {
        let pool = Arc::clone(f.engine.pool());
        let lane = pool.lane();
        let archive = open(&f.objects, "c", f.keys.clone(), &pool, lane).await.unwrap();
        let transfers = Arc::new(Transfers::new(4, 4));
        let d = Download {
            range: range.clone().unwrap_or(0..archive.plaintext_len()),
            whole: range.is_none(),
            archive,
            objects: f.objects.clone(),
            location: "c".into(),
            pool,
            lane,
            window: 4,
            read_ahead: Arc::new(ReadAhead::new(read_ahead)),
            permit: transfers.enter("t", Direction::Download).unwrap(),
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
    async fn whole_objects_and_ranges_come_out_exact_with_or_without_read_ahead() {
        let f = fixture();
        f.store
            .put(&Path::from("c"), PutPayload::from(f.container.clone()))
            .await
            .unwrap();
        for budget in [0, 64 << 20] {
            assert_eq!(read(&f, None, budget).await.unwrap(), f.original);
            for r in [0..1, 70_000..300_001, 999_999..1_000_003, 65_536..131_072, 5..5] {
                let got = read(&f, Some(r.clone()), budget).await.unwrap();
                assert_eq!(got, &f.original[r.start as usize..r.end as usize], "{r:?}");
            }
        }
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
        let archive = open(&objects, "c", KeyRing::new().with_raw_key(key), pool, pool.lane())
            .await
            .unwrap();
        assert!(archive.index().body_lens.len() as u64 * 4 > TAIL);
        assert_eq!(archive.plaintext_len(), original.len() as u64);
    }
}
