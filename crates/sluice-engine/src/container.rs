//! Reading a container's framing from any [`Read`]: the header, exact reads
//! that name where a short input ended, and the footer check. Shared by the
//! streaming decoder, random access and [`crate::inspect`].

use std::io::Read;

use sluice_format::{
    header_len, parse_footer, Error as FormatError, Header, KeyRing, StreamContext, TruncatedAt, FOOTER_LEN, MAGIC,
    PREFIX_LEN,
};

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
