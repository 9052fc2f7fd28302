//! The one error type of the format crate: every failure says *what* went wrong
//! and, where it applies, *where* (which chunk, which key slot).

use std::fmt;

/// A region of the container, used to say where a structural problem lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// The fixed-size start of the header.
    Header,
    /// Key slot number `n` (0-based) in the header.
    Slot(usize),
    /// The record of data chunk `n` (0-based).
    Chunk(u64),
    /// The final record that carries the index.
    Index,
    /// The 16-byte footer after the index.
    Footer,
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Region::Header => f.write_str("header"),
            Region::Slot(n) => write!(f, "key slot {n}"),
            Region::Chunk(n) => write!(f, "chunk {n}"),
            Region::Index => f.write_str("index"),
            Region::Footer => f.write_str("footer"),
        }
    }
}

/// The kind of key that was tried against a file and did not open it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A passphrase (Argon2id key slot).
    Passphrase,
    /// An X25519 identity.
    Identity,
    /// A raw 32-byte key file.
    KeyFile,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::Passphrase => "passphrase",
            KeyKind::Identity => "identity",
            KeyKind::KeyFile => "key file",
        })
    }
}

/// Everything that can go wrong while writing or reading a sluice container.
///
/// Messages are lowercase, name the place first and never contain key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input does not start with the sluice magic number.
    #[error("not a sluice file (bad magic number)")]
    NotSluice,
    /// The container was written by a newer (or unknown) format version.
    #[error("unsupported format version {0} (this build reads version 1)")]
    UnsupportedVersion(u16),
    /// The header names a cipher suite this build does not know.
    #[error("unknown cipher suite id {0}")]
    UnknownSuite(u8),
    /// The header names a compression codec this build does not know.
    #[error("unknown compression codec id {0}")]
    UnknownCodec(u8),
    /// A key slot of an unknown kind.
    #[error("key slot {slot}: unknown slot kind {kind}")]
    UnknownSlotKind {
        /// Slot number.
        slot: usize,
        /// The kind byte found.
        kind: u8,
    },
    /// The input ended inside the header.
    #[error("file truncated inside the header")]
    HeaderTruncated,
    /// The header's checksum does not match: accidental corruption.
    #[error("header corrupted (checksum mismatch)")]
    HeaderCorrupted,
    /// A field of the header or of a region is out of its allowed range.
    #[error("{region}: invalid {what}")]
    Invalid {
        /// Where the field is.
        region: Region,
        /// What is wrong, e.g. "slot length 5 (this kind is 80 bytes)".
        what: String,
    },
    /// The header MAC does not verify under the unlocked file key.
    #[error("header MAC mismatch (file tampered with)")]
    HeaderMacMismatch,
    /// The file is not encrypted, but the reader expects encryption (see
    /// `KeyRing::allow_unencrypted`): refused, since anyone can make a valid
    /// unencrypted file.
    #[error(
        "file is not encrypted, but an encrypted file was expected (refused: anyone can make an unencrypted file)"
    )]
    NotEncrypted,
    /// The file is encrypted but no key of the needed kind was supplied.
    #[error("file is encrypted to {needed}, but none was given")]
    MissingKey {
        /// What kind of key the file's slots need, e.g. "a passphrase".
        needed: &'static str,
    },
    /// Keys were supplied but none of them unlocks the file. Every way of
    /// failing (a slot that does not open, or opens to a key the header does
    /// not commit to) gives this one error, so failures reveal nothing more.
    #[error("wrong key: no key slot could be opened with the given {tried}")]
    NoMatchingKey {
        /// Human-readable list of the key kinds tried, e.g. "identity".
        tried: String,
    },
    /// The passphrase could not be obtained (prompt failed, file unreadable...).
    #[error("could not read the passphrase: {0}")]
    PassphraseUnavailable(String),
    /// A passphrase slot asks for more Argon2 work than the configured cap.
    #[error("key slot {slot}: Argon2 {cost} {value} exceeds the limit {limit}")]
    KdfCostTooHigh {
        /// Slot number.
        slot: usize,
        /// Which cost is over its cap.
        cost: crate::kdf::KdfCost,
        /// The value the file asks for.
        value: u32,
        /// The configured cap.
        limit: u32,
    },
    /// A chunk failed authentication (AEAD tag or checksum mismatch).
    #[error("chunk {chunk} failed authentication (file corrupted or tampered with)")]
    ChunkAuth {
        /// The 0-based chunk number.
        chunk: u64,
    },
    /// The index record failed authentication.
    #[error("index failed authentication (file corrupted, truncated or tampered with)")]
    IndexAuth,
    /// An authenticated chunk decompressed to the wrong length or not at all.
    #[error("chunk {chunk}: corrupt compressed data ({what})")]
    ChunkCorrupt {
        /// The 0-based chunk number.
        chunk: u64,
        /// What the decompressor reported.
        what: String,
    },
    /// The input ends before the container does.
    #[error("file truncated {0}")]
    Truncated(TruncatedAt),
    /// Bytes follow the footer.
    #[error("unexpected data after the end of the container (appended bytes)")]
    TrailingData,
    /// The authenticated index disagrees with the chunks that were read.
    #[error("index mismatch: {0}")]
    IndexMismatch(String),
    /// The whole-file BLAKE3 digest of the restored data does not match.
    #[error("whole-file digest mismatch (restored data differs from the original)")]
    DigestMismatch,
    /// Invalid parameters for writing a container (chunk size, level, recipients...).
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    /// A recipient, identity or key file could not be parsed.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The platform's random number generator or a crypto primitive failed.
    #[error("cryptographic backend failure: {0}")]
    Crypto(&'static str),
}

