//! [`Target`]: where restored plaintext goes, one type for every restore
//! path (whole container or byte range, stream or file).
//!
//! A stream is written in order by the pipeline's ordered writer. A file is
//! written at each chunk's offset by the worker that decoded it, so the
//! kernel's copy into the page cache is spread over the workers instead of
//! funnelled through one thread; the writer then only reports finished
//! prefixes to [`OutputFile::finished`] (write-back) and fixes the length.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use crate::control::Progress;
use crate::error::{Error, Result};
use crate::output_file::OutputFile;

/// Where an operation writes the plaintext it restores.
///
/// Whatever the target, plaintext is written only after its chunk
/// authenticated; but the whole is final only when the operation returns
/// `Ok` (truncation and the whole-file digest are checked at the end), so a
/// file target should be a temporary file kept only then.
pub enum Target<'a> {
    /// In order, through a writer (a pipe, a socket, a channel, memory).
    Stream(&'a mut dyn Write),
    /// At its offset in a regular file, by the worker that decoded it;
    /// the file holds exactly the restored bytes when the operation ends.
    File(&'a mut OutputFile),
}

impl<'a> Target<'a> {
    /// Splits the target into the ordered writer's half and, for a file, a
    /// handle the workers write through.
    pub(crate) fn split(self) -> Result<(InOrder<'a>, Option<Placer>)> {
        Ok(match self {
            Target::Stream(w) => (InOrder::Stream(w), None),
            Target::File(out) => {
                let file = Arc::new(out.file().try_clone().map_err(Error::Write)?);
                (InOrder::File(out), Some(Placer { file }))
            }
        })
    }
}

/// The workers' half of a file target: positional writes.
#[derive(Clone)]
pub(crate) struct Placer {
    file: Arc<File>,
}

impl Placer {
    /// Writes `bytes` at `offset` of the output.
    pub(crate) fn write_at(&self, bytes: &[u8], offset: u64, progress: &Progress) -> Result<()> {
        self.file.write_all_at(bytes, offset).map_err(Error::Write)?;
        progress.add_out(bytes.len() as u64);
        Ok(())
    }
}

/// The ordered writer's half of a target.
pub(crate) enum InOrder<'a> {
    Stream(&'a mut dyn Write),
    File(&'a mut OutputFile),
}

impl InOrder<'_> {
    /// The next chunk in order is done: `bytes` are its output, and the
    /// output's bytes `0..end` are now all written.
    pub(crate) fn chunk(&mut self, bytes: &[u8], end: u64, progress: &Progress) -> Result<()> {
        match self {
            InOrder::Stream(w) => {
                w.write_all(bytes).map_err(Error::Write)?;
                progress.add_out(bytes.len() as u64);
            }
            // The worker already wrote it (before handing the chunk on).
            InOrder::File(out) => out.finished(end),
        }
        Ok(())
    }

    /// All chunks are done and the output is `len` bytes long.
    pub(crate) fn finish(self, len: u64) -> Result<()> {
        match self {
            InOrder::Stream(w) => w.flush().map_err(Error::Write),
            InOrder::File(out) => out.file().set_len(len).map_err(Error::Write),
        }
    }
}
