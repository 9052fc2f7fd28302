//! [`OutputFile`]: a file being written whose finished prefix is handed to
//! the kernel's write-back while the work goes on, so that making it durable
//! at the end ([`OutputFile::sync`]) has little left to do.
//!
//! Without this, every byte sits dirty in the page cache until the final
//! `fsync`, which then waits for the whole file at disk speed after all
//! the CPU work is over: on a 512 MiB output that is about a second paid
//! serially. With it, the disk writes while the cores compress, and the
//! final sync waits only for the last few MiB.
//!
//! On Linux the hint is `posix_fadvise(POSIX_FADV_DONTNEED)` on the finished
//! range: the kernel starts asynchronous write-back of its dirty pages and
//! drops the ones already clean, so a large output also does not push
//! everything else out of the page cache. (`sync_file_range` would start
//! write-back without the drop, but no maintained safe wrapper exposes it.)
//! Elsewhere the hint is skipped and the final sync does all the work.

use std::fs::File;
use std::io::{self, Write};

/// Write-back is started each time this many more bytes are finished.
const WRITE_BACK_STEP: u64 = 8 << 20;

/// A file written front to back, or chunk by chunk at known offsets, that
/// may be made durable at the end.
#[derive(Debug)]
pub struct OutputFile {
    file: File,
    write_back: bool,
    /// Where the next sequential [`Write::write`] goes.
    position: u64,
    /// End of the range already handed to write-back.
    started: u64,
    /// Start of the range handed over last time: dropped from the cache
    /// (if written by then) on the next step.
    previous: u64,
}

impl OutputFile {
    /// Wraps `file`, positioned at its start. With `write_back`, finished
    /// ranges are handed to the kernel's write-back as they grow and dropped
    /// from the page cache once written: right for large outputs whether or
    /// not they will be synced (the disk works while the cores do), wrong
    /// only for a file that is read back at once.
    pub fn new(file: File, write_back: bool) -> Self {
        OutputFile {
            file,
            write_back,
            position: 0,
            started: 0,
            previous: 0,
        }
    }

    /// The file, for positional writes; report finished prefixes with
    /// [`OutputFile::finished`].
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Declares bytes `0..end` written and final: write-back of what was
    /// not yet handed over starts once a step's worth has gathered.
    pub fn finished(&mut self, end: u64) {
        if !self.write_back || end < self.started.saturating_add(WRITE_BACK_STEP) {
            return;
        }
        // Covering the previous step too drops its pages, now written back.
        start_write_back(&self.file, self.previous, end);
        self.previous = self.started;
        self.started = end;
    }

    /// Flushes the file's data (and the metadata needed to read it back)
    /// to stable storage: `fdatasync`.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Gives back the file.
    pub fn into_file(self) -> File {
        self.file
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.position = self.position.saturating_add(n as u64);
        self.finished(self.position);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn start_write_back(file: &File, start: u64, end: u64) {
    use rustix::fs::{fadvise, Advice};
    // Only a hint: if the kernel refuses it, the final sync does the work.
    let _ = fadvise(
        file,
        start,
        std::num::NonZeroU64::new(end.saturating_sub(start)),
        Advice::DontNeed,
    );
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn start_write_back(_file: &File, _start: u64, _end: u64) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_writes_track_the_position_and_hand_over_steps() {
        let dir = std::env::temp_dir().join(format!("sluice-output-file-{}", std::process::id()));
        let mut out = OutputFile::new(tempfile_in(&dir), true);
        let block = vec![7u8; 3 << 20];
        for _ in 0..6 {
            out.write_all(&block).unwrap();
        }
        assert_eq!(out.position, 18 << 20);
        // Handed over at 9 MiB (first step reached) and 18 MiB (the next).
        assert_eq!(out.started, 18 << 20);
        assert_eq!(out.previous, 9 << 20);
        out.sync().unwrap();
        assert_eq!(out.into_file().metadata().unwrap().len(), 18 << 20);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn without_write_back_nothing_is_handed_over() {
        let dir = std::env::temp_dir().join(format!("sluice-output-file-off-{}", std::process::id()));
        let mut out = OutputFile::new(tempfile_in(&dir), false);
        out.write_all(&vec![1u8; 9 << 20]).unwrap();
        out.finished(64 << 20);
        assert_eq!((out.started, out.previous), (0, 0));
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_in(dir: &std::path::Path) -> File {
        std::fs::create_dir_all(dir).unwrap();
        File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.join("out"))
            .unwrap()
    }
}