/// Where a truncated input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TruncatedAt {
    /// Inside the record of data chunk `n`.
    InsideChunk(u64),
    /// After the last byte of data chunk `n` (a whole number of chunks), before the index.
    AfterChunk(u64),
    /// Right after the header, before any chunk or the index.
    AfterHeader,
    /// Inside the index record.
    InsideIndex,
    /// Inside or before the footer.
    InsideFooter,
}

impl fmt::Display for TruncatedAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TruncatedAt::InsideChunk(n) => write!(f, "inside chunk {n}"),
            TruncatedAt::AfterChunk(n) => write!(f, "after chunk {n}"),
            TruncatedAt::AfterHeader => f.write_str("after the header"),
            TruncatedAt::InsideIndex => f.write_str("inside the index"),
            TruncatedAt::InsideFooter => f.write_str("inside the footer"),
        }
    }
}

impl Error {
    /// The footer's offset disagrees with where the index really is.
    pub fn invalid_footer_offset() -> Self {
        Error::invalid(Region::Footer, "index offset (does not match the index position)")
    }

    /// Shorthand for [`Error::Invalid`].
    pub(crate) fn invalid(region: Region, what: impl Into<String>) -> Self {
        Error::Invalid {
            region,
            what: what.into(),
        }
    }

    /// The broad class of this error, for exit codes and HTTP statuses.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::MissingKey { .. } | Error::NoMatchingKey { .. } | Error::PassphraseUnavailable(_) => ErrorClass::Key,
            Error::InvalidParams(_) | Error::InvalidKey(_) => ErrorClass::Usage,
            Error::KdfCostTooHigh { .. } => ErrorClass::Limit,
            Error::Crypto(_) => ErrorClass::Internal,
            _ => ErrorClass::Integrity,
        }
    }
}

/// Broad classes of failure, stable for mapping to exit codes or HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Bad parameters or key strings given by the user.
    Usage,
    /// The input is not an intact sluice container (corrupt, truncated, tampered, unsupported).
    Integrity,
    /// No usable key was supplied, or the key is wrong.
    Key,
    /// The file asks for more resources than the configured limits allow.
    Limit,
    /// An I/O error (only produced by layers that do I/O).
    Io,
    /// The operation was cancelled.
    Cancelled,
    /// A bug or a failure of the crypto backend.
    Internal,
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
