//! Streaming decode and verify: container in, plaintext out. Needs no index
//! and no seeking, so it works on pipes.
//!
//! Plaintext is written only after its chunk authenticated, in order; but
//! truncation, the index and the whole-file digest can only be checked at
//! the end. The output is therefore final only when [`Engine::decode`]
//! returns `Ok`: callers write to a temporary file and keep it only then.

use std::io::{Read, Write};
use std::sync::Arc;

use sluice_format::{
    hash_chunk, ChunkHash, DigestBuilder, Error as FormatError, Header, Index, KeyRing, RecordHeader, RecordKind,
    Region, StreamContext, TruncatedAt, FOOTER_LEN, RECORD_HEADER_LEN,
};

use crate::codec_cache::with_decompressor;
use crate::container::{expect_footer, open_header_cancellable, read_exact_or};
use crate::control::Control;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::io::read_full;
use crate::output_file::OutputFile;
use crate::pipeline::{self, Buffers, Work};
use crate::target::Target;

/// What a decode or verify found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeSummary {
    /// Bytes of plaintext restored.
    pub plaintext_len: u64,
    /// Data chunks read.
    pub chunk_count: u64,
    /// The authenticated BLAKE3 digest of the plaintext.
    pub digest: [u8; 32],
    /// The container's header.
    pub header: Header,
}

enum Item {
    Chunk {
        index: u64,
        rh: RecordHeader,
        hash: Option<ChunkHash>,
    },
    Final(Box<Index>),
}

/// Reads records in order, checking framing, and hands chunks to the pool.
struct RecordReader<R> {
    input: R,
    ctx: Arc<StreamContext>,
    next: u64,
    offset: u64,
    body_lens: Vec<u32>,
    short_seen: bool,
    finished: bool,
}

impl<R: Read> RecordReader<R> {
    fn truncated(&self, inside: bool) -> Error {
        let at = match (inside, self.next) {
            (true, n) => TruncatedAt::InsideChunk(n),
            (false, 0) => TruncatedAt::AfterHeader,
            (false, n) => TruncatedAt::AfterChunk(n - 1),
        };
        FormatError::Truncated(at).into()
    }

    fn next_item(&mut self, bufs: &mut Buffers, progress: &crate::Progress) -> Result<Option<Item>> {
        if self.finished {
            return Ok(None);
        }
        let mut rh_bytes = [0u8; RECORD_HEADER_LEN];
        let n = read_full(&mut self.input, &mut rh_bytes).map_err(Error::Read)?;
        if n < RECORD_HEADER_LEN {
            return Err(self.truncated(n > 0));
        }
        let region = Region::Chunk(self.next);
        let rh = RecordHeader::parse(&rh_bytes, region)?;
        if rh.kind == RecordKind::Index {
            let index = self.read_index(&rh, bufs)?;
            self.finished = true;
            progress.add_in(rh.record_len() + FOOTER_LEN as u64);
            return Ok(Some(Item::Final(Box::new(index))));
        }
        self.ctx.check_data_record(self.next, &rh)?;
        if self.short_seen {
            return Err(FormatError::Invalid {
                region,
                what: "data chunk after a short chunk (only the last chunk may be short)".into(),
            }
            .into());
        }
        self.short_seen = rh.plain_len as usize != self.ctx.chunk_size();
        bufs.input.resize(rh.body_len as usize, 0);
        read_exact_or(&mut self.input, &mut bufs.input, TruncatedAt::InsideChunk(self.next))?;
        progress.add_in(rh.record_len());
        self.offset += rh.record_len();
        self.body_lens.push(rh.body_len);
        let index = self.next;
        self.next += 1;
        Ok(Some(Item::Chunk { index, rh, hash: None }))
    }

    fn read_index(&mut self, rh: &RecordHeader, bufs: &mut Buffers) -> Result<Index> {
        self.ctx.check_index_record(self.next, rh)?;
        bufs.input.resize(rh.body_len as usize, 0);
        read_exact_or(&mut self.input, &mut bufs.input, TruncatedAt::InsideIndex)?;
        let index = self.ctx.open_index(self.next, rh, &mut bufs.input)?;
        if index.body_lens != self.body_lens {
            return Err(FormatError::IndexMismatch("chunk lengths differ from the records read".into()).into());
        }
        if index.index_offset != self.offset {
            return Err(FormatError::IndexMismatch(format!(
                "index claims offset {}, found at {}",
                index.index_offset, self.offset
            ))
            .into());
        }
        expect_footer(&mut self.input, self.offset)?;
        let mut extra = [0u8; 1];
        if read_full(&mut self.input, &mut extra).map_err(Error::Read)? != 0 {
            return Err(FormatError::TrailingData.into());
        }
        self.offset += rh.record_len() + FOOTER_LEN as u64;
        Ok(index)
    }
}

