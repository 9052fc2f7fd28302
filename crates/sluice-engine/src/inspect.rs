//! What can be told about a container without a key: the header and the
//! cleartext record framing. Nothing here is authenticated.

use std::io::{self, Read, Seek, SeekFrom};

use sluice_format::{
    Error as FormatError, Header, RecordHeader, RecordKind, Region, TruncatedAt, FOOTER_LEN, RECORD_HEADER_LEN,
};

use crate::container::{expect_footer, read_header};
use crate::error::{Error, Result};
use crate::io::read_full;

/// A container described from its cleartext parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    /// The parsed (checksum-verified, not MAC-verified) header.
    pub header: Header,
    /// Number of data chunks.
    pub chunk_count: u64,
    /// Sum of the chunks' plaintext lengths (unauthenticated).
    pub plaintext_len: u64,
    /// Chunks stored compressed.
    pub compressed_chunks: u64,
    /// Total container length.
    pub container_len: u64,
}

/// Describes a container by seeking from record to record.
pub fn inspect<R: Read + Seek>(mut input: R) -> Result<ContainerInfo> {
    walk(&mut input, |r, n| {
        let here = r.stream_position()?;
        let end = r.seek(SeekFrom::End(0))?;
        let to = here.saturating_add(n).min(end);
        r.seek(SeekFrom::Start(to))?;
        Ok(to - here)
    })
}

/// Describes a container by reading it through (for pipes).
pub fn inspect_stream<R: Read>(mut input: R) -> Result<ContainerInfo> {
    walk(&mut input, |r, n| io::copy(&mut r.by_ref().take(n), &mut io::sink()))
}

fn walk<R: Read>(input: &mut R, mut skip: impl FnMut(&mut R, u64) -> io::Result<u64>) -> Result<ContainerInfo> {
    let header = read_header(input)?;
    let mut pos = header.len() as u64;
    let mut chunk_count = 0u64;
    let mut plaintext_len = 0u64;
    let mut compressed_chunks = 0u64;
    loop {
        let mut rh_bytes = [0u8; RECORD_HEADER_LEN];
        let n = read_full(input, &mut rh_bytes).map_err(Error::Read)?;
        if n < RECORD_HEADER_LEN {
            let at = match (n, chunk_count) {
                (0, 0) => TruncatedAt::AfterHeader,
                (0, c) => TruncatedAt::AfterChunk(c - 1),
                (_, c) => TruncatedAt::InsideChunk(c),
            };
            return Err(FormatError::Truncated(at).into());
        }
        let rh = RecordHeader::parse(&rh_bytes, Region::Chunk(chunk_count))?;
        let skipped = skip(input, u64::from(rh.body_len)).map_err(Error::Read)?;
        if skipped < u64::from(rh.body_len) {
            let at = match rh.kind {
                RecordKind::Data => TruncatedAt::InsideChunk(chunk_count),
                RecordKind::Index => TruncatedAt::InsideIndex,
            };
            return Err(FormatError::Truncated(at).into());
        }
        let here = pos;
        pos += rh.record_len();
        match rh.kind {
            RecordKind::Data => {
                chunk_count += 1;
                plaintext_len += u64::from(rh.plain_len);
                compressed_chunks += u64::from(rh.compressed);
            }
            RecordKind::Index => {
                expect_footer(input, here)?;
                return Ok(ContainerInfo {
                    header,
                    chunk_count,
                    plaintext_len,
                    compressed_chunks,
                    container_len: pos + FOOTER_LEN as u64,
                });
            }
        }
    }
}
