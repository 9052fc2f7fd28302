//! Per-chunk compression: zstd (with level), lz4, or none.
//!
//! Each chunk is compressed independently so chunks can be processed in
//! parallel and restored at random. A chunk that does not shrink is stored
//! raw; an adaptive probe skips the full compressor on chunks that look
//! incompressible. Contexts are reused: create one [`Compressor`] and one
//! [`Decompressor`] per worker thread, never per chunk.

use crate::error::{Error, Result};
use crate::params::ChunkSize;

/// A compression codec, as stored in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Chunks are stored as they are.
    None,
    /// Zstandard, one frame per chunk.
    Zstd,
    /// LZ4 block format, one block per chunk.
    Lz4,
}

impl Codec {
    /// The id stored in the header.
    pub fn id(self) -> u8 {
        match self {
            Codec::None => 0,
            Codec::Zstd => 1,
            Codec::Lz4 => 2,
        }
    }

    /// The codec for a header id.
    pub fn from_id(id: u8) -> Result<Self> {
        match id {
            0 => Ok(Codec::None),
            1 => Ok(Codec::Zstd),
            2 => Ok(Codec::Lz4),
            other => Err(Error::UnknownCodec(other)),
        }
    }

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Zstd => "zstd",
            Codec::Lz4 => "lz4",
        }
    }
}

/// Lowest zstd level accepted (zstd's fast negative levels).
pub const ZSTD_MIN_LEVEL: i32 = -7;
/// Highest zstd level accepted.
pub const ZSTD_MAX_LEVEL: i32 = 22;
/// zstd level used when none is given.
pub const ZSTD_DEFAULT_LEVEL: i32 = 3;

/// A codec with its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    /// The codec.
    pub codec: Codec,
    /// The level (zstd only; 0 for the others).
    pub level: i32,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            codec: Codec::Zstd,
            level: ZSTD_DEFAULT_LEVEL,
        }
    }
}

impl Compression {
    /// No compression.
    pub const NONE: Compression = Compression {
        codec: Codec::None,
        level: 0,
    };

    /// Parses `zstd`, `zstd:LEVEL`, `lz4` or `none`.
    pub fn parse(spec: &str) -> Result<Self> {
        let (name, level) = match spec.split_once(':') {
            Some((n, l)) => (n, Some(l)),
            None => (spec, None),
        };
        let codec = match name.to_ascii_lowercase().as_str() {
            "zstd" => Codec::Zstd,
            "lz4" => Codec::Lz4,
            "none" => Codec::None,
            _ => {
                return Err(Error::InvalidParams(format!(
                    "unknown compression {spec:?} (expected zstd[:LEVEL], lz4 or none)"
                )))
            }
        };
        let level = match (codec, level) {
            (Codec::Zstd, Some(l)) => l
                .parse::<i32>()
                .map_err(|_| Error::InvalidParams(format!("zstd level {l:?} is not a number")))?,
            (Codec::Zstd, None) => ZSTD_DEFAULT_LEVEL,
            (_, Some(_)) => return Err(Error::InvalidParams(format!("{} takes no level", codec.name()))),
            (_, None) => 0,
        };
        let c = Compression { codec, level };
        c.validate()?;
        Ok(c)
    }

