//! The parameters a writer chooses for a new file: chunk size, cipher suite
//! and compression. See `docs/FORMAT.md` §2.

use crate::codec::Compression;
use crate::error::{Error, Region, Result};
use crate::suite::Suite;

/// Smallest chunk size exponent (4 KiB).
pub const MIN_CHUNK_LOG2: u8 = 12;
/// Largest chunk size exponent (64 MiB).
pub const MAX_CHUNK_LOG2: u8 = 26;
/// Default chunk size exponent, chosen by measurement (docs/PERFORMANCE.md).
pub const DEFAULT_CHUNK_LOG2: u8 = 23;

/// Most data chunks one file can hold: the index record's lengths are u32,
/// and its plaintext is 56 + 4 × chunks bytes, its body 16 bytes more
/// (`docs/FORMAT.md` §6). A writer refuses input that would need more.
pub const MAX_CHUNKS: u64 = (u32::MAX as u64 - 56 - 16) / 4;

/// A chunk size: a power of two between 4 KiB and 64 MiB.
///
/// Powers of two keep every chunk an aligned BLAKE3 subtree, so the
/// whole-file digest can be computed in parallel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChunkSize(u8);

impl Default for ChunkSize {
    fn default() -> Self {
        ChunkSize(DEFAULT_CHUNK_LOG2)
    }
}

impl ChunkSize {
    /// From the exponent stored in the header.
    pub fn from_log2(log2: u8) -> Result<Self> {
        if (MIN_CHUNK_LOG2..=MAX_CHUNK_LOG2).contains(&log2) {
            Ok(ChunkSize(log2))
        } else {
            Err(Error::invalid(
                Region::Header,
                format!("chunk size exponent {log2} (allowed {MIN_CHUNK_LOG2}..={MAX_CHUNK_LOG2})"),
            ))
        }
    }

    /// From a byte count, which must be a power of two in range.
    pub fn from_bytes(n: u64) -> Result<Self> {
        if !n.is_power_of_two() || !((1 << MIN_CHUNK_LOG2)..=(1 << MAX_CHUNK_LOG2)).contains(&n) {
            return Err(Error::InvalidParams(format!(
                "chunk size {n} must be a power of two from 4KiB to 64MiB"
            )));
        }
        // Truncation is impossible: n <= 2^26.
        Ok(ChunkSize(n.trailing_zeros() as u8))
    }

    /// Parses sizes such as `4MiB`, `64KiB`, `1M`, `65536`.
    pub fn parse(s: &str) -> Result<Self> {
        let bytes = parse_size(s).map_err(|what| Error::InvalidParams(format!("chunk size {s:?}: {what}")))?;
        Self::from_bytes(bytes)
    }

    /// The exponent.
    pub fn log2(self) -> u8 {
        self.0
    }

    /// The size in bytes.
    pub fn bytes(self) -> usize {
        1usize << self.0
    }

    /// The largest input a file with this chunk size can hold.
    pub fn max_plaintext(self) -> u64 {
        MAX_CHUNKS.saturating_mul(self.bytes() as u64)
    }
}

impl std::fmt::Display for ChunkSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            l if l >= 20 => write!(f, "{}MiB", 1u64 << (l - 20)),
            l => write!(f, "{}KiB", 1u64 << (l - 10)),
        }
    }
}

/// Parses a byte size with an optional binary unit: `4MiB`, `64KiB`, `1G`,
/// `65536`. Units are powers of 1024 (`K`, `KiB`, `KB` all mean 1024).
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| "not a size (e.g. 4MiB)".to_string())?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" | "kb" => 10,
        "m" | "mib" | "mb" => 20,
        "g" | "gib" | "gb" => 30,
        "t" | "tib" | "tb" => 40,
        _ => return Err("unknown unit (use KiB, MiB, GiB or TiB)".into()),
    };
    n.checked_mul(1u64 << shift).ok_or_else(|| "too large".to_string())
}

/// The parameters of a new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileParams {
    /// Cipher suite.
    pub suite: Suite,
    /// Compression codec and level.
    pub compression: Compression,
    /// Chunk size.
    pub chunk_size: ChunkSize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_size_parsing() {
        assert_eq!(ChunkSize::parse("4MiB").unwrap().bytes(), 4 << 20);
        assert_eq!(ChunkSize::parse("64KiB").unwrap().bytes(), 64 << 10);
        assert_eq!(ChunkSize::parse("65536").unwrap().bytes(), 65536);
        assert_eq!(ChunkSize::parse("4KiB").unwrap().bytes(), 4096);
        assert_eq!(ChunkSize::parse("64MiB").unwrap().bytes(), 64 << 20);
        assert!(ChunkSize::parse("3MiB").is_err());
        assert!(ChunkSize::parse("128MiB").is_err());
        assert!(ChunkSize::parse("2KiB").is_err());
        assert!(ChunkSize::parse("1KiB").is_err());
        assert!(ChunkSize::parse("lots").is_err());
        assert!(ChunkSize::parse("99999999999999999999GiB").is_err());
        assert!(ChunkSize::from_log2(11).is_err());
        assert!(ChunkSize::from_log2(27).is_err());
        assert_eq!(ChunkSize::from_log2(12).unwrap().bytes(), 4096);
        assert_eq!(ChunkSize::from_log2(26).unwrap().bytes(), 64 << 20);
    }

    #[test]
    fn sizes_and_display() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size(" 20 M "), Ok(20 << 20));
        assert!(parse_size("1PiB").is_err());
        assert!(parse_size("99999999999TiB").is_err());
        assert_eq!(ChunkSize::parse("4MiB").unwrap().to_string(), "4MiB");
        assert_eq!(ChunkSize::parse("64KiB").unwrap().to_string(), "64KiB");
    }

    #[test]
    fn the_largest_index_fits_its_u32_lengths() {
        let plain = 56 + 4 * MAX_CHUNKS;
        assert!(plain + 16 <= u64::from(u32::MAX));
        assert!(plain + 4 + 16 > u64::from(u32::MAX), "one more chunk would not fit");
    }
}
