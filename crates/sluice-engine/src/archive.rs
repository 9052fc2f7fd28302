//! Random access: restore any byte range of the original by reading only
//! the chunks it touches, located through the authenticated index.
//!
//! An [`Archive`] is opened once (header unlocked, index authenticated) and
//! then serves any number of range reads, concurrently if wanted: it reads
//! through a [`ReadAt`] source, one call per chunk (record header and body
//! together), and its opened state is shared, so clones are cheap and a
//! server can keep opened archives in a cache instead of unlocking again.

use std::io::{self, Write};
use std::ops::Range;
use std::sync::Arc;

use sluice_format::{
    hash_chunk, parse_footer, ChunkHash, DigestBuilder, Error as FormatError, Header, Index, KeyRing, RecordHeader,
    Region, StreamContext, TruncatedAt, FOOTER_LEN, RECORD_HEADER_LEN,
};

use crate::codec_cache::with_decompressor;
use crate::container::open_header_cancellable;
use crate::control::CancelToken;
use crate::control::Control;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::pipeline::{self, Buffers, Work};
use crate::source::ReadAt;
use crate::target::Target;

/// Fixed part of the index plaintext (counts, offset, digest).
const INDEX_FIXED: u64 = sluice_format::stream::INDEX_FIXED_LEN as u64;
const TAG: u64 = sluice_format::TAG_LEN as u64;

/// An opened container on a [`ReadAt`] source, ready for range reads.
/// Cloning shares the opened header and index (and clones the source).
#[derive(Clone)]
pub struct Archive<S> {
    source: S,
    opened: Arc<Opened>,
}

impl<S> std::fmt::Debug for Archive<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("plaintext_len", &self.opened.index.plaintext_len)
            .field("chunks", &self.opened.index.chunk_count)
            .finish()
    }
}

/// What opening found: the unlocked stream context, the index and each
/// chunk record's offset.
struct Opened {
    ctx: Arc<StreamContext>,
    index: Index,
    offsets: Vec<u64>,
}

impl Opened {
    /// Checks the record header at the start of `record` (chunk `i`'s whole
    /// record) against the stream and the index.
    fn check_record(&self, i: u64, record: &[u8]) -> Result<RecordHeader> {
        let slot = usize::try_from(i).map_err(|_| Error::Internal("chunk number overflow".into()))?;
        let body_len = *self
            .index
            .body_lens
            .get(slot)
            .ok_or_else(|| Error::Internal(format!("chunk {i} missing from the index")))?;
        let rh_bytes: &[u8; RECORD_HEADER_LEN] = record
            .first_chunk()
            .ok_or(FormatError::Truncated(TruncatedAt::InsideChunk(i)))?;
        let rh = RecordHeader::parse(rh_bytes, Region::Chunk(i))?;
        self.ctx.check_data_record(i, &rh)?;
        if rh.body_len != body_len
            || u64::from(rh.plain_len) != self.ctx.expected_chunk_len(i, self.index.plaintext_len)
        {
            return Err(FormatError::IndexMismatch(format!("chunk {i} record disagrees with the index")).into());
        }
        if record.len() != RECORD_HEADER_LEN + body_len as usize {
            return Err(FormatError::Truncated(TruncatedAt::InsideChunk(i)).into());
        }
        Ok(rh)
    }
}

/// Where one chunk's record lies in the container: what a caller that does
/// its own I/O reads (in one piece) for [`Archive::open_record`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRead {
    /// The chunk's number.
    pub index: u64,
    /// The record's bytes in the container (header and body).
    pub bytes: Range<u64>,
}

/// A chunk opened by [`Archive::open_record`]: its plaintext, authenticated.
#[derive(Debug)]
pub struct OpenedChunk {
    /// The chunk's number.
    pub index: u64,
    /// Its plaintext.
    pub plaintext: Vec<u8>,
    /// Its hash, for the whole-file digest ([`DigestCheck`]).
    pub hash: ChunkHash,
}

