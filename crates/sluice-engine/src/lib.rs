//! The sluice engine: moves data through the `sluice-format` stages in
//! parallel, in both directions, with bounded memory.
//!
//! - [`Engine::encode`] / [`Engine::decode`] / [`Engine::verify`] stream any
//!   `Read` into any `Write` (files, pipes, in-memory).
//! - [`Engine::restore`] and [`Archive::restore_range`] write into one
//!   [`Target`] type: a stream in order, or a file chunk by chunk.
//! - [`Archive`] restores byte ranges from a [`ReadAt`] source (a file,
//!   memory, an object store's ranged GETs), reading only the chunks a range
//!   touches, one read each; one opened archive serves concurrent ranges.
//! - [`inspect`] describes a container without a key.
//! - [`Encoder`] and [`Archive::open_record`] are the same work without
//!   I/O, for callers that drive it themselves (the server, from async
//!   streams): whole chunks in and out, each sealed or opened wherever the
//!   caller runs it (on the [`CpuPool`], awaited through [`CpuPool::run`]),
//!   so no thread waits for a slow peer.
//!
//! Each blocking operation runs a reader thread, CPU stages on the engine's
//! CPU pool and an ordered writer on the calling thread; all three stop on
//! the first error or on [`CancelToken::cancel`] (the CLI's path, at disk
//! speed). The engine knows nothing of HTTP, SQL or async runtimes.
//!
//! ```
//! use sluice_engine::format::{KeyRing, RawKey, SlotSpec};
//! use sluice_engine::{Control, EncodeOptions, Engine, EngineConfig};
//!
//! let engine = Engine::new(EngineConfig::default())?;
//! let key = RawKey::generate()?;
//! let opts = EncodeOptions {
//!     slots: vec![SlotSpec::RawKey(key.clone())],
//!     ..EncodeOptions::default()
//! };
//! let original = b"twelve bytes".repeat(100_000);
//! let mut container = Vec::new();
//! engine.encode(&original[..], &mut container, &opts, &Control::new())?;
//!
//! let mut restored = Vec::new();
//! let keys = KeyRing::new().with_raw_key(key);
//! let summary = engine.decode(&container[..], &mut restored, &keys, &Control::new())?;
//! assert_eq!(restored, original);
//! assert_eq!(summary.digest, *blake3::hash(&original).as_bytes());
//! # Ok::<(), sluice_engine::Error>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

mod archive;
mod buffers;
mod codec_cache;
mod container;
mod control;
mod decode;
mod encode;
mod engine;
mod error;
mod inspect;
mod io;
mod output_file;
mod pipeline;
mod pool;
mod source;
mod target;

pub use archive::{Archive, DigestCheck, OpenedChunk, RangeSummary, RecordRead, StoredChunk};
pub use buffers::BufferPool;
pub use container::{open_header, read_header};
pub use control::{CancelToken, Control, Progress};
pub use decode::DecodeSummary;
pub use encode::{ChunkSealer, EncodeOptions, EncodeSummary, Encoder, SealedChunk};
pub use engine::{available_cores, default_memory_budget, Engine, EngineConfig, MAX_THREADS};
pub use error::{Error, Result};
pub use inspect::{inspect, inspect_stream, ContainerInfo};
pub use output_file::OutputFile;
pub use pool::{CpuPool, Lane, PoolResult};
pub use sluice_format as format;
pub use source::ReadAt;
pub use target::Target;
