//! Streaming encode: plaintext in, container out.

use std::io::{Read, Write};
use std::sync::Arc;

use sluice_format::{
    footer, hash_chunk, ChunkHash, DigestBuilder, FileParams, Header, Index, RecordHeader, SlotSpec, StreamContext,
    RECORD_HEADER_LEN,
};

use crate::archive::StoredChunk;
use crate::codec_cache::{with_compressor, with_decompressor};
use crate::control::Control;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::io::read_full;
use crate::pipeline::{self, Buffers, Work};

/// What to write: the file parameters and who can open it.
#[derive(Debug, Clone)]
pub struct EncodeOptions {
    /// Suite, compression and chunk size.
    pub params: FileParams,
    /// One key slot per entry (empty for unencrypted files).
    pub slots: Vec<SlotSpec>,
    /// Skip the compressor on chunks that a cheap probe finds incompressible.
    pub adaptive: bool,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions {
            params: FileParams::default(),
            slots: Vec::new(),
            adaptive: true,
        }
    }
}

/// What an encode did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeSummary {
    /// Bytes of plaintext read.
    pub plaintext_len: u64,
    /// Bytes of container written.
    pub container_len: u64,
    /// Data chunks written.
    pub chunk_count: u64,
    /// Chunks stored compressed.
    pub compressed_chunks: u64,
    /// BLAKE3 of the plaintext (equal to `b3sum`'s).
    pub digest: [u8; 32],
}

/// How chunks are sealed: the part of [`EncodeOptions`] the CPU stage needs.
#[derive(Debug, Clone, Copy)]
struct Sealing {
    compression: sluice_format::Compression,
    chunk_param: sluice_format::ChunkSize,
    adaptive: bool,
}

impl Sealing {
    /// Hashes and seals chunk `index` of `input` into `output` (the body).
    fn seal(
        &self,
        ctx: &StreamContext,
        index: u64,
        input: &[u8],
        output: &mut Vec<u8>,
    ) -> Result<(ChunkHash, RecordHeader)> {
        let hash = hash_chunk(index, ctx.chunk_size(), input);
        let record = with_compressor(self.compression, self.chunk_param, self.adaptive, |comp| {
            ctx.seal_chunk(index, input, comp, output).map_err(Error::from)
        })?;
        Ok((hash, record))
    }
}

/// An encode driven by its caller (sans I/O): the caller cuts the
/// plaintext into chunks of [`Encoder::chunk_size`] bytes (only the last
/// may be shorter), has each sealed by a [`ChunkSealer`] (pure CPU work:
/// run it on the [`crate::CpuPool`], in any order), hands the results back
/// in order to [`Encoder::push`] and writes what it gets, then the tail
/// from [`Encoder::finish`]. The bytes written are exactly those of
/// [`Engine::encode`] with the same options. Async servers drive it from a
/// request body; nothing in it blocks or waits.
pub struct Encoder {
    ctx: Arc<StreamContext>,
    sealing: Sealing,
    next_index: u64,
    next_push: u64,
    digest: DigestBuilder,
    body_lens: Vec<u32>,
    offset: u64,
    plaintext_len: u64,
    compressed_chunks: u64,
    short_seen: bool,
}

/// Seals one chunk: made by [`Encoder::sealer`], run anywhere.
pub struct ChunkSealer {
    ctx: Arc<StreamContext>,
    sealing: Sealing,
    index: u64,
}

/// A sealed chunk, for [`Encoder::push`]: its record is
/// [`SealedChunk::head`] then its sealed body ([`SealedChunk::take_body`]).
pub struct SealedChunk {
    index: u64,
    hash: ChunkHash,
    record: RecordHeader,
    plain_len: usize,
    head: [u8; sluice_format::RECORD_HEADER_LEN],
    /// Whether `head` is written before `body` (else `body` begins with
    /// the record header itself).
    separate_head: bool,
    body: Vec<u8>,
}

impl SealedChunk {
    /// The bytes to write before [`SealedChunk::take_body`]'s: the record
    /// header, or nothing when the body already begins with it.
    pub fn head(&self) -> &[u8] {
        if self.separate_head {
            &self.head
        } else {
            &[]
        }
    }

