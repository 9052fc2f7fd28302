//! The sluice container format, version 1: bytes on disk and the cryptography.
//!
//! A container is a [header](header) (parameters, key slots, MAC), a
//! sequence of sealed data chunks and a sealed [index](stream::Index) that
//! ends the STREAM, then a 16-byte footer. `docs/FORMAT.md` in the repository
//! specifies every byte; this crate is its reference implementation.
//!
//! This crate holds pure functions over buffers: no threads, no files, no
//! async. The `sluice-engine` crate moves data through it in parallel.

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
pub mod stream;
pub mod suite;

pub use codec::{Codec, Compression, Compressor, Decompressor};
pub use digest::{hash_chunk, ChunkHash, DigestBuilder, DIGEST_LEN};
pub use error::{Error, ErrorClass, KeyKind, Region, Result, TruncatedAt};
pub use header::{header_len, ChunkSize, FileParams, Header, Slot, MAGIC, PREFIX_LEN, VERSION};
pub use keys::{
    parse_recipients_file, Identity, KdfLimits, KdfParams, KeyRing, Passphrase, PassphraseProvider, RawKey, Recipient,
    SlotSpec,
};
pub use stream::{footer, parse_footer, Index, RecordHeader, RecordKind, StreamContext, FOOTER_LEN, RECORD_HEADER_LEN};
pub use suite::{Suite, TAG_LEN};
