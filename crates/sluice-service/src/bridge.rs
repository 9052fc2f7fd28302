//! The bridge from an async upload body to the blocking engine: the engine
//! runs on a blocking thread and reads a [`ChannelReader`] that the body
//! feeds. The channel is bounded, so a fast client cannot fill memory.

use std::io;

use bytes::Bytes;
use tokio::sync::mpsc;

/// Pieces buffered between the body and the engine.
const DEPTH: usize = 4;
/// What the async side sends a [`ChannelReader`].
pub enum Msg {
    /// More bytes.
    Data(Bytes),
    /// The input is complete.
    End,
    /// The input broke (the engine must fail, not store a short object).
    Fail(String),
}

/// A blocking reader fed by an async task through a bounded channel: the
/// engine reads an upload while it streams in. A channel that closes without
/// [`Msg::End`] is an error, so an abandoned upload never looks complete.
pub struct ChannelReader {
    rx: mpsc::Receiver<Msg>,
    current: Bytes,
    ended: bool,
}

/// A sender and the reader of what it sends.
pub fn reader_channel() -> (mpsc::Sender<Msg>, ChannelReader) {
    let (tx, rx) = mpsc::channel(DEPTH);
    (
        tx,
        ChannelReader {
            rx,
            current: Bytes::new(),
            ended: false,
        },
    )
}

impl io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Msg::Data(b)) => self.current = b,
                Some(Msg::End) => self.ended = true,
                Some(Msg::Fail(why)) => return Err(io::Error::other(why)),
                None => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "upload abandoned")),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