    /// The sealed body (taken out: the chunk keeps nothing but its counts).
    pub fn take_body(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.body)
    }

    /// Bytes of the whole record.
    pub fn record_len(&self) -> u64 {
        self.record.record_len()
    }

    /// Bytes of plaintext in it.
    pub fn plain_len(&self) -> usize {
        self.plain_len
    }

    /// Its number in the container.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Its plaintext's BLAKE3 subtree (at its place in the container).
    pub fn hash(&self) -> ChunkHash {
        self.hash
    }
}

impl ChunkSealer {
    /// The number of the chunk it seals.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Hashes, compresses and seals `plaintext` (CPU work).
    pub fn seal(self, plaintext: &[u8]) -> Result<SealedChunk> {
        let mut body = Vec::with_capacity(plaintext.len() + 64);
        let (hash, record) = self.sealing.seal(&self.ctx, self.index, plaintext, &mut body)?;
        Ok(SealedChunk {
            index: self.index,
            hash,
            record,
            plain_len: plaintext.len(),
            head: record.to_bytes(),
            separate_head: true,
            body,
        })
    }

    /// Seals a chunk another container stored (authenticated and
    /// decrypted by [`crate::Archive::unseal_record`]) as this chunk,
    /// without compressing it again: its codec must be this container's.
    /// `hash` is the chunk's BLAKE3 subtree at this chunk's place in the
    /// plaintext, if the caller has it; otherwise the chunk is
    /// decompressed and hashed here. CPU work.
    pub fn reseal(self, chunk: StoredChunk, hash: Option<ChunkHash>) -> Result<SealedChunk> {
        let codec = self.sealing.compression.codec;
        if chunk.compressed && chunk.codec != codec {
            return Err(Error::Internal(format!(
                "a chunk compressed with {:?} cannot be moved into a {codec:?} container",
                chunk.codec
            )));
        }
        let cs = self.ctx.chunk_size();
        let hash = match hash {
            Some(h) => h,
            None if chunk.compressed => {
                let mut plain = Vec::with_capacity(chunk.plain_len);
                with_decompressor(|dec| dec.decompress(codec, chunk.stored(), &mut plain, chunk.plain_len)).map_err(
                    |what| sluice_format::Error::ChunkCorrupt {
                        chunk: chunk.index,
                        what,
                    },
                )?;
                hash_chunk(self.index, cs, &plain)
            }
            None => hash_chunk(self.index, cs, chunk.stored()),
        };
        let (compressed, plain_len) = (chunk.compressed, chunk.plain_len);
        let mut record = chunk.into_record();
        let stored = record.get_mut(RECORD_HEADER_LEN..).unwrap_or_default();
        let (rh, tag) = self.ctx.seal_stored(self.index, compressed, plain_len, stored)?;
        record.extend_from_slice(&tag);
        if let Some(head) = record.get_mut(..RECORD_HEADER_LEN) {
            head.copy_from_slice(&rh.to_bytes());
        }
        Ok(SealedChunk {
            index: self.index,
            hash,
            record: rh,
            plain_len,
            head: rh.to_bytes(),
            separate_head: false,
            body: record,
        })
    }
}

impl Encoder {
    /// Starts a container: the encoder and the header bytes to write first.
    /// Builds the header (Argon2 for a passphrase slot: run it off async
    /// workers).
    pub fn new(opts: &EncodeOptions) -> Result<(Encoder, Vec<u8>)> {
        let (header, cipher) = Header::create(&opts.params, &opts.slots)?;
        let ctx = Arc::new(StreamContext::new(header, cipher));
        let head = ctx.header().as_bytes().to_vec();
        let encoder = Encoder {
            offset: head.len() as u64,
            ctx,
            sealing: Sealing {
                compression: opts.params.compression,
                chunk_param: opts.params.chunk_size,
                adaptive: opts.adaptive,
            },
            next_index: 0,
            next_push: 0,
            digest: DigestBuilder::new(),
            body_lens: Vec::new(),
            plaintext_len: 0,
            compressed_chunks: 0,
            short_seen: false,
        };
        Ok((encoder, head))
    }

    /// The plaintext bytes of every chunk but the last.
    pub fn chunk_size(&self) -> usize {
        self.ctx.chunk_size()
    }

