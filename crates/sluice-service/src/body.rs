//! Request bodies as the service sees them: a stream of byte chunks from
//! whichever face received them. [`BodyReader`] reads one with the rules
//! every upload has: a body that sends nothing for the idle timeout, goes
//! past its limit or breaks off ends in the matching [`JobError`].

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::jobs::JobError;
use crate::tenants::limits::BodyLimit;

/// An upload's body: chunks as they arrive; an `Err` means it broke off.
pub type Body = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Bytes streamed back to a client (content, containers): an `Err` cuts
/// the transfer off, so the client sees a broken body, never a short one
/// that looks whole.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A body read chunk by chunk under its limits.
pub struct BodyReader<'a> {
    body: Body,
    idle: Duration,
    limit: &'a BodyLimit,
    /// Bytes read so far.
    pub received: u64,
}

impl<'a> BodyReader<'a> {
    /// Reads `body`, cut after `idle` without bytes or past `limit`.
    pub fn new(body: Body, idle: Duration, limit: &'a BodyLimit) -> Self {
        BodyReader {
            body,
            idle,
            limit,
            received: 0,
        }
    }

    /// The chunks as a stream (ends after the first error).
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, JobError>> + Send + 'a {
        futures_util::stream::unfold(Some(self), |reader| async move {
            let mut r = reader?;
            match r.next().await {
                Ok(Some(data)) => Some((Ok(data), Some(r))),
                Ok(None) => None,
                Err(e) => Some((Err(e), None)),
            }
        })
    }

    /// The body's unread rest.
    pub fn into_body(self) -> Body {
        self.body
    }

    /// The next non-empty chunk, or `None` at the end.
    pub async fn next(&mut self) -> Result<Option<Bytes>, JobError> {
        loop {
            let frame = tokio::time::timeout(self.idle, self.body.next()).await.map_err(|_| {
                metrics::counter!("sluice_transfers_cut_total", "reason" => "idle_timeout", "direction" => "upload")
                    .increment(1);
                idle_timeout(self.idle)
            })?;
            let Some(frame) = frame else { return Ok(None) };
            let data = frame.map_err(|e| JobError::Interrupted(format!("the upload was interrupted: {e}")))?;
            self.received += data.len() as u64;
            if self.received > self.limit.bytes {
                return Err(self.limit.exceeded());
            }
            if !data.is_empty() {
                return Ok(Some(data));
            }
        }
    }
}

/// The failure of an upload that sent nothing for `idle`.
pub fn idle_timeout(idle: Duration) -> JobError {
    JobError::IdleTimeout(format!("the upload sent nothing for {} s", idle.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(chunks: Vec<std::io::Result<&'static [u8]>>) -> Body {
        Box::pin(futures_util::stream::iter(
            chunks.into_iter().map(|c| c.map(Bytes::from_static)),
        ))
    }

    #[tokio::test]
    async fn bodies_end_in_the_failure_their_rule_names() {
        let limit = BodyLimit::bytes(5);
        let mut r = BodyReader::new(
            body(vec![Ok(b"ab"), Ok(b""), Ok(b"cd")]),
            Duration::from_secs(1),
            &limit,
        );
        assert_eq!(r.next().await.unwrap().unwrap(), &b"ab"[..]);
        assert_eq!(r.next().await.unwrap().unwrap(), &b"cd"[..], "empty chunks are skipped");
        assert_eq!(r.next().await.unwrap(), None);
        assert_eq!(r.received, 4);
        let mut r = BodyReader::new(body(vec![Ok(b"abcdef")]), Duration::from_secs(1), &limit);
        assert_eq!(r.next().await.unwrap_err().code(), "upload_too_large");
        let broken = body(vec![Err(std::io::Error::other("reset"))]);
        let mut r = BodyReader::new(broken, Duration::from_secs(1), &limit);
        assert_eq!(r.next().await.unwrap_err().code(), "interrupted");
        let silent: Body = Box::pin(futures_util::stream::pending());
        let mut r = BodyReader::new(silent, Duration::from_millis(20), &limit);
        assert_eq!(r.next().await.unwrap_err().code(), "idle_timeout");
    }
}
