//! Small I/O helpers shared by the readers.

use std::io::{self, Read, Write};

/// Reads until `buf` is full or the input ends; returns the bytes read.
/// Unlike `read_exact`, a short read at end of input is not an error.
pub(crate) fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let Some(rest) = buf.get_mut(filled..) else {
            break;
        };
        match r.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A writer that counts bytes into a progress counter.
pub(crate) struct Counting<'a, W> {
    pub(crate) inner: W,
    pub(crate) progress: &'a crate::Progress,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.add_out(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