    /// The sealer of the next chunk (numbered in the order asked for).
    pub fn sealer(&mut self) -> Result<ChunkSealer> {
        self.ctx.check_chunk_count(self.next_index + 1)?;
        let index = self.next_index;
        self.next_index += 1;
        Ok(ChunkSealer {
            ctx: Arc::clone(&self.ctx),
            sealing: self.sealing,
            index,
        })
    }

    /// Takes the next chunk in order; its record ([`SealedChunk::head`], then its body) goes into
    /// the container next.
    pub fn push(&mut self, chunk: &SealedChunk) -> Result<()> {
        if chunk.index != self.next_push {
            return Err(Error::Internal(format!(
                "chunk {} pushed where chunk {} belongs",
                chunk.index, self.next_push
            )));
        }
        if self.short_seen || chunk.plain_len == 0 || chunk.plain_len > self.chunk_size() {
            return Err(Error::Internal("only the last chunk may be short".into()));
        }
        self.short_seen = chunk.plain_len != self.chunk_size();
        self.next_push += 1;
        self.digest.push(chunk.hash);
        self.compressed_chunks += u64::from(chunk.record.compressed);
        self.body_lens.push(chunk.record.body_len);
        self.offset += chunk.record.record_len();
        self.plaintext_len += chunk.plain_len as u64;
        Ok(())
    }

    /// Ends the container: the bytes of its index and footer (to write
    /// last) and what was written.
    pub fn finish(self) -> Result<(Vec<u8>, EncodeSummary)> {
        if self.next_push != self.next_index {
            return Err(Error::Internal("a sealed chunk was never pushed".into()));
        }
        let digest = self.digest.finish();
        let index = Index {
            chunk_count: self.body_lens.len() as u64,
            plaintext_len: self.plaintext_len,
            index_offset: self.offset,
            digest,
            body_lens: self.body_lens,
        };
        let mut tail = self.ctx.seal_index(&index)?;
        tail.extend_from_slice(&footer(self.offset));
        let summary = EncodeSummary {
            plaintext_len: self.plaintext_len,
            container_len: self.offset + tail.len() as u64,
            chunk_count: index.chunk_count,
            compressed_chunks: self.compressed_chunks,
            digest,
        };
        Ok((tail, summary))
    }
}

struct ChunkJob {
    index: u64,
    hash: Option<ChunkHash>,
    record: Option<RecordHeader>,
}

impl Engine {
    /// Reads all of `input`, writes a complete container to `output`.
    ///
    /// The header is built here (Argon2 for a passphrase slot runs on the
    /// calling thread: call from `spawn_blocking` in async code).
    pub fn encode<R: Read + Send, W: Write>(
        &self,
        mut input: R,
        output: W,
        opts: &EncodeOptions,
        ctl: &Control,
    ) -> Result<EncodeSummary> {
        let (header, cipher) = Header::create(&opts.params, &opts.slots)?;
        let ctx = Arc::new(StreamContext::new(header, cipher));
        let mut out = crate::io::Counting {
            inner: output,
            progress: &ctl.progress,
        };
        out.write_all(ctx.header().as_bytes()).map_err(Error::Write)?;

        let chunk_size = ctx.chunk_size();
        let compression = opts.params.compression;
        let chunk_param = opts.params.chunk_size;
        let adaptive = opts.adaptive;
        let mut next_index = 0u64;
        let progress = Arc::clone(&ctl.progress);
        let read_ctx = Arc::clone(&ctx);
        let read = |bufs: &mut Buffers| -> Result<Option<ChunkJob>> {
            bufs.input.resize(chunk_size, 0);
            let n = read_full(&mut input, &mut bufs.input).map_err(Error::Read)?;
            bufs.input.truncate(n);
            if n == 0 {
                return Ok(None);
            }
            progress.add_in(n as u64);
            read_ctx.check_chunk_count(next_index + 1)?;
            let index = next_index;
            next_index += 1;
            Ok(Some(ChunkJob {
                index,
                hash: None,
                record: None,
            }))
        };
        let work_ctx = Arc::clone(&ctx);
        let sealing = Sealing {
            compression,
            chunk_param,
            adaptive,
        };
        let work: Work<ChunkJob> = Arc::new(move |job: &mut ChunkJob, bufs: &mut Buffers| {
            let (hash, record) = sealing.seal(&work_ctx, job.index, &bufs.input, &mut bufs.output)?;
            job.hash = Some(hash);
            job.record = Some(record);
            Ok(())
        });

        let mut digest = DigestBuilder::new();
        let mut body_lens: Vec<u32> = Vec::new();
        let mut offset = ctx.header().len() as u64;
        let mut plaintext_len = 0u64;
        let mut compressed_chunks = 0u64;
        pipeline::run(self.lanes_for(chunk_size), &ctl.cancel, read, work, |job, bufs| {
            let (Some(hash), Some(record)) = (job.hash, job.record) else {
                return Err(Error::Internal(format!("chunk {} was not processed", job.index)));
            };
            out.write_all(&record.to_bytes()).map_err(Error::Write)?;
            out.write_all(&bufs.output).map_err(Error::Write)?;
            digest.push(hash);
            compressed_chunks += u64::from(record.compressed);
            body_lens.push(record.body_len);
            offset += record.record_len();
            plaintext_len += bufs.input.len() as u64;
            ctl.progress.add_done(bufs.input.len() as u64);
            ctl.progress.add_chunk();
            Ok(())
        })?;

        let digest = digest.finish();
        let index = Index {
            chunk_count: body_lens.len() as u64,
            plaintext_len,
            index_offset: offset,
            digest,
            body_lens,
        };
        let record = ctx.seal_index(&index)?;
        out.write_all(&record).map_err(Error::Write)?;
        out.write_all(&footer(offset)).map_err(Error::Write)?;
        out.flush().map_err(Error::Write)?;
        Ok(EncodeSummary {
            plaintext_len,
            container_len: offset + record.len() as u64 + sluice_format::FOOTER_LEN as u64,
            chunk_count: index.chunk_count,
            compressed_chunks,
            digest,
        })
    }
}

