//! Bridges between the blocking engine and async I/O: the engine runs on a
//! blocking thread and writes into a [`ChannelWriter`], whose bytes a
//! response body streams out. The channel is bounded, so a slow client
//! slows the engine instead of filling memory.

use std::io::{self, Write};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::SendTimeoutError;

/// Chunks buffered between the engine and the client.
const DEPTH: usize = 4;
/// Bytes per chunk sent.
const CHUNK: usize = 256 << 10;

/// A blocking writer whose bytes come out of the paired receiver.
pub struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
    rt: tokio::runtime::Handle,
    idle: Duration,
}

/// A writer and the stream of its bytes. A client that takes nothing for
/// `idle` makes the writer fail (the engine then stops and frees its
/// buffers) instead of blocking it for ever.
pub fn channel(rt: tokio::runtime::Handle, idle: Duration) -> (ChannelWriter, mpsc::Receiver<io::Result<Bytes>>) {
    let (tx, rx) = mpsc::channel(DEPTH);
    (
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
            rt,
            idle,
        },
        rx,
    )
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        // Called on a blocking thread: waiting here does not hold a runtime worker.
        match self.rt.block_on(self.tx.send_timeout(Ok(chunk), self.idle)) {
            Ok(()) => Ok(()),
            Err(SendTimeoutError::Timeout(_)) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took nothing for the idle timeout",
            )),
            Err(SendTimeoutError::Closed(_)) => Err(io::Error::new(io::ErrorKind::BrokenPipe, "client went away")),
        }
    }

    /// Ends the stream with an error, so the client sees a broken transfer
    /// rather than a short, seemingly complete one. Never waits: a client
    /// that reads nothing more just sees its connection end.
    pub fn fail(self, err: io::Error) {
        let _ = self.tx.try_send(Err(err));
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

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

/// Ends a streamed response from the engine's thread: flushes, or cuts the
/// body off with the error (the client sees a broken body, never wrong
/// bytes).
pub fn finish_stream(result: sluice_engine::Result<()>, mut writer: ChannelWriter) {
    match result.and_then(|()| io::Write::flush(&mut writer).map_err(sluice_engine::Error::Write)) {
        Ok(()) => {}
        Err(e) => {
            tracing::warn!(error = %e, "content stream failed");
            writer.fail(io::Error::other(e.to_string()));
        }
    }
}

/// The receiving end of [`channel`] as a stream of chunks.
pub fn receiver_stream(
    mut rx: mpsc::Receiver<io::Result<Bytes>>,
) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
