//! Records after the header: sealed data chunks (STREAM), the sealed index
//! that ends the stream, and the footer. See `docs/FORMAT.md` §5–§7.
//!
//! Element `i` of the STREAM is data chunk `i`, sealed with nonce
//! `(i, last = 0)`; the index is element `n` (the chunk count), sealed with
//! `last = 1`. Each element's associated data is the header MAC followed by
//! the record's 12-byte cleartext header, so chunks cannot be moved between
//! files, reordered, re-flagged or resized without failing authentication.

use crate::bytes::Cursor;
use crate::codec::{Codec, Compressor, Decompressor};
use crate::digest::DIGEST_LEN;
use crate::error::{Error, Region, Result};
use crate::header::Header;
use crate::kdf::MAC_LEN;
use crate::params::MAX_CHUNKS;
use crate::suite::{stream_nonce, PayloadCipher, TAG_LEN};

/// Length of a record's cleartext header.
pub const RECORD_HEADER_LEN: usize = 12;
/// Length of the fixed part of the index plaintext.
pub const INDEX_FIXED_LEN: usize = 8 + 8 + 8 + DIGEST_LEN;
/// Bytes per chunk in the index.
pub const INDEX_ENTRY_LEN: usize = 4;
/// Length of the footer.
pub const FOOTER_LEN: usize = 16;
/// The footer's closing magic.
pub const END_MAGIC: [u8; 8] = *b"SLUICEND";
/// Flag bit: the body is compressed with the header's codec.
pub const FLAG_COMPRESSED: u8 = 1;

/// The kind of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// A data chunk.
    Data,
    /// The final record, carrying the index.
    Index,
}

/// The 12-byte cleartext header of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    /// Data chunk or index.
    pub kind: RecordKind,
    /// Whether the body is compressed.
    pub compressed: bool,
    /// Length of the plaintext.
    pub plain_len: u32,
    /// Length of the sealed body, tag included.
    pub body_len: u32,
}

impl RecordHeader {
    /// The stored bytes.
    pub fn to_bytes(&self) -> [u8; RECORD_HEADER_LEN] {
        let mut b = [0u8; RECORD_HEADER_LEN];
        b[0] = match self.kind {
            RecordKind::Data => 0,
            RecordKind::Index => 1,
        };
        b[1] = if self.compressed { FLAG_COMPRESSED } else { 0 };
        b[4..8].copy_from_slice(&self.plain_len.to_le_bytes());
        b[8..12].copy_from_slice(&self.body_len.to_le_bytes());
        b
    }

    /// Parses the stored bytes; `region` says where they were read, for errors.
    pub fn parse(b: &[u8; RECORD_HEADER_LEN], region: Region) -> Result<Self> {
        let mut c = Cursor::new(b);
        let bad = |w: String| Error::invalid(region, w);
        let kind = match c.u8() {
            Some(0) => RecordKind::Data,
            Some(1) => RecordKind::Index,
            Some(k) => return Err(bad(format!("record kind {k}"))),
            None => return Err(bad("record header".into())),
        };
        let flags = c.u8().unwrap_or(0xff);
        if flags & !FLAG_COMPRESSED != 0 || (kind == RecordKind::Index && flags != 0) {
            return Err(bad(format!("record flags {flags:#04x}")));
        }
        if c.u16() != Some(0) {
            return Err(bad("reserved record bytes (must be 0)".into()));
        }
        let plain_len = c.u32().ok_or_else(|| bad("record header".into()))?;
        let body_len = c.u32().ok_or_else(|| bad("record header".into()))?;
        Ok(RecordHeader {
            kind,
            compressed: flags & FLAG_COMPRESSED != 0,
            plain_len,
            body_len,
        })
    }

    /// Bytes the record occupies in the file.
    pub fn record_len(&self) -> u64 {
        RECORD_HEADER_LEN as u64 + u64::from(self.body_len)
    }
}