/// A chunk authenticated and decrypted but still in its stored form
/// (compressed or not), made by [`Archive::unseal_record`].
#[derive(Debug)]
pub struct StoredChunk {
    /// Its number in the container it came from.
    pub index: u64,
    /// Whether its stored bytes are compressed.
    pub compressed: bool,
    /// Bytes of plaintext it holds.
    pub plain_len: usize,
    /// The codec its stored bytes are compressed with (if they are).
    pub codec: sluice_format::Codec,
    /// The record it was read in, cut after its stored bytes (which
    /// follow the record header's place).
    record: Vec<u8>,
}

impl StoredChunk {
    /// Its stored bytes.
    pub fn stored(&self) -> &[u8] {
        self.record.get(RECORD_HEADER_LEN..).unwrap_or_default()
    }

    /// The record buffer: room for a record header, then the stored bytes.
    pub(crate) fn into_record(self) -> Vec<u8> {
        self.record
    }

    /// The chunk as one zstd frame of its plaintext
    /// ([`sluice_format::zstd_frames`]), in a buffer and the range of it
    /// the frame fills: the stored bytes where they are when zstd
    /// compressed them (no copy), else a frame of raw blocks around them.
    /// `None` for a chunk another codec compressed.
    pub fn into_zstd_frame(self) -> Option<(Vec<u8>, Range<usize>)> {
        if !self.compressed {
            let mut frame = Vec::new();
            sluice_format::zstd_frames::raw_frame(self.stored(), &mut frame);
            let n = frame.len();
            return Some((frame, 0..n));
        }
        (self.codec == sluice_format::Codec::Zstd).then(|| {
            let n = self.record.len();
            (self.record, RECORD_HEADER_LEN.min(n)..n)
        })
    }
}

/// Checks, chunk by chunk in order, that a whole read matches the digest the
/// authenticated index holds (see [`Archive::digest_check`]).
pub struct DigestCheck {
    builder: DigestBuilder,
    expected: [u8; 32],
    chunks: u64,
    expected_chunks: u64,
}

impl DigestCheck {
    /// Adds the next chunk's hash.
    pub fn push(&mut self, hash: ChunkHash) {
        self.builder.push(hash);
        self.chunks += 1;
    }

    /// Whether every chunk was pushed and the digest matches.
    pub fn finish(self) -> Result<()> {
        if self.chunks != self.expected_chunks {
            return Err(
                FormatError::IndexMismatch(format!("{} of {} chunks read", self.chunks, self.expected_chunks)).into(),
            );
        }
        if self.builder.finish() != self.expected {
            return Err(FormatError::DigestMismatch.into());
        }
        Ok(())
    }
}

/// What a range read did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeSummary {
    /// Bytes written.
    pub bytes: u64,
    /// Chunks read and authenticated.
    pub chunks_read: u64,
}

/// Reads `buf.len()` bytes at `offset`; a source that ends first is
/// truncated `at`.
fn read_at_or<S: ReadAt + ?Sized>(source: &S, buf: &mut [u8], offset: u64, at: TruncatedAt) -> Result<()> {
    source.read_exact_at(buf, offset).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => FormatError::Truncated(at).into(),
        _ => Error::Read(e),
    })
}

/// A [`std::io::Read`] over a [`ReadAt`] from offset 0, for the header.
struct Cursor<'a, S: ?Sized> {
    source: &'a S,
    len: u64,
    pos: u64,
}

