//! The engine's error type: format errors plus I/O, cancellation and ranges.

use std::io;

use sluice_format::ErrorClass;

/// What can go wrong while the engine moves data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The container is invalid, tampered with, or the key is wrong.
    #[error(transparent)]
    Format(#[from] sluice_format::Error),
    /// Reading the input failed (the cause is the error's `source()`).
    #[error("reading input")]
    Read(#[source] io::Error),
    /// Writing the output failed (the cause is the error's `source()`).
    #[error("writing output")]
    Write(#[source] io::Error),
    /// The operation was cancelled through its [`crate::CancelToken`].
    #[error("operation cancelled")]
    Cancelled,
    /// A requested byte range lies outside the original data.
    #[error("range {start}..{end} is outside the original data ({len} bytes)")]
    RangeOutOfBounds {
        /// Requested start.
        start: u64,
        /// Requested end (exclusive).
        end: u64,
        /// Length of the original data.
        len: u64,
    },
    /// Invalid engine configuration (thread counts and the like).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A bug: a worker panicked or a channel closed unexpectedly.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The broad class of the error, for exit codes and HTTP statuses.
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Format(e) => e.class(),
            Error::Read(_) | Error::Write(_) => ErrorClass::Io,
            Error::Cancelled => ErrorClass::Cancelled,
            Error::RangeOutOfBounds { .. } | Error::Config(_) => ErrorClass::Usage,
            Error::Internal(_) => ErrorClass::Internal,
        }
    }
}

/// Result alias for the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;
