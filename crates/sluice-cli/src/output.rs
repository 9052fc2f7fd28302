//! Atomic output files: data goes to a hidden temporary file beside the
//! target and is renamed into place only after everything was written and
//! authenticated. Errors drop (and so delete) the temporary file; a signal
//! handler deletes any that are registered before exiting.
//!
//! The data's write-back starts while it is being written ([`OutputFile`])
//! in both modes: durable mode (`--sync`) then flushes what is left before
//! the rename and the directory after it. Without a sync the early
//! write-back still pays: ext4 flushes a file renamed over an existing one
//! (or truncated and rewritten, as `zstd -f` does) at that moment, and the
//! page-cache pages it drops are not evicted later at someone else's cost
//! (docs/PERFORMANCE.md has the measurement).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use anyhow::{Context, Result};
use sluice_engine::OutputFile;
use tempfile::NamedTempFile;

use crate::exit::usage;

/// Temporary files to delete if the process is interrupted. Its lock also
/// makes the signal handler and the final rename mutually exclusive.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Set (under the `PENDING` lock) once an output was renamed into place.
static COMMITTED: AtomicBool = AtomicBool::new(false);

/// Called from the signal handler: deletes every registered temporary file
/// and returns `true` when the process should exit as interrupted; `false`
/// when the output is already in place, complete, so the command should be
/// left to finish with success. While this holds the lock no rename can
/// happen; the caller exits before releasing it.
pub fn interrupt() -> bool {
    let list = PENDING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if COMMITTED.load(Ordering::SeqCst) && list.is_empty() {
        return false;
    }
    for p in list.iter() {
        let _ = std::fs::remove_file(p);
    }
    // Exit with the lock held, so a commit cannot slip in after the check.
    std::mem::forget(list);
    true
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
    writer: Option<BufWriter<OutputFile>>,
    target: PathBuf,
    force: bool,
    sync: bool,
}

impl AtomicFile {
    /// Checks the target can be written and creates the temporary file.
    /// With `sync`, [`AtomicFile::commit`] makes the output durable.
    pub fn create(target: &Path, input: Option<&Path>, force: bool, sync: bool) -> Result<Self> {
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
        // A device, FIFO or socket would be replaced by the rename (a
        // `--force` onto /dev/null would make it a regular file).
        if let Ok(meta) = std::fs::metadata(target) {
            if !meta.is_file() {
                return Err(usage(format!(
                    "{}: not a regular file; write to standard output instead (-o -, then redirect it)",
                    target.display()
                )));
            }
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
            writer: Some(BufWriter::with_capacity(1 << 20, OutputFile::new(file, true))),
            temp: Some(temp),
            target: target.to_path_buf(),
            force,
            sync,
        })
    }

    /// The underlying file, for positional writes (buffered bytes flushed first).
    pub fn file(&mut self) -> Result<&mut OutputFile> {
        let w = self.writer.as_mut().context("output already committed")?;
        w.flush()
            .with_context(|| format!("{}: write failed", self.target.display()))?;
        Ok(w.get_mut())
    }

    /// Flushes (and in durable mode syncs) the file and renames it into
    /// place; in durable mode, syncs the directory after the rename too, so
    /// the new name survives a crash.
    pub fn commit(mut self) -> Result<()> {
        let target = self.target.clone();
        let writer = self.writer.take().context("output already committed")?;
        let mut file = writer
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("{}: write failed", target.display()))?;
        if self.sync {
            file.sync()
                .with_context(|| format!("{}: sync failed", target.display()))?;
        }
        drop(file);
        let temp = self.temp.take().context("output already committed")?;
        let temp_path = temp.path().to_path_buf();
        {
            // The signal handler cannot run its check between the rename and
            // the bookkeeping: either it deletes the temporary file first (and
            // exits, lock held) or it sees the output committed.
            let mut list = PENDING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let result = if self.force {
                temp.persist(&target)
            } else {
                temp.persist_noclobber(&target)
            };
            list.retain(|p| p != &temp_path);
            let _file = result
                .map_err(|e| e.error)
                .with_context(|| format!("{}: cannot move the finished file into place", target.display()))?;
            COMMITTED.store(true, Ordering::SeqCst);
        }
        if self.sync {
            sync_dir(&target).with_context(|| format!("{}: cannot sync its directory", target.display()))?;
        }
        Ok(())
    }
}

/// Makes a rename in `path`'s directory durable.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
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