    /// Checks the level is in range for the codec.
    pub fn validate(&self) -> Result<()> {
        match self.codec {
            Codec::Zstd if !(ZSTD_MIN_LEVEL..=ZSTD_MAX_LEVEL).contains(&self.level) || self.level == 0 => {
                Err(Error::InvalidParams(format!(
                    "zstd level {} out of range ({ZSTD_MIN_LEVEL}..={ZSTD_MAX_LEVEL}, not 0)",
                    self.level
                )))
            }
            Codec::None | Codec::Lz4 if self.level != 0 => {
                Err(Error::InvalidParams(format!("{} takes no level", self.codec.name())))
            }
            _ => Ok(()),
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.codec {
            Codec::Zstd => write!(f, "zstd:{}", self.level),
            other => f.write_str(other.name()),
        }
    }
}

/// Size of each sample the incompressibility probe looks at.
const PROBE_SAMPLE: usize = 8 * 1024;
/// Number of samples the probe takes from a chunk.
const PROBE_SAMPLES: usize = 4;
/// Chunks smaller than this are always given to the real compressor.
const PROBE_MIN_CHUNK: usize = 64 * 1024;

/// Smallest zstd window a writer asks for (zstd's own floor is 2^10).
const ZSTD_MIN_WINDOW_LOG: u32 = 10;
/// Largest zstd window a writer asks for: what every decoder must accept.
const ZSTD_MAX_WINDOW_LOG: u32 = 27;

/// A reusable compression context (one per worker thread).
pub struct Compressor {
    compression: Compression,
    zstd: Option<zstd::bulk::Compressor<'static>>,
    probe: bool,
    scratch: Vec<u8>,
}

impl Compressor {
    /// A context for `compression` on chunks of `chunk_size`; `probe`
    /// enables the incompressibility probe.
    ///
    /// zstd's match window is widened to the whole chunk (its levels 1–5
    /// default to 512 KiB–2 MiB): chunks are compressed independently, so a
    /// window as long as the chunk is what wins back the long-range matches
    /// of real data (docs/PERFORMANCE.md). It costs no memory here, since
    /// each chunk is compressed and decompressed in one call from and into a
    /// buffer that is already whole, and it never exceeds the 2^27 bytes
    /// every decoder accepts (`docs/FORMAT.md` §5).
    pub fn new(compression: Compression, chunk_size: ChunkSize, probe: bool) -> Result<Self> {
        compression.validate()?;
        let zstd = match compression.codec {
            Codec::Zstd => {
                let mut z = zstd::bulk::Compressor::new(compression.level)
                    .map_err(|e| Error::InvalidParams(format!("zstd: {e}")))?;
                let window_log = u32::from(chunk_size.log2()).clamp(ZSTD_MIN_WINDOW_LOG, ZSTD_MAX_WINDOW_LOG);
                z.set_parameter(zstd::zstd_safe::CParameter::WindowLog(window_log))
                    .map_err(|e| Error::InvalidParams(format!("zstd window: {e}")))?;
                Some(z)
            }
            _ => None,
        };
        Ok(Compressor {
            compression,
            zstd,
            probe,
            scratch: Vec::new(),
        })
    }

    /// The compression this context applies.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Compresses `src` into `dst` (replacing its contents) and returns the
    /// compressed length, or `None` when the chunk should be stored raw (it
    /// would not shrink, or the probe says it will not). Output goes straight
    /// into `dst`'s spare capacity: reused buffers are never zero-filled.
    pub fn compress(&mut self, src: &[u8], dst: &mut Vec<u8>) -> Option<usize> {
        if src.is_empty() || self.compression.codec == Codec::None {
            return None;
        }
        if self.probe && src.len() >= PROBE_MIN_CHUNK && self.looks_incompressible(src) {
            return None;
        }
        dst.clear();
        let n = match self.compression.codec {
            Codec::Zstd => {
                // Room for exactly the input: anything that does not fit
                // would not have shrunk anyway.
                dst.reserve(src.len());
                self.zstd.as_mut()?.compress_to_buffer(src, dst).ok()?
            }
            Codec::Lz4 => {
                // lz4_flex needs room for the worst case, so it writes to a
                // scratch buffer that only ever grows.
                let need = lz4_flex::block::get_maximum_output_size(src.len());
                if self.scratch.len() < need {
                    self.scratch.resize(need, 0);
                }
                let n = lz4_flex::block::compress_into(src, &mut self.scratch).ok()?;
                if n < src.len() {
                    dst.extend_from_slice(self.scratch.get(..n)?);
                }
                n
            }
            Codec::None => return None,
        };
        (n < src.len() && dst.len() == n).then_some(n)
    }

