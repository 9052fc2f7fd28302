//! A per-thread cache of codec contexts for the CPU workers: each pool
//! thread keeps one compressor and one decompressor for its whole life,
//! rebuilt only when an operation asks for different settings, so no chunk
//! pays for context set-up.

use std::cell::RefCell;

use sluice_format::{ChunkSize, Compression, Compressor, Decompressor};

use crate::error::Result;

thread_local! {
    static COMPRESSOR: RefCell<Option<(Settings, Compressor)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Decompressor> = RefCell::new(Decompressor::new());
}

/// What a compressor context is built for.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Settings {
    compression: Compression,
    chunk_size: ChunkSize,
    probe: bool,
}

/// Runs `f` with this thread's compressor for `compression` on chunks of
/// `chunk_size`.
pub(crate) fn with_compressor<T>(
    compression: Compression,
    chunk_size: ChunkSize,
    probe: bool,
    f: impl FnOnce(&mut Compressor) -> Result<T>,
) -> Result<T> {
    let want = Settings {
        compression,
        chunk_size,
        probe,
    };
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let reusable = matches!(&*slot, Some((have, _)) if *have == want);
        if !reusable {
            *slot = Some((want, Compressor::new(compression, chunk_size, probe)?));
        }
        match slot.as_mut() {
            Some((_, comp)) => f(comp),
            None => Err(crate::Error::Internal("compressor missing".into())),
        }
    })
}

/// Runs `f` with this thread's decompressor.
pub(crate) fn with_decompressor<T>(f: impl FnOnce(&mut Decompressor) -> T) -> T {
    DECOMPRESSOR.with(|cell| f(&mut cell.borrow_mut()))
}