/// The authenticated index: where every chunk is, how long the original
/// was, and its BLAKE3 digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// Number of data chunks.
    pub chunk_count: u64,
    /// Length of the original (plaintext) data.
    pub plaintext_len: u64,
    /// File offset at which the index record starts.
    pub index_offset: u64,
    /// BLAKE3 of the whole plaintext.
    pub digest: [u8; DIGEST_LEN],
    /// Sealed body length (tag included) of each chunk record.
    pub body_lens: Vec<u32>,
}

impl Index {
    /// File offset of each chunk record, given the header length.
    pub fn offsets(&self, header_len: u64) -> Vec<u64> {
        let mut off = header_len;
        self.body_lens
            .iter()
            .map(|&b| {
                let here = off;
                off = off.saturating_add(RECORD_HEADER_LEN as u64 + u64::from(b));
                here
            })
            .collect()
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(INDEX_FIXED_LEN + INDEX_ENTRY_LEN * self.body_lens.len());
        out.extend_from_slice(&self.chunk_count.to_le_bytes());
        out.extend_from_slice(&self.plaintext_len.to_le_bytes());
        out.extend_from_slice(&self.index_offset.to_le_bytes());
        out.extend_from_slice(&self.digest);
        for b in &self.body_lens {
            out.extend_from_slice(&b.to_le_bytes());
        }
        out
    }

    fn decode(plain: &[u8]) -> Result<Index> {
        let mut c = Cursor::new(plain);
        let bad = |w: &str| Error::IndexMismatch(w.to_string());
        let chunk_count = c.u64().ok_or_else(|| bad("index too short"))?;
        let plaintext_len = c.u64().ok_or_else(|| bad("index too short"))?;
        let index_offset = c.u64().ok_or_else(|| bad("index too short"))?;
        let digest = c.array().ok_or_else(|| bad("index too short"))?;
        if (c.remaining() / INDEX_ENTRY_LEN) as u64 != chunk_count || !c.remaining().is_multiple_of(INDEX_ENTRY_LEN) {
            return Err(bad("index length does not match its chunk count"));
        }
        let mut body_lens = Vec::with_capacity(c.remaining() / INDEX_ENTRY_LEN);
        while let Some(b) = c.u32() {
            body_lens.push(b);
        }
        Ok(Index {
            chunk_count,
            plaintext_len,
            index_offset,
            digest,
            body_lens,
        })
    }
}

/// The footer: the index offset and the end magic.
pub fn footer(index_offset: u64) -> [u8; FOOTER_LEN] {
    let mut f = [0u8; FOOTER_LEN];
    f[..8].copy_from_slice(&index_offset.to_le_bytes());
    f[8..].copy_from_slice(&END_MAGIC);
    f
}

/// Parses a footer and returns the index offset it claims (checked later
/// against the authenticated index).
pub fn parse_footer(b: &[u8]) -> Result<u64> {
    let mut c = Cursor::new(b);
    let off = c.u64();
    let magic: Option<[u8; 8]> = c.array();
    match (off, magic) {
        (Some(off), Some(m)) if m == END_MAGIC && c.remaining() == 0 => Ok(off),
        _ => Err(Error::invalid(Region::Footer, "footer (bad end magic)")),
    }
}

/// Everything needed to seal or open the records of one file: its header
/// and its payload cipher. Shared read-only by all worker threads.
pub struct StreamContext {
    header: Header,
    cipher: PayloadCipher,
}