    /// Cheap test on a few samples with LZ4: if they do not shrink by at least
    /// 2%, the whole chunk almost surely will not either.
    fn looks_incompressible(&mut self, src: &[u8]) -> bool {
        let stride = src.len() / PROBE_SAMPLES;
        let mut raw = 0usize;
        let mut packed = 0usize;
        let need = lz4_flex::block::get_maximum_output_size(PROBE_SAMPLE);
        if self.scratch.len() < need {
            self.scratch.resize(need, 0);
        }
        for i in 0..PROBE_SAMPLES {
            let start = i * stride;
            let Some(sample) = src.get(start..(start + PROBE_SAMPLE).min(src.len())) else {
                continue;
            };
            raw += sample.len();
            packed += lz4_flex::block::compress_into(sample, &mut self.scratch).unwrap_or(sample.len());
        }
        raw > 0 && packed * 100 >= raw * 98
    }
}

/// A reusable decompression context (one per worker thread).
pub struct Decompressor {
    zstd: Option<zstd::bulk::Decompressor<'static>>,
}

impl Default for Decompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl Decompressor {
    /// A fresh context; zstd state is created on first use.
    pub fn new() -> Self {
        Decompressor { zstd: None }
    }

    /// Decompresses `src` into `dst` (replacing its contents), which must
    /// come out at exactly `len` bytes. A zstd frame must also declare that
    /// length up front. Output never goes past `dst`'s existing capacity or
    /// `len` (whichever is larger), so a chunk cannot expand past its declared
    /// length (no decompression bombs), and reused buffers are not zero-filled.
    pub fn decompress(
        &mut self,
        codec: Codec,
        src: &[u8],
        dst: &mut Vec<u8>,
        len: usize,
    ) -> std::result::Result<(), String> {
        let n = match codec {
            Codec::None => return Err("chunk is flagged compressed but the codec is none".into()),
            Codec::Zstd => {
                match zstd::zstd_safe::get_frame_content_size(src) {
                    Ok(Some(declared)) if declared == len as u64 => {}
                    Ok(Some(declared)) => return Err(format!("zstd frame declares {declared} bytes, expected {len}")),
                    _ => return Err("zstd frame without a valid content size".into()),
                }
                // Exactly one frame: nothing (not even a skippable or empty
                // frame) may follow it in the body.
                match zstd::zstd_safe::find_frame_compressed_size(src) {
                    Ok(n) if n == src.len() => {}
                    Ok(n) => return Err(format!("{} bytes follow the zstd frame", src.len() - n)),
                    Err(_) => return Err("malformed zstd frame".into()),
                }
                if self.zstd.is_none() {
                    self.zstd = Some(zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?);
                }
                let z = self.zstd.as_mut().ok_or("zstd context unavailable")?;
                dst.clear();
                dst.reserve(len);
                z.decompress_to_buffer(src, dst).map_err(|e| format!("zstd: {e}"))?
            }
            Codec::Lz4 => {
                if dst.len() < len {
                    dst.resize(len, 0);
                }
                dst.truncate(len);
                lz4_flex::block::decompress_into(src, dst).map_err(|e| format!("lz4: {e}"))?
            }
        };
        if n != len || dst.len() != len {
            return Err(format!("decompressed to {n} bytes, expected {len}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_specs() {
        assert_eq!(
            Compression::parse("zstd").unwrap(),
            Compression {
                codec: Codec::Zstd,
                level: 3
            }
        );
        assert_eq!(Compression::parse("zstd:19").unwrap().level, 19);
        assert_eq!(Compression::parse("lz4").unwrap().codec, Codec::Lz4);
        assert_eq!(Compression::parse("none").unwrap(), Compression::NONE);
        assert!(Compression::parse("zstd:99").is_err());
        assert!(Compression::parse("zstd:x").is_err());
        assert!(Compression::parse("lz4:3").is_err());
        assert!(Compression::parse("gzip").is_err());
    }

    #[test]
    fn round_trip_and_exact_length() {
        let src: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8 / 8).collect();
        for c in [
            Compression::parse("zstd:1").unwrap(),
            Compression::parse("lz4").unwrap(),
        ] {
            let mut comp = Compressor::new(c, ChunkSize::default(), true).unwrap();
            let mut dst = Vec::new();
            let n = comp
                .compress(&src, &mut dst)
                .unwrap_or_else(|| panic!("compressible {c:?}"));
            assert_eq!(dst.len(), n);
            let mut d = Decompressor::new();
            let mut out = Vec::new();
            d.decompress(c.codec, &dst, &mut out, src.len()).unwrap();
            assert_eq!(out, src);
            // A declared length one byte short or long must fail, not overflow,
            // even into a buffer with room to spare.
            let mut roomy = Vec::with_capacity(4 * src.len());
            assert!(d.decompress(c.codec, &dst, &mut roomy, src.len() - 1).is_err());
            assert!(d.decompress(c.codec, &dst, &mut roomy, src.len() + 1).is_err());
            d.decompress(c.codec, &dst, &mut roomy, src.len()).unwrap();
            assert_eq!(roomy, src);
        }
    }

    /// A chunk whose second half repeats its first, 4 MiB back: only a
    /// window as long as the chunk sees the match (zstd:3 alone looks 2 MiB
    /// back and would store the chunk raw).
    #[test]
    fn the_zstd_window_spans_the_whole_chunk() {
        let half = 4 << 20;
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut src: Vec<u8> = (0..half)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        src.extend_from_within(..);
        let mut comp = Compressor::new(Compression::default(), ChunkSize::from_bytes(8 << 20).unwrap(), false).unwrap();
        let mut dst = Vec::new();
        let n = comp.compress(&src, &mut dst).expect("the repeat compresses");
        assert!(n < half + half / 50, "{n} bytes: the second half was not matched");
        let mut out = Vec::new();
        Decompressor::new()
            .decompress(Codec::Zstd, &dst, &mut out, src.len())
            .unwrap();
        assert_eq!(out, src);
    }

    #[test]
    fn a_zstd_body_is_exactly_one_frame() {
        let src = b"one frame, one frame, one frame, one frame".repeat(50);
        let mut comp = Compressor::new(Compression::default(), ChunkSize::default(), false).unwrap();
        let mut frame = Vec::new();
        comp.compress(&src, &mut frame).unwrap();
        let mut d = Decompressor::new();
        let mut out = Vec::new();
        d.decompress(Codec::Zstd, &frame, &mut out, src.len()).unwrap();
        // A skippable frame (magic 0x184D2A50, length 4) after it.
        let mut skippable = frame.clone();
        skippable.extend_from_slice(&[0x50, 0x2A, 0x4D, 0x18, 4, 0, 0, 0, 1, 2, 3, 4]);
        // An empty second frame after it.
        let mut empty = frame.clone();
        let mut second = Vec::new();
        zstd::stream::copy_encode(&[][..], &mut second, 3).unwrap();
        empty.extend_from_slice(&second);
        for (name, body) in [
            ("skippable", skippable),
            ("empty frame", empty),
            ("one junk byte", [&frame[..], &[0]].concat()),
        ] {
            let err = d.decompress(Codec::Zstd, &body, &mut out, src.len()).unwrap_err();
            assert!(err.contains("follow") || err.contains("malformed"), "{name}: {err}");
        }
        // Cut short: refused too.
        assert!(d
            .decompress(Codec::Zstd, &frame[..frame.len() - 1], &mut out, src.len())
            .is_err());
    }

    #[test]
    fn incompressible_is_stored_raw() {
        let mut src = vec![0u8; 256 * 1024];
        crate::kdf::random_bytes(&mut src).unwrap();
        for probe in [true, false] {
            let mut comp = Compressor::new(Compression::default(), ChunkSize::default(), probe).unwrap();
            let mut dst = Vec::new();
            assert_eq!(comp.compress(&src, &mut dst), None);
        }
    }
}
