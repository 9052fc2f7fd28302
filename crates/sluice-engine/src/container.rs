//! Reading a container's framing from any [`Read`]: the header, exact reads
//! that name where a short input ended, and the footer check. Shared by the
//! streaming decoder, random access and [`crate::inspect`].

use std::io::Read;
use std::sync::mpsc;
use std::time::Duration;

use sluice_format::{
    header_len, parse_footer, suite::PayloadCipher, Error as FormatError, Header, KeyRing, Slot, StreamContext,
    TruncatedAt, FOOTER_LEN, MAGIC, PREFIX_LEN,
};

use crate::control::CancelToken;
use crate::error::{Error, Result};
use crate::io::read_full;

/// Reads and parses the header at the start of `input` (no key needed).
pub fn read_header<R: Read + ?Sized>(input: &mut R) -> Result<Header> {
    let mut prefix = [0u8; PREFIX_LEN];
    let n = read_full(input, &mut prefix).map_err(Error::Read)?;
    if n < PREFIX_LEN {
        // A short input that does not even start like a container is "not sluice".
        return Err(if n > 0 && prefix.get(..n) == MAGIC.get(..n) {
            FormatError::HeaderTruncated.into()
        } else {
            FormatError::NotSluice.into()
        });
    }
    let len = header_len(&prefix)?;
    let mut bytes = vec![0u8; len];
    let (head, rest) = bytes.split_at_mut(PREFIX_LEN);
    head.copy_from_slice(&prefix);
    if read_full(input, rest).map_err(Error::Read)? < rest.len() {
        return Err(FormatError::HeaderTruncated.into());
    }
    Ok(Header::parse(&bytes)?)
}

/// Reads and unlocks the header: the context for opening the payload.
///
/// Unlocking a passphrase slot runs Argon2 on the calling thread (async
/// callers: use `spawn_blocking`).
pub fn open_header<R: Read + ?Sized>(input: &mut R, keys: &KeyRing) -> Result<StreamContext> {
    let header = read_header(input)?;
    let cipher = header.unlock(keys)?;
    Ok(StreamContext::new(header, cipher))
}

/// Like [`open_header`], but a cancel also ends a passphrase slot's Argon2
/// wait: see [`unlock`].
pub(crate) fn open_header_cancellable<R: Read + ?Sized>(
    input: &mut R,
    keys: &KeyRing,
    cancel: &CancelToken,
) -> Result<StreamContext> {
    let header = read_header(input)?;
    let cipher = unlock(&header, keys, cancel)?;
    Ok(StreamContext::new(header, cipher))
}

/// How often a waiting unlock looks at its cancel token.
const KDF_POLL: Duration = Duration::from_millis(20);

/// Unlocks `header` with `keys`, returning [`Error::Cancelled`] as soon as
/// `cancel` is set, even while a passphrase slot's Argon2 runs (up to
/// seconds, by the file's cost). The Argon2 implementation cannot be
/// interrupted, so that work runs on a thread of its own: a cancel returns
/// at once and leaves the thread to finish its (bounded, see
/// `KdfLimits`) computation and drop the result. Without a passphrase slot
/// to try, unlocking is cheap and runs here.
pub(crate) fn unlock(header: &Header, keys: &KeyRing, cancel: &CancelToken) -> Result<PayloadCipher> {
    let argon2 = keys.passphrase.is_some() && header.slots.iter().any(|s| matches!(s, Slot::Passphrase { .. }));
    if cancel.is_cancelled() {
        return Err(Error::Cancelled);
    }
    if !argon2 {
        return Ok(header.unlock(keys)?);
    }
    let (tx, rx) = mpsc::sync_channel(1);
    let (h, k) = (header.clone(), keys.clone());
    let kdf = std::thread::Builder::new()
        .name("sluice-kdf".into())
        .spawn(move || {
            let _ = tx.send(h.unlock(&k));
        })
        .map_err(|e| Error::Internal(format!("cannot start the key derivation thread: {e}")))?;
    loop {
        match rx.recv_timeout(KDF_POLL) {
            Ok(result) => {
                // It has sent: joining only waits for it to exit.
                let _ = kdf.join();
                return Ok(result?);
            }
            Err(mpsc::RecvTimeoutError::Timeout) if cancel.is_cancelled() => return Err(Error::Cancelled),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Error::Internal("the key derivation thread stopped".into()))
            }
        }
    }
}

/// Fills `buf` completely; an input that ends first is truncated `at`.
pub(crate) fn read_exact_or<R: Read + ?Sized>(input: &mut R, buf: &mut [u8], at: TruncatedAt) -> Result<()> {
    if read_full(input, buf).map_err(Error::Read)? < buf.len() {
        return Err(FormatError::Truncated(at).into());
    }
    Ok(())
}

/// Reads the footer and checks it points at `index_offset`, where the index
/// was really found.
pub(crate) fn expect_footer<R: Read + ?Sized>(input: &mut R, index_offset: u64) -> Result<()> {
    let mut foot = [0u8; FOOTER_LEN];
    read_exact_or(input, &mut foot, TruncatedAt::InsideFooter)?;
    if parse_footer(&foot)? != index_offset {
        return Err(FormatError::invalid_footer_offset().into());
    }
    Ok(())
}
