//! A per-thread cache of codec contexts for the CPU workers: each pool
//! thread keeps one compressor and one decompressor for its whole life,
//! rebuilt only when an operation asks for different settings, so no chunk
//! pays for context set-up.

use std::cell::RefCell;

use sluice_format::{Compression, Compressor, Decompressor};

use crate::error::Result;

thread_local! {
    static COMPRESSOR: RefCell<Option<(Compression, bool, Compressor)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Decompressor> = RefCell::new(Decompressor::new());
}

/// Runs `f` with this thread's compressor for `compression`.
pub(crate) fn with_compressor<T>(
    compression: Compression,
    probe: bool,
    f: impl FnOnce(&mut Compressor) -> Result<T>,
) -> Result<T> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let reusable = matches!(&*slot, Some((c, p, _)) if *c == compression && *p == probe);
        if !reusable {
            *slot = Some((compression, probe, Compressor::new(compression, probe)?));
        }
        match slot.as_mut() {
            Some((_, _, comp)) => f(comp),
            None => Err(crate::Error::Internal("compressor missing".into())),
        }
    })
}

/// Runs `f` with this thread's decompressor.
pub(crate) fn with_decompressor<T>(f: impl FnOnce(&mut Decompressor) -> T) -> T {
    DECOMPRESSOR.with(|cell| f(&mut cell.borrow_mut()))
}