#[cfg(test)]
mod tests {
    use sluice_format::{KeyRing, RawKey};

    use super::*;
    use crate::EngineConfig;

    /// The sans-I/O encoder, chunks sealed out of order, writes a container
    /// the blocking decoder restores, with the same digest and length as
    /// `Engine::encode`.
    #[test]
    fn the_sans_io_encoder_writes_what_encode_writes() {
        let engine = Engine::new(EngineConfig::default()).unwrap();
        let key = RawKey::generate().unwrap();
        let opts = EncodeOptions {
            slots: vec![SlotSpec::RawKey(key.clone())],
            params: FileParams {
                chunk_size: sluice_format::ChunkSize::from_log2(12).unwrap(),
                ..FileParams::default()
            },
            ..EncodeOptions::default()
        };
        let original: Vec<u8> = (0..50_001u32).map(|i| (i % 97) as u8).collect();
        let (mut enc, mut out) = Encoder::new(&opts).unwrap();
        let pieces: Vec<&[u8]> = original.chunks(enc.chunk_size()).collect();
        let sealers: Vec<ChunkSealer> = pieces.iter().map(|_| enc.sealer().unwrap()).collect();
        // Sealed in reverse order, pushed in order.
        let mut sealed: Vec<SealedChunk> = sealers
            .into_iter()
            .zip(&pieces)
            .rev()
            .map(|(s, p)| s.seal(p).unwrap())
            .collect();
        sealed.reverse();
        for c in &mut sealed {
            enc.push(c).unwrap();
            out.extend_from_slice(c.head());
            out.extend_from_slice(&c.take_body());
        }
        let (tail, summary) = enc.finish().unwrap();
        out.extend_from_slice(&tail);
        assert_eq!(summary.container_len, out.len() as u64);
        assert_eq!(summary.digest, *blake3::hash(&original).as_bytes());
        let mut restored = Vec::new();
        let keys = KeyRing::new().with_raw_key(key.clone());
        engine.decode(&out[..], &mut restored, &keys, &Control::new()).unwrap();
        assert_eq!(restored, original);
        let mut blocking = Vec::new();
        let same = engine
            .encode(&original[..], &mut blocking, &opts, &Control::new())
            .unwrap();
        assert_eq!(
            (same.digest, same.container_len),
            (summary.digest, summary.container_len)
        );
    }