impl<S: ReadAt + ?Sized> io::Read for Cursor<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        let Some(dst) = buf.get_mut(..n) else {
            return Ok(0);
        };
        self.source.read_exact_at(dst, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// The header is read in pieces of this size: large enough for any common
/// header in one call, small enough to waste little on a remote source.
const HEADER_READ: usize = 4096;

impl<S: ReadAt> Archive<S> {
    /// Reads and unlocks the header, then reads and authenticates the index
    /// through the footer. Reads nothing else.
    ///
    /// Unlocking a passphrase slot runs Argon2 (async callers: use
    /// `spawn_blocking`).
    pub fn open(source: S, keys: &KeyRing) -> Result<Self> {
        Self::open_cancellable(source, keys, &CancelToken::new())
    }

    /// Like [`Archive::open`]; a cancel returns [`Error::Cancelled`] at once,
    /// even while a passphrase slot's Argon2 runs.
    pub fn open_cancellable(source: S, keys: &KeyRing, cancel: &CancelToken) -> Result<Self> {
        let file_len = source.size().map_err(Error::Read)?;
        let cursor = Cursor {
            source: &source,
            len: file_len,
            pos: 0,
        };
        let ctx = open_header_cancellable(&mut io::BufReader::with_capacity(HEADER_READ, cursor), keys, cancel)?;
        let header_len = ctx.header().len() as u64;
        let min_len = header_len + RECORD_HEADER_LEN as u64 + INDEX_FIXED + TAG + FOOTER_LEN as u64;
        if file_len < min_len {
            return Err(FormatError::Truncated(TruncatedAt::InsideFooter).into());
        }
        let mut foot = [0u8; FOOTER_LEN];
        read_at_or(
            &source,
            &mut foot,
            file_len - FOOTER_LEN as u64,
            TruncatedAt::InsideFooter,
        )?;
        let index_offset = parse_footer(&foot)?;
        let max_offset = file_len - FOOTER_LEN as u64 - RECORD_HEADER_LEN as u64 - INDEX_FIXED - TAG;
        if index_offset < header_len || index_offset > max_offset {
            return Err(FormatError::invalid_footer_offset().into());
        }
        let mut rh_bytes = [0u8; RECORD_HEADER_LEN];
        read_at_or(&source, &mut rh_bytes, index_offset, TruncatedAt::InsideIndex)?;
        let rh = RecordHeader::parse(&rh_bytes, Region::Index)?;
        // The index must fill exactly the space between its offset and the footer,
        // which also bounds the allocation below by the real file size.
        if index_offset + rh.record_len() + FOOTER_LEN as u64 != file_len {
            return Err(FormatError::invalid_footer_offset().into());
        }
        let entries = u64::from(rh.plain_len).saturating_sub(INDEX_FIXED) / 4;
        let mut body = vec![0u8; rh.body_len as usize];
        read_at_or(
            &source,
            &mut body,
            index_offset + RECORD_HEADER_LEN as u64,
            TruncatedAt::InsideIndex,
        )?;
        let index = ctx.open_index(entries, &rh, &mut body)?;
        if index.index_offset != index_offset {
            return Err(FormatError::invalid_footer_offset().into());
        }
        let offsets = index.offsets(header_len);
        let end = offsets
            .last()
            .zip(index.body_lens.last())
            .map_or(header_len, |(o, b)| o + RECORD_HEADER_LEN as u64 + u64::from(*b));
        if end != index_offset {
            return Err(FormatError::IndexMismatch("chunk lengths do not add up to the index offset".into()).into());
        }
        Ok(Archive {
            source,
            opened: Arc::new(Opened {
                ctx: Arc::new(ctx),
                index,
                offsets,
            }),
        })
    }
}

impl<S> Archive<S> {
    /// The same opened container read through another source holding the
    /// same bytes (e.g. a new connection), without unlocking again. With
    /// `()` as the source, an opened archive can be kept (e.g. in a cache)
    /// without holding its source open.
    pub fn with_source<T>(&self, source: T) -> Archive<T> {
        Archive {
            source,
            opened: Arc::clone(&self.opened),
        }
    }

    /// The source this archive reads.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Length of the original data.
    pub fn plaintext_len(&self) -> u64 {
        self.opened.index.plaintext_len
    }

    /// The container's header.
    pub fn header(&self) -> &Header {
        self.opened.ctx.header()
    }

    /// The authenticated index.
    pub fn index(&self) -> &Index {
        &self.opened.index
    }

    /// Refuses a range that is not within the original.
    fn check_range(&self, range: &Range<u64>) -> Result<()> {
        let len = self.plaintext_len();
        if range.start > range.end || range.end > len {
            return Err(Error::RangeOutOfBounds {
                start: range.start,
                end: range.end,
                len,
            });
        }
        Ok(())
    }

    /// The chunks that overlap `range` of the original, first and last
    /// (`None` for an empty range).
    fn chunks_of(&self, range: &Range<u64>) -> Option<(u64, u64)> {
        let cs = self.opened.ctx.chunk_size() as u64;
        (!range.is_empty()).then(|| (range.start / cs, (range.end - 1) / cs))
    }

    /// Container bytes a read of `range` will read: the input size against
    /// which its [`crate::Progress::done`] counts.
    pub fn input_len_of(&self, range: Range<u64>) -> u64 {
        let Some((first, last)) = self.chunks_of(&range) else {
            return 0;
        };
        self.opened
            .index
            .body_lens
            .iter()
            .skip(first as usize)
            .take((last - first + 1) as usize)
            .map(|&b| RECORD_HEADER_LEN as u64 + u64::from(b))
            .sum()
    }
}

/// Sans-I/O range reads: the caller reads each record where
/// [`Archive::record_reads`] says (with any I/O it likes, e.g. async) and
/// hands it to [`Archive::open_record`], which is pure CPU work (run it on
/// the [`crate::CpuPool`]).
impl<S> Archive<S> {
    /// The records a read of `range` needs, in order (none for an empty
    /// range).
    pub fn record_reads(&self, range: &Range<u64>) -> Result<Vec<RecordRead>> {
        self.check_range(range)?;
        let Some((first, last)) = self.chunks_of(range) else {
            return Ok(Vec::new());
        };
        let opened = &*self.opened;
        (first..=last)
            .map(|i| {
                let slot = usize::try_from(i).map_err(|_| Error::Internal("chunk number overflow".into()))?;
                let (Some(&off), Some(&body_len)) = (opened.offsets.get(slot), opened.index.body_lens.get(slot)) else {
                    return Err(Error::Internal(format!("chunk {i} missing from the index")));
                };
                Ok(RecordRead {
                    index: i,
                    bytes: off..off + RECORD_HEADER_LEN as u64 + u64::from(body_len),
                })
            })
            .collect()
    }

    /// Authenticates and opens chunk `index` from its whole `record` (as
    /// read at [`RecordRead::bytes`]): checks it against the index, opens
    /// it, hashes the plaintext. CPU work; blocks on nothing.
    pub fn open_record(&self, index: u64, mut record: Vec<u8>) -> Result<OpenedChunk> {
        let opened = &*self.opened;
        let rh = opened.check_record(index, &record)?;
        let body = record
            .get_mut(RECORD_HEADER_LEN..)
            .ok_or(FormatError::Truncated(TruncatedAt::InsideChunk(index)))?;
        let mut plaintext = Vec::with_capacity(rh.plain_len as usize);
        with_decompressor(|dec| opened.ctx.open_chunk_in(index, &rh, body, dec, &mut plaintext))?;
        let hash = hash_chunk(index, opened.ctx.chunk_size(), &plaintext);
        Ok(OpenedChunk { index, plaintext, hash })
    }

    /// Authenticates chunk `index` from its whole `record` (as read at
    /// [`RecordRead::bytes`]) and decrypts it in place without
    /// decompressing it: its stored bytes, for
    /// [`crate::ChunkSealer::reseal`] to move into another container. CPU
    /// work; blocks on nothing.
    pub fn unseal_record(&self, index: u64, mut record: Vec<u8>) -> Result<StoredChunk> {
        let opened = &*self.opened;
        let rh = opened.check_record(index, &record)?;
        let body = record
            .get_mut(RECORD_HEADER_LEN..)
            .ok_or(FormatError::Truncated(TruncatedAt::InsideChunk(index)))?;
        let stored_len = opened.ctx.open_stored(index, &rh, body)?;
        record.truncate(RECORD_HEADER_LEN + stored_len);
        Ok(StoredChunk {
            index,
            compressed: rh.compressed,
            plain_len: rh.plain_len as usize,
            codec: opened.ctx.header().compression.codec,
            record,
        })
    }

    /// The part of chunk `index`'s plaintext (`chunk_len` bytes) that lies
    /// in `range`, as a range of the chunk.
    pub fn slice_in(&self, range: &Range<u64>, index: u64, chunk_len: usize) -> Range<usize> {
        let start = index.saturating_mul(self.opened.ctx.chunk_size() as u64);
        let from = range.start.saturating_sub(start).min(chunk_len as u64);
        let to = range.end.saturating_sub(start).min(chunk_len as u64).max(from);
        from as usize..to as usize
    }

    /// A check of the whole-file digest, for a read of every chunk in order.
    pub fn digest_check(&self) -> DigestCheck {
        DigestCheck {
            builder: DigestBuilder::new(),
            expected: self.opened.index.digest,
            chunks: 0,
            expected_chunks: self.opened.index.chunk_count,
        }
    }
}

impl<S: ReadAt> Archive<S> {
    /// Writes bytes `range` of the original to `output`, in order, reading
    /// and authenticating only the chunks that overlap it.
    pub fn read_range<W: Write>(
        &self,
        engine: &Engine,
        range: Range<u64>,
        mut output: W,
        ctl: &Control,
    ) -> Result<RangeSummary> {
        self.restore_range(engine, range, Target::Stream(&mut output), ctl)
    }

    /// Writes bytes `range` of the original to `target` (byte `range.start`
    /// at the target's start), reading and authenticating only the chunks
    /// that overlap it, each with one read of its record.
    pub fn restore_range(
        &self,
        engine: &Engine,
        range: Range<u64>,
        target: Target<'_>,
        ctl: &Control,
    ) -> Result<RangeSummary> {
        self.check_range(&range)?;
        let (mut in_order, placer) = target.split()?;
        let Some((first, last)) = self.chunks_of(&range) else {
            in_order.finish(0)?;
            return Ok(RangeSummary {
                bytes: 0,
                chunks_read: 0,
            });
        };
        let opened = &*self.opened;
        let cs = opened.ctx.chunk_size() as u64;
        let mut next = first;
        let source = &self.source;
        let progress = Arc::clone(&ctl.progress);
        let read = move |bufs: &mut Buffers| -> Result<Option<(u64, RecordHeader)>> {
            if next > last {
                return Ok(None);
            }
            let i = next;
            let slot = usize::try_from(i).map_err(|_| Error::Internal("chunk number overflow".into()))?;
            let (Some(&off), Some(&body_len)) = (opened.offsets.get(slot), opened.index.body_lens.get(slot)) else {
                return Err(Error::Internal(format!("chunk {i} missing from the index")));
            };
            // One read for the record header and its body.
            bufs.input.resize(RECORD_HEADER_LEN + body_len as usize, 0);
            read_at_or(source, &mut bufs.input, off, TruncatedAt::InsideChunk(i))?;
            let rh = opened.check_record(i, &bufs.input)?;
            bufs.input.drain(..RECORD_HEADER_LEN);
            progress.add_in(rh.record_len());
            next += 1;
            Ok(Some((i, rh)))
        };
        let work_ctx = Arc::clone(&opened.ctx);
        let work_progress = Arc::clone(&ctl.progress);
        let work_range = range.clone();
        let work: Work<(u64, RecordHeader)> = Arc::new(move |(i, rh), bufs: &mut Buffers| {
            with_decompressor(|dec| work_ctx.open_chunk(*i, rh, &mut bufs.input, dec, &mut bufs.output))?;
            if let Some(placer) = &placer {
                let (slice, at) = slice_of(&work_range, *i * cs, &bufs.output)?;
                placer.write_at(slice, at, &work_progress)?;
            }
            Ok(())
        });
        let mut written = 0u64;
        let mut chunks_read = 0u64;
        pipeline::run(
            engine.lanes_for(cs as usize),
            &ctl.cancel,
            read,
            work,
            |(i, rh), bufs| {
                let (slice, _) = slice_of(&range, i * cs, &bufs.output)?;
                written += slice.len() as u64;
                in_order.chunk(slice, written, &ctl.progress)?;
                ctl.progress.add_done(rh.record_len());
                ctl.progress.add_chunk();
                chunks_read += 1;
                Ok(())
            },
        )?;
        in_order.finish(written)?;
        Ok(RangeSummary {
            bytes: written,
            chunks_read,
        })
    }
}

/// The part of a chunk starting at `chunk_start` (original offset) that
/// lies in `range`, and where it goes in the output (`range.start` is 0).
fn slice_of<'b>(range: &Range<u64>, chunk_start: u64, chunk: &'b [u8]) -> Result<(&'b [u8], u64)> {
    let from = range.start.saturating_sub(chunk_start);
    let to = range.end.saturating_sub(chunk_start).min(chunk.len() as u64);
    let slice = usize::try_from(from)
        .ok()
        .zip(usize::try_from(to).ok())
        .and_then(|(f, t)| chunk.get(f..t))
        .ok_or_else(|| Error::Internal("range slice out of bounds".into()))?;
    Ok((slice, (chunk_start + from) - range.start))
}
