//! Streaming encode: plaintext in, container out.

use std::io::{Read, Write};
use std::sync::Arc;

use sluice_format::{
    footer, hash_chunk, ChunkHash, DigestBuilder, FileParams, Header, Index, RecordHeader, SlotSpec, StreamContext,
};

use crate::codec_cache::with_compressor;
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
        let work: Work<ChunkJob> = Arc::new(move |job: &mut ChunkJob, bufs: &mut Buffers| {
            job.hash = Some(hash_chunk(job.index, chunk_size, &bufs.input));
            let record = with_compressor(compression, chunk_param, adaptive, |comp| {
                work_ctx
                    .seal_chunk(job.index, &bufs.input, comp, &mut bufs.output)
                    .map_err(Error::from)
            })?;
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