    /// Two containers made separately (an S3 upload's parts) become one
    /// by moving their chunks, still compressed, into a new container:
    /// it restores to the concatenation, with the right digest, whether
    /// the caller brings each chunk's hash or has it computed.
    #[test]
    fn chunks_of_several_containers_move_into_one_without_recompressing() {
        let engine = Engine::new(EngineConfig::default()).unwrap();
        let part_key = RawKey::generate().unwrap();
        let cs = 4096usize;
        let params = FileParams {
            chunk_size: sluice_format::ChunkSize::from_log2(12).unwrap(),
            ..FileParams::default()
        };
        let part_opts = EncodeOptions {
            slots: vec![SlotSpec::RawKey(part_key.clone())],
            params,
            ..EncodeOptions::default()
        };
        let original: Vec<u8> = (0..5 * cs as u32 + 1234).map(|i| (i % 89) as u8).collect();
        let (first, second) = original.split_at(3 * cs);
        let parts: Vec<Vec<u8>> = [first, second]
            .iter()
            .map(|p| {
                let mut c = Vec::new();
                engine.encode(*p, &mut c, &part_opts, &Control::new()).unwrap();
                c
            })
            .collect();
        let key = RawKey::generate().unwrap();
        let opts = EncodeOptions {
            slots: vec![SlotSpec::RawKey(key.clone())],
            params,
            ..EncodeOptions::default()
        };
        let (mut enc, mut out) = Encoder::new(&opts).unwrap();
        let part_keys = KeyRing::new().with_raw_key(part_key);
        let mut global = 0u64;
        for (n, part) in parts.iter().enumerate() {
            let archive = crate::Archive::open(&part[..], &part_keys).unwrap();
            for read in archive.record_reads(&(0..archive.plaintext_len())).unwrap() {
                let record = part[read.bytes.start as usize..read.bytes.end as usize].to_vec();
                let stored = archive.unseal_record(read.index, record).unwrap();
                assert!(stored.compressed);
                let start = global as usize * cs;
                let plain = &original[start..(start + cs).min(original.len())];
                // The first part brings its hashes; the second has them computed.
                let hash = (n == 0).then(|| hash_chunk(global, cs, plain));
                let mut sealed = enc.sealer().unwrap().reseal(stored, hash).unwrap();
                enc.push(&sealed).unwrap();
                assert!(sealed.head().is_empty());
                out.extend_from_slice(&sealed.take_body());
                global += 1;
            }
        }
        let (tail, summary) = enc.finish().unwrap();
        out.extend_from_slice(&tail);
        assert_eq!(summary.container_len, out.len() as u64);
        assert_eq!(summary.digest, *blake3::hash(&original).as_bytes());
        let mut restored = Vec::new();
        let keys = KeyRing::new().with_raw_key(key);
        engine.decode(&out[..], &mut restored, &keys, &Control::new()).unwrap();
        assert_eq!(restored, original);
        // A chunk of another codec is refused.
        let lz4 = EncodeOptions {
            params: FileParams {
                compression: sluice_format::Compression::parse("lz4").unwrap(),
                ..params
            },
            ..opts
        };
        let (mut other, _) = Encoder::new(&lz4).unwrap();
        let archive = crate::Archive::open(&parts[0][..], &part_keys).unwrap();
        let read = &archive.record_reads(&(0..1)).unwrap()[0];
        let record = parts[0][read.bytes.start as usize..read.bytes.end as usize].to_vec();
        let stored = archive.unseal_record(0, record).unwrap();
        assert!(other.sealer().unwrap().reseal(stored, None).is_err());
    }

    #[test]
    fn chunks_out_of_order_or_short_before_the_end_are_refused() {
        let opts = EncodeOptions {
            slots: vec![SlotSpec::RawKey(RawKey::generate().unwrap())],
            ..EncodeOptions::default()
        };
        let (mut enc, _) = Encoder::new(&opts).unwrap();
        let a = enc.sealer().unwrap();
        let b = enc.sealer().unwrap();
        let sb = b.seal(b"short").unwrap();
        assert!(enc.push(&sb).is_err(), "chunk 1 before chunk 0");
        let sa = a.seal(b"short").unwrap();
        enc.push(&sa).unwrap();
        assert!(enc.push(&sb).is_err(), "a chunk after a short one");
    }
}
