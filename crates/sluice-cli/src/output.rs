//! Atomic output files: data goes to a hidden temporary file beside the
//! target and is renamed into place only after everything was written and
//! authenticated. Errors drop (and so delete) the temporary file; a signal
//! handler deletes any that are registered before exiting.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use tempfile::NamedTempFile;

use crate::exit::usage;

/// Temporary files to delete if the process is interrupted.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Deletes every registered temporary file (called from the signal handler).
pub fn remove_pending() {
    if let Ok(list) = PENDING.lock() {
        for p in list.iter() {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn unregister(path: &Path) {
    if let Ok(mut list) = PENDING.lock() {
        list.retain(|p| p != path);
    }
}

/// Whether two paths name the same existing file.
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// A file being written; becomes `target` on [`AtomicFile::commit`].
pub struct AtomicFile {
    temp: Option<NamedTempFile>,
    writer: Option<BufWriter<File>>,
    target: PathBuf,
    force: bool,
}

impl AtomicFile {
    /// Checks the target can be written and creates the temporary file.
    pub fn create(target: &Path, input: Option<&Path>, force: bool) -> Result<Self> {
        if let Some(input) = input {
            if same_file(input, target) {
                return Err(usage(format!(
                    "{}: output is the same file as the input",
                    target.display()
                )));
            }
        }
        if target.is_dir() {
            return Err(usage(format!("{}: output is a directory", target.display())));
        }
        if !force && target.symlink_metadata().is_ok() {
            return Err(usage(format!(
                "{}: already exists (use --force to overwrite)",
                target.display()
            )));
        }
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".sluice-tmp")
            .tempfile_in(&dir)
            .with_context(|| format!("{}: cannot create a file in {}", target.display(), dir.display()))?;
        if let Ok(mut list) = PENDING.lock() {
            list.push(temp.path().to_path_buf());
        }
        let file = temp
            .reopen()
            .with_context(|| format!("{}: cannot open temporary file", target.display()))?;
        Ok(AtomicFile {
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
            temp: Some(temp),
            target: target.to_path_buf(),
            force,
        })
    }

    /// The underlying file, for positional writes (buffered bytes flushed first).
    pub fn file(&mut self) -> Result<&File> {
        let w = self.writer.as_mut().context("output already committed")?;
        w.flush()
            .with_context(|| format!("{}: write failed", self.target.display()))?;
        Ok(w.get_ref())
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(mut self) -> Result<()> {
        let target = self.target.clone();
        let writer = self.writer.take().context("output already committed")?;
        let file = writer
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("{}: write failed", target.display()))?;
        file.sync_all()
            .with_context(|| format!("{}: sync failed", target.display()))?;
        let temp = self.temp.take().context("output already committed")?;
        let temp_path = temp.path().to_path_buf();
        let result = if self.force {
            temp.persist(&target)
        } else {
            temp.persist_noclobber(&target)
        };
        unregister(&temp_path);
        result
            .map_err(|e| e.error)
            .with_context(|| format!("{}: cannot move the finished file into place", target.display()))?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.writer.as_mut() {
            Some(w) => w.write(buf),
            None => Err(std::io::Error::other("output already committed")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.writer.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some(t) = self.temp.as_ref() {
            unregister(t.path());
        }
        // NamedTempFile deletes itself when dropped uncommitted.
    }
}
