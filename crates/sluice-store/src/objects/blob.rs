//! [`BlobStore`]: the few calls [`Objects`](crate::Objects) needs from a
//! backend (a local directory, or an `object_store` store such as S3),
//! with this crate's own types, so that nothing above the store depends on
//! the backend's crate.

use std::fmt;
use std::io;
use std::ops::Range;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use tokio::io::{AsyncRead, AsyncWrite};

/// What a backend call can end in.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// Nothing is stored at this location.
    #[error("{0}: not found")]
    NotFound(String),
    /// The backend may be failing (a disk or network error, a timeout, the
    /// breaker's refusal): worth a retry, and counted by the breaker.
    #[error("{0}")]
    Failing(Box<dyn std::error::Error + Send + Sync>),
    /// A definite answer that proves the backend works (a precondition, an
    /// unsupported call): neither retried nor counted.
    #[error("{0}")]
    Rejected(Box<dyn std::error::Error + Send + Sync>),
}

impl BlobError {
    /// A failing call, from any error.
    pub fn failing(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> BlobError {
        BlobError::Failing(e.into())
    }

    /// A definite refusal, from any error.
    pub fn rejected(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> BlobError {
        BlobError::Rejected(e.into())
    }

    /// An I/O error at `location`: not found, or failing.
    pub fn io(location: &str, e: io::Error) -> BlobError {
        if e.kind() == io::ErrorKind::NotFound {
            BlobError::NotFound(location.to_string())
        } else {
            BlobError::Failing(Box::new(io::Error::new(e.kind(), format!("{location}: {e}"))))
        }
    }
}

/// Results of backend calls.
pub type BlobResult<T> = std::result::Result<T, BlobError>;

/// A stored object's bytes, in order.
pub type ByteStream = BoxStream<'static, io::Result<Bytes>>;

/// A stored object, read front to back.
pub type ObjectReader = Pin<Box<dyn AsyncRead + Send>>;

/// A writer of a new object: visible under its name only once `shutdown`
/// succeeded; dropped or [`aborted`](ObjectWrite::abort) before that, it
/// leaves nothing there.
#[async_trait]
pub trait ObjectWrite: AsyncWrite + Send + Unpin {
    /// Abandons the object (what was written so far is dropped).
    async fn abort(&mut self) -> BlobResult<()>;
}

/// A boxed [`ObjectWrite`].
pub type ObjectWriter = Box<dyn ObjectWrite>;

/// One stored object, as listed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listed {
    /// Its location.
    pub location: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written, in unix milliseconds.
    pub modified_ms: i64,
}

/// The calls of one backend. Locations are `/`-separated relative names.
#[async_trait]
pub trait BlobStore: Send + Sync + fmt::Debug {
    /// Stores `data` at `location` (replacing what was there), durably.
    async fn put(&self, location: &str, data: Bytes) -> BlobResult<()>;
    /// The size of the object at `location`.
    async fn size(&self, location: &str) -> BlobResult<u64>;
    /// A reader of the object at `location`, and its size.
    async fn read(&self, location: &str) -> BlobResult<(ObjectReader, u64)>;
    /// The bytes of the object at `location` as a stream, and its size.
    async fn stream(&self, location: &str) -> BlobResult<(ByteStream, u64)>;
    /// The bytes of `range` of the object at `location`.
    async fn read_range(&self, location: &str, range: Range<u64>) -> BlobResult<Bytes>;
    /// Every object under the directory `prefix` (at any depth), unordered,
    /// as a stream read a page at a time (never all of them held at once).
    fn list(&self, prefix: &str) -> BoxStream<'static, BlobResult<Listed>>;
    /// Deletes the object at `location`.
    async fn delete(&self, location: &str) -> BlobResult<()>;
    /// Moves `from` to `to`, replacing `to`.
    async fn rename(&self, from: &str, to: &str) -> BlobResult<()>;
    /// A writer of a new object at `location`.
    fn writer(&self, location: &str) -> ObjectWriter;
    /// The backend's multipart uploads, if it has them.
    fn parts(&self) -> Option<&dyn PartsStore> {
        None
    }
}

/// A backend's multipart uploads: parts sent in any order (and again),
/// assembled into one object on completion.
#[async_trait]
pub trait PartsStore: Send + Sync {
    /// Starts a multipart upload to `location`; returns its id.
    async fn begin(&self, location: &str) -> BlobResult<String>;
    /// Uploads part `index` (0-based) of upload `id`; returns its part id.
    async fn put_part(&self, location: &str, id: &str, index: usize, data: Vec<Bytes>) -> BlobResult<String>;
    /// Completes upload `id` from its parts' ids, in order.
    async fn complete(&self, location: &str, id: &str, parts: Vec<String>) -> BlobResult<()>;
    /// Aborts upload `id` at `location` (a full path, as a marker names it
    /// when `raw`; else under the store's prefix).
    async fn abort(&self, location: &str, id: &str, raw: bool) -> BlobResult<()>;
}