impl Engine {
    /// Decodes a whole container from `input` into `output`, authenticating
    /// every chunk, the index and the whole-file digest. The ordered writer
    /// writes each chunk once it and every chunk before it authenticated.
    pub fn decode<R: Read + Send, W: Write>(
        &self,
        input: R,
        mut output: W,
        keys: &KeyRing,
        ctl: &Control,
    ) -> Result<DecodeSummary> {
        self.restore(input, Target::Stream(&mut output), keys, ctl)
    }

    /// Like [`Engine::decode`], into a regular file: [`Target::File`].
    pub fn decode_to_file<R: Read + Send>(
        &self,
        input: R,
        out: &mut OutputFile,
        keys: &KeyRing,
        ctl: &Control,
    ) -> Result<DecodeSummary> {
        self.restore(input, Target::File(out), keys, ctl)
    }

    /// Decodes a whole container from `input` into `target`, authenticating
    /// every chunk, the index and the whole-file digest: the one restore
    /// path behind [`Engine::decode`], [`Engine::decode_to_file`] and
    /// [`Engine::verify`].
    pub fn restore<R: Read + Send>(
        &self,
        mut input: R,
        target: Target<'_>,
        keys: &KeyRing,
        ctl: &Control,
    ) -> Result<DecodeSummary> {
        let ctx = Arc::new(open_header_cancellable(&mut input, keys, &ctl.cancel)?);
        let header_len = ctx.header().len() as u64;
        ctl.progress.add_in(header_len);
        let mut reader = RecordReader {
            input,
            ctx: Arc::clone(&ctx),
            next: 0,
            offset: header_len,
            body_lens: Vec::new(),
            short_seen: false,
            finished: false,
        };
        let progress = Arc::clone(&ctl.progress);
        let read = move |bufs: &mut Buffers| reader.next_item(bufs, &progress);
        let chunk_size = ctx.chunk_size();
        let work_ctx = Arc::clone(&ctx);
        let (mut in_order, placer) = target.split()?;
        let work_progress = Arc::clone(&ctl.progress);
        let work: Work<Item> = Arc::new(move |item: &mut Item, bufs: &mut Buffers| {
            if let Item::Chunk { index, rh, hash } = item {
                with_decompressor(|dec| work_ctx.open_chunk(*index, rh, &mut bufs.input, dec, &mut bufs.output))?;
                *hash = Some(hash_chunk(*index, chunk_size, &bufs.output));
                if let Some(placer) = &placer {
                    placer.write_at(&bufs.output, index.saturating_mul(chunk_size as u64), &work_progress)?;
                }
            }
            Ok(())
        });
        let mut digest = Some(DigestBuilder::new());
        let mut total = 0u64;
        let mut summary = None;
        pipeline::run(self.lanes_for(chunk_size), &ctl.cancel, read, work, |item, bufs| {
            match item {
                Item::Chunk { hash, rh, .. } => {
                    total += bufs.output.len() as u64;
                    in_order.chunk(&bufs.output, total, &ctl.progress)?;
                    ctl.progress.add_done(rh.record_len());
                    if let (Some(d), Some(h)) = (digest.as_mut(), hash) {
                        d.push(h);
                    }
                    ctl.progress.add_chunk();
                }
                Item::Final(index) => {
                    if total != index.plaintext_len {
                        return Err(FormatError::IndexMismatch(format!(
                            "index says {} plaintext bytes, chunks hold {total}",
                            index.plaintext_len
                        ))
                        .into());
                    }
                    let got = digest.take().map(DigestBuilder::finish);
                    if got != Some(index.digest) {
                        return Err(FormatError::DigestMismatch.into());
                    }
                    summary = Some((index.chunk_count, index.digest));
                    // Header, index and footer: the whole input is now done.
                    let rest = ctl.progress.bytes_in().saturating_sub(ctl.progress.done());
                    ctl.progress.add_done(rest);
                }
            }
            Ok(())
        })?;
        in_order.finish(total)?;
        let (chunk_count, digest) = summary.ok_or_else(|| Error::Internal("decode ended without the index".into()))?;
        Ok(DecodeSummary {
            plaintext_len: total,
            chunk_count,
            digest,
            header: ctx.header().clone(),
        })
    }

    /// Authenticates a whole container without writing anything.
    pub fn verify<R: Read + Send>(&self, input: R, keys: &KeyRing, ctl: &Control) -> Result<DecodeSummary> {
        self.decode(input, std::io::sink(), keys, ctl)
    }
}
