//! The sluice container format, version 1: bytes on disk and the cryptography.
//!
//! A container is a [header] (parameters, key slots, MAC), a
//! sequence of sealed data chunks and a sealed [index](stream::Index) that
//! ends the STREAM, then a 16-byte footer. `docs/FORMAT.md` in the repository
//! specifies every byte; this crate is its reference implementation.
//!
//! This crate works on buffers it is given: it starts no threads, opens no
//! files and knows nothing of async. It does draw randomness from the
//! operating system (file keys, ids, salts) and asks a caller-supplied
//! callback for a passphrase when a file needs one. The `sluice-engine`
//! crate moves data through it in parallel.
//!
//! ```
//! use sluice_format::{Compressor, Decompressor, FileParams, Header, KeyRing, RawKey, SlotSpec, StreamContext};
//!
//! // A writer: a header for one key file, then one sealed chunk.
//! let key = RawKey::generate()?;
//! let params = FileParams::default();
//! let (header, cipher) = Header::create(&params, &[SlotSpec::RawKey(key.clone())])?;
//! let writer = StreamContext::new(header.clone(), cipher);
//! let mut comp = Compressor::new(params.compression, params.chunk_size, true)?;
//! let mut body = Vec::new();
//! let record = writer.seal_chunk(0, b"hello, sluice", &mut comp, &mut body)?;
//!
//! // A reader: parse the header, unlock it with the key, open the chunk.
//! let parsed = Header::parse(header.as_bytes())?;
//! let cipher = parsed.unlock(&KeyRing::new().with_raw_key(key))?;
//! let reader = StreamContext::new(parsed, cipher);
//! let mut plain = Vec::new();
//! reader.open_chunk(0, &record, &mut body, &mut Decompressor::new(), &mut plain)?;
//! assert_eq!(plain, b"hello, sluice");
//! # Ok::<(), sluice_format::Error>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

mod bytes;
pub mod codec;
pub mod digest;
pub mod error;
pub mod header;
pub mod kdf;
pub mod keys;
pub mod params;
pub mod slot;
pub mod stream;
pub mod suite;
pub mod zstd_frames;

pub use codec::{Codec, Compression, Compressor, Decompressor};
pub use digest::{hash_chunk, ChunkHash, DigestBuilder, DIGEST_LEN};
pub use error::{Error, ErrorClass, KeyKind, Region, Result, TruncatedAt};
pub use header::{header_len, Header, MAGIC, PREFIX_LEN, VERSION};
pub use kdf::{KdfCost, KdfLimits, KdfParams};
pub use keys::{parse_recipients_file, Identity, KeyRing, Passphrase, PassphraseProvider, RawKey, Recipient, SlotSpec};
pub use params::{parse_size, ChunkSize, FileParams, DEFAULT_CHUNK_LOG2, MAX_CHUNKS};
pub use slot::Slot;
pub use stream::{footer, parse_footer, Index, RecordHeader, RecordKind, StreamContext, FOOTER_LEN, RECORD_HEADER_LEN};
pub use suite::{Suite, TAG_LEN};