impl StreamContext {
    /// Binds a header to its (unlocked or freshly created) payload cipher.
    pub fn new(header: Header, cipher: PayloadCipher) -> Self {
        StreamContext { header, cipher }
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The chunk size in bytes.
    pub fn chunk_size(&self) -> usize {
        self.header.chunk_size.bytes()
    }

    fn aad(&self, rh: &RecordHeader) -> [u8; MAC_LEN + RECORD_HEADER_LEN] {
        let mut aad = [0u8; MAC_LEN + RECORD_HEADER_LEN];
        aad[..MAC_LEN].copy_from_slice(&self.header.mac);
        aad[MAC_LEN..].copy_from_slice(&rh.to_bytes());
        aad
    }

    /// Compresses (if it helps) and seals data chunk `index`. On return
    /// `body` holds the sealed body (stored bytes, then the tag) and the
    /// returned header gives the 12 bytes that precede it in the file:
    /// the record is `header.to_bytes() || body`.
    pub fn seal_chunk(
        &self,
        index: u64,
        plain: &[u8],
        comp: &mut Compressor,
        body: &mut Vec<u8>,
    ) -> Result<RecordHeader> {
        if plain.is_empty() || plain.len() > self.chunk_size() {
            return Err(Error::InvalidParams(format!(
                "chunk {index}: {} bytes is not a valid chunk",
                plain.len()
            )));
        }
        let compressed = comp.compress(plain, body).is_some();
        if !compressed {
            body.clear();
            body.extend_from_slice(plain);
        }
        let rh = RecordHeader {
            kind: RecordKind::Data,
            compressed,
            plain_len: plain.len() as u32,
            body_len: (body.len() + TAG_LEN) as u32,
        };
        let tag = self.cipher.seal(stream_nonce(index, false), &self.aad(&rh), body)?;
        body.extend_from_slice(&tag);
        Ok(rh)
    }

    /// Seals bytes already in their stored form as data chunk `index`, in
    /// place: `stored` holds a chunk's stored bytes (compressed with the
    /// header's codec if `compressed`, else the plaintext itself) of
    /// `plain_len` plaintext bytes, as another container's record held
    /// them. Returns the record header and the tag that follows the sealed
    /// bytes. This moves a chunk between containers of the same codec
    /// without compressing it again; its bounds are checked as a reader
    /// checks them.
    pub fn seal_stored(
        &self,
        index: u64,
        compressed: bool,
        plain_len: usize,
        stored: &mut [u8],
    ) -> Result<(RecordHeader, [u8; TAG_LEN])> {
        let too_long = || Error::InvalidParams(format!("chunk {index}: too long for a record"));
        let rh = RecordHeader {
            kind: RecordKind::Data,
            compressed,
            plain_len: u32::try_from(plain_len).map_err(|_| too_long())?,
            body_len: u32::try_from(stored.len() + TAG_LEN).map_err(|_| too_long())?,
        };
        self.check_data_record(index, &rh)
            .map_err(|e| Error::InvalidParams(format!("chunk {index} cannot be stored here: {e}")))?;
        let tag = self.cipher.seal(stream_nonce(index, false), &self.aad(&rh), stored)?;
        Ok((rh, tag))
    }

    /// Authenticates data chunk `index` and decrypts its sealed `body` in
    /// place without decompressing it; the length of its stored bytes
    /// (the start of `body`), which [`Self::seal_stored`] can seal into
    /// another container.
    pub fn open_stored(&self, index: u64, rh: &RecordHeader, body: &mut [u8]) -> Result<usize> {
        self.authenticate_chunk(index, rh, body)
    }

    /// Checks a data record header against the format's bounds before its
    /// body is read: lengths are capped by the chunk size, so nothing a
    /// hostile file claims can make the reader allocate more.
    pub fn check_data_record(&self, index: u64, rh: &RecordHeader) -> Result<()> {
        let region = Region::Chunk(index);
        let plain = rh.plain_len as usize;
        let body = rh.body_len as usize;
        if rh.kind != RecordKind::Data {
            return Err(Error::invalid(region, "record kind (expected a data chunk)"));
        }
        if plain == 0 || plain > self.chunk_size() {
            return Err(Error::invalid(
                region,
                format!("plaintext length {plain} (chunk size is {})", self.chunk_size()),
            ));
        }
        if rh.compressed && self.header.compression.codec == Codec::None {
            return Err(Error::invalid(region, "compressed flag in a file without compression"));
        }
        let ok = if rh.compressed {
            body > TAG_LEN && body < plain + TAG_LEN
        } else {
            body == plain + TAG_LEN
        };
        if !ok {
            return Err(Error::invalid(
                region,
                format!("stored length {body} for {plain} plaintext bytes"),
            ));
        }
        Ok(())
    }

    /// Authenticates and decodes data chunk `index`. `body` holds the sealed
    /// body (tag included) and is used as scratch; on success `out` holds
    /// exactly the chunk's plaintext. The record header is checked again here
    /// ([`Self::check_data_record`]); readers call that check themselves too,
    /// before reading the body, to bound what they allocate.
    pub fn open_chunk(
        &self,
        index: u64,
        rh: &RecordHeader,
        body: &mut Vec<u8>,
        dec: &mut Decompressor,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let n = self.authenticate_chunk(index, rh, body)?;
        body.truncate(n);
        let plain_len = rh.plain_len as usize;
        if rh.compressed {
            dec.decompress(self.header.compression.codec, body, out, plain_len)
                .map_err(|what| Error::ChunkCorrupt { chunk: index, what })?;
        } else {
            std::mem::swap(out, body);
        }
        Ok(())
    }

    /// Checks chunk `index`'s record header and decrypts its sealed body in
    /// place; the stored bytes' length.
    fn authenticate_chunk(&self, index: u64, rh: &RecordHeader, body: &mut [u8]) -> Result<usize> {
        self.check_data_record(index, rh)?;
        self.cipher
            .open(stream_nonce(index, false), &self.aad(rh), body)
            .ok_or(Error::ChunkAuth { chunk: index })
    }

    /// Like [`Self::open_chunk`], with the sealed body in a slice (e.g. the
    /// tail of a buffer holding the whole record): decrypted in place,
    /// then decompressed (or copied, if stored) into `out`.
    pub fn open_chunk_in(
        &self,
        index: u64,
        rh: &RecordHeader,
        body: &mut [u8],
        dec: &mut Decompressor,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let n = self.authenticate_chunk(index, rh, body)?;
        let opened = body.get(..n).ok_or(Error::ChunkAuth { chunk: index })?;
        let plain_len = rh.plain_len as usize;
        if rh.compressed {
            dec.decompress(self.header.compression.codec, opened, out, plain_len)
                .map_err(|what| Error::ChunkCorrupt { chunk: index, what })?;
        } else {
            out.clear();
            out.extend_from_slice(opened);
        }
        Ok(())
    }

    /// Refuses a chunk number past [`MAX_CHUNKS`]: a writer calls this before
    /// sealing each chunk, so input too large for the chunk size fails at once
    /// rather than after everything was written.
    pub fn check_chunk_count(&self, count: u64) -> Result<()> {
        if count > MAX_CHUNKS {
            return Err(Error::InvalidParams(format!(
                "input needs more than {MAX_CHUNKS} chunks of {} bytes (at most {} bytes at this chunk size)",
                self.chunk_size(),
                self.header.chunk_size.max_plaintext()
            )));
        }
        Ok(())
    }

    /// Seals the index as the last STREAM element; returns the whole record.
    pub fn seal_index(&self, index: &Index) -> Result<Vec<u8>> {
        self.check_chunk_count(index.chunk_count)?;
        let mut plain = index.encode();
        let rh = RecordHeader {
            kind: RecordKind::Index,
            compressed: false,
            plain_len: u32::try_from(plain.len()).map_err(|_| Error::InvalidParams("too many chunks".into()))?,
            body_len: u32::try_from(plain.len() + TAG_LEN)
                .map_err(|_| Error::InvalidParams("too many chunks".into()))?,
        };
        let tag = self
            .cipher
            .seal(stream_nonce(index.chunk_count, true), &self.aad(&rh), &mut plain)?;
        let mut rec = Vec::with_capacity(RECORD_HEADER_LEN + plain.len() + TAG_LEN);
        rec.extend_from_slice(&rh.to_bytes());
        rec.extend_from_slice(&plain);
        rec.extend_from_slice(&tag);
        Ok(rec)
    }

    /// Checks an index record header: its size must match `chunk_count`.
    pub fn check_index_record(&self, chunk_count: u64, rh: &RecordHeader) -> Result<()> {
        let expect = (chunk_count as u128) * INDEX_ENTRY_LEN as u128 + INDEX_FIXED_LEN as u128;
        if rh.kind != RecordKind::Index
            || u128::from(rh.plain_len) != expect
            || u64::from(rh.body_len) != u64::from(rh.plain_len) + TAG_LEN as u64
        {
            return Err(Error::invalid(
                Region::Index,
                format!("index record for {chunk_count} chunks"),
            ));
        }
        Ok(())
    }

    /// Authenticates the index record that follows `chunk_count` chunks and
    /// checks it is consistent with the header.
    pub fn open_index(&self, chunk_count: u64, rh: &RecordHeader, body: &mut [u8]) -> Result<Index> {
        self.check_index_record(chunk_count, rh)?;
        let n = self
            .cipher
            .open(stream_nonce(chunk_count, true), &self.aad(rh), body)
            .ok_or(Error::IndexAuth)?;
        let index = Index::decode(body.get(..n).ok_or(Error::IndexAuth)?)?;
        if index.chunk_count != chunk_count {
            return Err(Error::IndexMismatch(format!(
                "index lists {} chunks, file has {chunk_count}",
                index.chunk_count
            )));
        }
        let cs = self.chunk_size() as u128;
        let count = u128::from(chunk_count);
        let len = u128::from(index.plaintext_len);
        let fits = if count == 0 {
            len == 0
        } else {
            len > (count - 1) * cs && len <= count * cs
        };
        if !fits {
            return Err(Error::IndexMismatch(format!(
                "plaintext length {} does not fit {chunk_count} chunks",
                index.plaintext_len
            )));
        }
        Ok(index)
    }

    /// The plaintext length chunk `index` must have in a file of `total` bytes.
    pub fn expected_chunk_len(&self, index: u64, total: u64) -> u64 {
        let cs = self.chunk_size() as u64;
        total.saturating_sub(index.saturating_mul(cs)).min(cs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Compression;
    use crate::keys::{KeyRing, RawKey, SlotSpec};
    use crate::params::{ChunkSize, FileParams};
    use crate::suite::Suite;

    const CS: usize = 64 * 1024;

    fn ctx(suite: Suite) -> (StreamContext, KeyRing) {
        ctx_with(suite, Compression::default())
    }

    fn ctx_with(suite: Suite, compression: Compression) -> (StreamContext, KeyRing) {
        let key = RawKey::generate().unwrap();
        let specs = if suite.is_encrypted() {
            vec![SlotSpec::RawKey(key.clone())]
        } else {
            vec![]
        };
        let params = FileParams {
            suite,
            compression,
            chunk_size: ChunkSize::parse("64KiB").unwrap(),
        };
        let (h, c) = crate::header::Header::create(&params, &specs).unwrap();
        (StreamContext::new(h, c), KeyRing::new().with_raw_key(key))
    }

    #[test]
    fn chunk_round_trip_and_binding() {
        for suite in [Suite::None, Suite::Aes256Gcm, Suite::ChaCha20Poly1305] {
            let (c, _) = ctx(suite);
            let mut comp = Compressor::new(Compression::default(), ChunkSize::default(), true).unwrap();
            let mut dec = Decompressor::new();
            let plain = b"abcabcabcabcabcabcabcabcabcabcabcabc".repeat(100);
            let mut rec = Vec::new();
            let sealed = c.seal_chunk(5, &plain, &mut comp, &mut rec).unwrap();
            rec.splice(0..0, sealed.to_bytes());
            let rh = RecordHeader::parse(rec[..12].try_into().unwrap(), Region::Chunk(5)).unwrap();
            assert_eq!(rh, sealed);
            assert!(rh.compressed);
            let mut out = Vec::new();
            let mut body = rec[12..].to_vec();
            c.open_chunk(5, &rh, &mut body, &mut dec, &mut out).unwrap();
            assert_eq!(out, plain);
            // The same record at another position fails.
            let mut body = rec[12..].to_vec();
            assert!(matches!(
                c.open_chunk(6, &rh, &mut body, &mut dec, &mut out),
                Err(Error::ChunkAuth { chunk: 6 })
            ));
        }
    }

    #[test]
    fn a_stored_chunk_moves_to_another_container_without_recompressing() {
        for suite in [Suite::None, Suite::Aes256Gcm, Suite::ChaCha20Poly1305] {
            let (from, _) = ctx(suite);
            let (to, _) = ctx(Suite::Aes256Gcm);
            let mut comp = Compressor::new(Compression::default(), ChunkSize::default(), true).unwrap();
            let mut dec = Decompressor::new();
            let plain = b"0123456789".repeat(500);
            let mut body = Vec::new();
            let rh = from.seal_chunk(0, &plain, &mut comp, &mut body).unwrap();
            let n = from.open_stored(0, &rh, &mut body).unwrap();
            body.truncate(n);
            assert!(rh.compressed && n < plain.len(), "still compressed");
            let (moved, tag) = to.seal_stored(7, true, plain.len(), &mut body).unwrap();
            assert_eq!(moved.body_len as usize, n + TAG_LEN);
            body.extend_from_slice(&tag);
            let mut out = Vec::new();
            to.open_chunk(7, &moved, &mut body.clone(), &mut dec, &mut out).unwrap();
            assert_eq!(out, plain);
            assert!(to.open_chunk(6, &moved, &mut body, &mut dec, &mut out).is_err());
            // Bytes that break the record rules are refused.
            let mut stored = vec![1u8; 10];
            assert!(
                to.seal_stored(0, true, 5, &mut stored).is_err(),
                "compressed but longer"
            );
            assert!(
                to.seal_stored(0, false, 9, &mut stored).is_err(),
                "raw of the wrong length"
            );
            assert!(
                to.seal_stored(0, false, CS + 1, &mut vec![0; CS + 1]).is_err(),
                "past the chunk size"
            );
        }
    }

    #[test]
    fn index_round_trip_and_checks() {
        let (c, _) = ctx(Suite::Aes256Gcm);
        let idx = Index {
            chunk_count: 2,
            plaintext_len: 70_000,
            index_offset: 1234,
            digest: [7; 32],
            body_lens: vec![10, 20],
        };
        let rec = c.seal_index(&idx).unwrap();
        let rh = RecordHeader::parse(rec[..12].try_into().unwrap(), Region::Index).unwrap();
        let mut body = rec[12..].to_vec();
        assert_eq!(c.open_index(2, &rh, &mut body).unwrap(), idx);
        let mut body = rec[12..].to_vec();
        assert!(c.open_index(3, &rh, &mut body).is_err());
        assert_eq!(parse_footer(&footer(99)).unwrap(), 99);
        assert!(parse_footer(&[0; 16]).is_err());
    }

    /// A test-only writer: seals any record header and body as STREAM
    /// element `element`, so tests can build records that are authentic but
    /// break the format's rules.
    fn seal_any(c: &StreamContext, element: u64, last: bool, rh: &RecordHeader, body: &[u8]) -> Vec<u8> {
        let mut b = body.to_vec();
        let tag = c.cipher.seal(stream_nonce(element, last), &c.aad(rh), &mut b).unwrap();
        b.extend_from_slice(&tag);
        b
    }

    fn data(compressed: bool, plain_len: u32, body_len: u32) -> RecordHeader {
        RecordHeader {
            kind: RecordKind::Data,
            compressed,
            plain_len,
            body_len,
        }
    }

    fn is_invalid_chunk(r: Result<()>, n: u64) -> bool {
        matches!(r, Err(Error::Invalid { region: Region::Chunk(c), .. }) if c == n)
    }

    #[test]
    fn data_record_bounds_are_exact() {
        let (c, _) = ctx(Suite::Aes256Gcm);
        let cs = CS as u32;
        let tag = TAG_LEN as u32;
        for (rh, ok) in [
            (data(false, 1, 1 + tag), true),
            (data(false, cs, cs + tag), true),
            (data(false, 0, tag), false),
            (data(false, cs + 1, cs + 1 + tag), false),
            (data(false, u32::MAX - tag, u32::MAX), false),
            (data(false, 100, 100 + tag - 1), false),
            (data(false, 100, 100 + tag + 1), false),
            (data(true, 100, tag + 1), true),
            (data(true, 100, 100 + tag - 1), true),
            (data(true, 100, tag), false),
            (data(true, 100, 100 + tag), false),
            (data(true, cs, cs + tag), false),
            (data(true, cs + 1, cs), false),
            (data(true, 0, tag + 1), false),
        ] {
            let got = c.check_data_record(3, &rh);
            assert_eq!(got.is_ok(), ok, "{rh:?}: {got:?}");
            if !ok {
                assert!(is_invalid_chunk(got, 3), "{rh:?}");
            }
        }
        let index_kind = RecordHeader {
            kind: RecordKind::Index,
            ..data(false, 10, 10 + tag)
        };
        assert!(is_invalid_chunk(c.check_data_record(3, &index_kind), 3));
        let (plain_file, _) = ctx_with(Suite::Aes256Gcm, Compression::NONE);
        assert!(is_invalid_chunk(
            plain_file.check_data_record(0, &data(true, 100, 50)),
            0
        ));
        plain_file.check_data_record(0, &data(false, 100, 100 + tag)).unwrap();
    }

    #[test]
    fn open_chunk_refuses_authentic_records_that_break_the_bounds() {
        let (c, _) = ctx(Suite::Aes256Gcm);
        let mut dec = Decompressor::new();
        let mut out = Vec::new();
        // One byte more than the chunk size, stored raw and sealed correctly.
        let big = vec![7u8; CS + 1];
        let rh = data(false, big.len() as u32, (big.len() + TAG_LEN) as u32);
        let mut body = seal_any(&c, 0, false, &rh, &big);
        assert!(is_invalid_chunk(c.open_chunk(0, &rh, &mut body, &mut dec, &mut out), 0));
        // An empty chunk.
        let rh = data(false, 0, TAG_LEN as u32);
        let mut body = seal_any(&c, 0, false, &rh, &[]);
        assert!(is_invalid_chunk(c.open_chunk(0, &rh, &mut body, &mut dec, &mut out), 0));
        // A "compressed" body as long as the plaintext: never written, refused.
        let rh = data(true, 10, 10 + TAG_LEN as u32);
        let mut body = seal_any(&c, 0, false, &rh, &[1; 10]);
        assert!(is_invalid_chunk(c.open_chunk(0, &rh, &mut body, &mut dec, &mut out), 0));
    }

    #[test]
    fn seal_chunk_refuses_empty_and_oversized_chunks() {
        let (c, _) = ctx(Suite::Aes256Gcm);
        let mut comp = Compressor::new(Compression::default(), ChunkSize::default(), true).unwrap();
        let mut body = Vec::new();
        assert!(c.seal_chunk(0, &[], &mut comp, &mut body).is_err());
        assert!(c.seal_chunk(0, &vec![1; CS + 1], &mut comp, &mut body).is_err());
        c.seal_chunk(0, &vec![1; CS], &mut comp, &mut body).unwrap();
        c.seal_chunk(0, &[1], &mut comp, &mut body).unwrap();
    }

    #[test]
    fn index_record_bounds_are_exact() {
        let (c, _) = ctx(Suite::Aes256Gcm);
        let rh = |kind, plain: u64, body: u64| RecordHeader {
            kind,
            compressed: false,
            plain_len: plain as u32,
            body_len: body as u32,
        };
        let fixed = INDEX_FIXED_LEN as u64;
        let tag = TAG_LEN as u64;
        for n in [0u64, 1, 5, 1000] {
            let plain = fixed + 4 * n;
            c.check_index_record(n, &rh(RecordKind::Index, plain, plain + tag))
                .unwrap();
            for bad in [
                rh(RecordKind::Index, plain + 4, plain + 4 + tag),
                rh(
                    RecordKind::Index,
                    plain.saturating_sub(4),
                    plain.saturating_sub(4) + tag,
                ),
                rh(RecordKind::Index, plain, plain + tag + 1),
                rh(RecordKind::Index, plain, plain),
                rh(RecordKind::Data, plain, plain + tag),
                // What a hostile file claims to make a reader allocate ~4 GiB.
                rh(RecordKind::Index, u64::from(u32::MAX) - tag, u64::from(u32::MAX)),
            ] {
                let err = c.check_index_record(n, &bad).unwrap_err();
                assert!(
                    matches!(
                        err,
                        Error::Invalid {
                            region: Region::Index,
                            ..
                        }
                    ),
                    "{bad:?}"
                );
            }
        }
    }

    fn sealed_index(c: &StreamContext, idx: &Index) -> (RecordHeader, Vec<u8>) {
        let plain = idx.encode();
        let rh = RecordHeader {
            kind: RecordKind::Index,
            compressed: false,
            plain_len: plain.len() as u32,
            body_len: (plain.len() + TAG_LEN) as u32,
        };
        (rh, seal_any(c, idx.chunk_count, true, &rh, &plain))
    }

    #[test]
    fn index_plaintext_length_must_fit_its_chunks() {
        let (c, _) = ctx(Suite::Aes256Gcm);
        let cs = CS as u64;
        for (count, len, ok) in [
            (0u64, 0u64, true),
            (0, 1, false),
            (2, cs + 1, true),
            (2, 2 * cs, true),
            (2, cs, false),
            (2, 2 * cs + 1, false),
            (2, 0, false),
            (1, 1, true),
        ] {
            let idx = Index {
                chunk_count: count,
                plaintext_len: len,
                index_offset: 500,
                digest: [1; 32],
                body_lens: vec![100; count as usize],
            };
            let (rh, mut body) = sealed_index(&c, &idx);
            let got = c.open_index(count, &rh, &mut body);
            match (ok, got) {
                (true, Ok(back)) => assert_eq!(back, idx),
                (false, Err(Error::IndexMismatch(_))) => {}
                (_, other) => panic!("{count} chunks, {len} bytes: {other:?}"),
            }
        }
    }

    #[test]
    fn index_entries_must_match_its_chunk_count() {
        let (c, _) = ctx(Suite::Aes256Gcm);
        // Claims 2 chunks but lists 1 length; sealed as element 1 so that it
        // authenticates where a 1-chunk file's index would be.
        let idx = Index {
            chunk_count: 2,
            plaintext_len: 10,
            index_offset: 500,
            digest: [1; 32],
            body_lens: vec![26],
        };
        let plain = idx.encode();
        let rh = RecordHeader {
            kind: RecordKind::Index,
            compressed: false,
            plain_len: plain.len() as u32,
            body_len: (plain.len() + TAG_LEN) as u32,
        };
        let mut body = seal_any(&c, 1, true, &rh, &plain);
        assert!(matches!(c.open_index(1, &rh, &mut body), Err(Error::IndexMismatch(_))));
        // An index that authenticates for a different chunk count than the file has.
        let idx = Index {
            body_lens: vec![26, 26],
            plaintext_len: CS as u64 + 10,
            ..idx
        };
        let (rh, mut body) = sealed_index(&c, &idx);
        assert!(c.open_index(2, &rh, &mut body).is_ok());
        let (rh, mut body) = sealed_index(&c, &Index { chunk_count: 3, ..idx });
        assert!(c.open_index(2, &rh, &mut body).is_err());
    }

    #[test]
    fn chunk_count_is_bounded_by_the_index_lengths() {
        let (c, _) = ctx(Suite::Aes256Gcm);
        c.check_chunk_count(MAX_CHUNKS).unwrap();
        assert!(matches!(
            c.check_chunk_count(MAX_CHUNKS + 1),
            Err(Error::InvalidParams(_))
        ));
    }

    #[test]
    fn record_header_parsing_rejects_unknown_bits() {
        let ok = data(true, 5, 20).to_bytes();
        RecordHeader::parse(&ok, Region::Chunk(0)).unwrap();
        for (at, value) in [(0, 2u8), (1, 2), (1, 0x81), (2, 1), (3, 1)] {
            let mut b = ok;
            b[at] = value;
            assert!(
                matches!(
                    RecordHeader::parse(&b, Region::Chunk(4)),
                    Err(Error::Invalid {
                        region: Region::Chunk(4),
                        ..
                    })
                ),
                "byte {at} = {value}"
            );
        }
        let mut idx = RecordHeader {
            kind: RecordKind::Index,
            ..data(false, 60, 76)
        }
        .to_bytes();
        RecordHeader::parse(&idx, Region::Index).unwrap();
        idx[1] = FLAG_COMPRESSED;
        assert!(RecordHeader::parse(&idx, Region::Index).is_err(), "a compressed index");
    }
}
