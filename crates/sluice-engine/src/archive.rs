//! Random access: restore any byte range of the original by reading only
//! the chunks it touches, located through the authenticated index.

use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::sync::Arc;

use sluice_format::{
    parse_footer, Error as FormatError, Header, Index, KeyRing, RecordHeader, Region, StreamContext, TruncatedAt,
    FOOTER_LEN, RECORD_HEADER_LEN,
};

use crate::codec_cache::with_decompressor;
use crate::container::{open_header, read_exact_or};
use crate::control::Control;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::pipeline::{self, Buffers, Work};

/// Fixed part of the index plaintext (counts, offset, digest).
const INDEX_FIXED: u64 = sluice_format::stream::INDEX_FIXED_LEN as u64;
const TAG: u64 = sluice_format::TAG_LEN as u64;

/// An opened container on a seekable input, ready for range reads.
pub struct Archive<R> {
    input: R,
    ctx: Arc<StreamContext>,
    index: Index,
    offsets: Vec<u64>,
}

/// What a range read did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeSummary {
    /// Bytes written.
    pub bytes: u64,
    /// Chunks read and authenticated.
    pub chunks_read: u64,
}

impl<R: Read + Seek + Send> Archive<R> {
    /// Reads and unlocks the header, then reads and authenticates the index
    /// through the footer. Reads nothing else.
    pub fn open(mut input: R, keys: &KeyRing) -> Result<Self> {
        input.seek(SeekFrom::Start(0)).map_err(Error::Read)?;
        let ctx = open_header(&mut input, keys)?;
        let header_len = ctx.header().len() as u64;
        let file_len = input.seek(SeekFrom::End(0)).map_err(Error::Read)?;
        let min_len = header_len + RECORD_HEADER_LEN as u64 + INDEX_FIXED + TAG + FOOTER_LEN as u64;
        if file_len < min_len {
            return Err(FormatError::Truncated(TruncatedAt::InsideFooter).into());
        }
        input
            .seek(SeekFrom::Start(file_len - FOOTER_LEN as u64))
            .map_err(Error::Read)?;
        let mut foot = [0u8; FOOTER_LEN];
        read_exact_or(&mut input, &mut foot, TruncatedAt::InsideFooter)?;
        let index_offset = parse_footer(&foot)?;
        let max_offset = file_len - FOOTER_LEN as u64 - RECORD_HEADER_LEN as u64 - INDEX_FIXED - TAG;
        if index_offset < header_len || index_offset > max_offset {
            return Err(FormatError::invalid_footer_offset().into());
        }
        input.seek(SeekFrom::Start(index_offset)).map_err(Error::Read)?;
        let mut rh_bytes = [0u8; RECORD_HEADER_LEN];
        read_exact_or(&mut input, &mut rh_bytes, TruncatedAt::InsideIndex)?;
        let rh = RecordHeader::parse(&rh_bytes, Region::Index)?;
        // The index must fill exactly the space between its offset and the footer,
        // which also bounds the allocation below by the real file size.
        if index_offset + rh.record_len() + FOOTER_LEN as u64 != file_len {
            return Err(FormatError::invalid_footer_offset().into());
        }
        let entries = u64::from(rh.plain_len).saturating_sub(INDEX_FIXED) / 4;
        let mut body = vec![0u8; rh.body_len as usize];
        read_exact_or(&mut input, &mut body, TruncatedAt::InsideIndex)?;
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
            input,
            ctx: Arc::new(ctx),
            index,
            offsets,
        })
    }

    /// Length of the original data.
    pub fn plaintext_len(&self) -> u64 {
        self.index.plaintext_len
    }

    /// The container's header.
    pub fn header(&self) -> &Header {
        self.ctx.header()
    }

    /// The authenticated index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The chunks that overlap `range` of the original, first and last
    /// (`None` for an empty range).
    fn chunks_of(&self, range: &Range<u64>) -> Option<(u64, u64)> {
        let cs = self.ctx.chunk_size() as u64;
        (!range.is_empty()).then(|| (range.start / cs, (range.end - 1) / cs))
    }

    /// Container bytes a read of `range` will read: the input size against
    /// which its [`crate::Progress::done`] counts.
    pub fn input_len_of(&self, range: Range<u64>) -> u64 {
        let Some((first, last)) = self.chunks_of(&range) else {
            return 0;
        };
        self.index
            .body_lens
            .iter()
            .skip(first as usize)
            .take((last - first + 1) as usize)
            .map(|&b| RECORD_HEADER_LEN as u64 + u64::from(b))
            .sum()
    }

    /// Writes bytes `range` of the original to `output`, reading and
    /// authenticating only the chunks that overlap it.
    pub fn read_range<W: Write>(
        &mut self,
        engine: &Engine,
        range: Range<u64>,
        mut output: W,
        ctl: &Control,
    ) -> Result<RangeSummary> {
        let len = self.plaintext_len();
        if range.start > range.end || range.end > len {
            return Err(Error::RangeOutOfBounds {
                start: range.start,
                end: range.end,
                len,
            });
        }
        let Some((first, last)) = self.chunks_of(&range) else {
            return Ok(RangeSummary {
                bytes: 0,
                chunks_read: 0,
            });
        };
        let cs = self.ctx.chunk_size() as u64;
        let mut next = first;
        let input = &mut self.input;
        let offsets = &self.offsets;
        let index = &self.index;
        let ctx = Arc::clone(&self.ctx);
        let progress = Arc::clone(&ctl.progress);
        let read = move |bufs: &mut Buffers| -> Result<Option<(u64, RecordHeader)>> {
            if next > last {
                return Ok(None);
            }
            let i = next;
            let slot = usize::try_from(i).map_err(|_| Error::Internal("chunk number overflow".into()))?;
            let (Some(&off), Some(&body_len)) = (offsets.get(slot), index.body_lens.get(slot)) else {
                return Err(Error::Internal(format!("chunk {i} missing from the index")));
            };
            input.seek(SeekFrom::Start(off)).map_err(Error::Read)?;
            let mut rh_bytes = [0u8; RECORD_HEADER_LEN];
            read_exact_or(input, &mut rh_bytes, TruncatedAt::InsideChunk(i))?;
            let rh = RecordHeader::parse(&rh_bytes, Region::Chunk(i))?;
            ctx.check_data_record(i, &rh)?;
            if rh.body_len != body_len || u64::from(rh.plain_len) != ctx.expected_chunk_len(i, index.plaintext_len) {
                return Err(FormatError::IndexMismatch(format!("chunk {i} record disagrees with the index")).into());
            }
            bufs.input.resize(rh.body_len as usize, 0);
            read_exact_or(input, &mut bufs.input, TruncatedAt::InsideChunk(i))?;
            progress.add_in(rh.record_len());
            next += 1;
            Ok(Some((i, rh)))
        };
        let work_ctx = Arc::clone(&self.ctx);
        let work: Work<(u64, RecordHeader)> = Arc::new(move |(i, rh), bufs: &mut Buffers| {
            with_decompressor(|dec| work_ctx.open_chunk(*i, rh, &mut bufs.input, dec, &mut bufs.output))
                .map_err(Error::from)
        });
        let mut written = 0u64;
        let mut chunks_read = 0u64;
        pipeline::run(
            engine.lanes_for(cs as usize),
            &ctl.cancel,
            read,
            work,
            |(i, rh), bufs| {
                let chunk_start = i * cs;
                let from = range.start.saturating_sub(chunk_start) as usize;
                let to = ((range.end - chunk_start).min(bufs.output.len() as u64)) as usize;
                let slice = bufs
                    .output
                    .get(from..to)
                    .ok_or_else(|| Error::Internal("range slice out of bounds".into()))?;
                output.write_all(slice).map_err(Error::Write)?;
                ctl.progress.add_out(slice.len() as u64);
                ctl.progress.add_done(rh.record_len());
                ctl.progress.add_chunk();
                written += slice.len() as u64;
                chunks_read += 1;
                Ok(())
            },
        )?;
        output.flush().map_err(Error::Write)?;
        Ok(RangeSummary {
            bytes: written,
            chunks_read,
        })
    }
}
