//! Cipher suites: how one chunk (or the index) is sealed and opened.
//!
//! Every suite appends a 16-byte tag to the body. The AEAD suites use
//! aws-lc-rs; the unencrypted suite uses a keyed BLAKE3 checksum whose key is
//! derived from public values, so it detects accidents, not attackers.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, CHACHA20_POLY1305};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::kdf::KEY_LEN;

/// Length of the tag appended to every sealed body.
pub const TAG_LEN: usize = 16;
/// Length of a STREAM nonce.
pub const NONCE_LEN: usize = 12;

/// The cipher suite of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Suite {
    /// No encryption: BLAKE3 checksums only (integrity against accidents, no secrecy).
    None,
    /// AES-256-GCM (the default).
    #[default]
    Aes256Gcm,
    /// ChaCha20-Poly1305.
    ChaCha20Poly1305,
}

impl Suite {
    /// The id stored in the header.
    pub fn id(self) -> u8 {
        match self {
            Suite::None => 0,
            Suite::Aes256Gcm => 1,
            Suite::ChaCha20Poly1305 => 2,
        }
    }

    /// The suite for a header id.
    pub fn from_id(id: u8) -> Result<Self> {
        match id {
            0 => Ok(Suite::None),
            1 => Ok(Suite::Aes256Gcm),
            2 => Ok(Suite::ChaCha20Poly1305),
            other => Err(Error::UnknownSuite(other)),
        }
    }

    /// The suite's name, as written in settings and reports.
    pub fn name(self) -> &'static str {
        match self {
            Suite::None => "none",
            Suite::Aes256Gcm => "aes256gcm",
            Suite::ChaCha20Poly1305 => "chacha20poly1305",
        }
    }

    /// Parses a suite name (`aes256gcm`, `chacha20poly1305`, `none`; case,
    /// `-` and `_` are ignored, and `aes` / `chacha` are accepted).
    pub fn from_name(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "none" => Ok(Suite::None),
            "aes256gcm" | "aes" => Ok(Suite::Aes256Gcm),
            "chacha20poly1305" | "chacha" => Ok(Suite::ChaCha20Poly1305),
            _ => Err(Error::InvalidParams(format!(
                "unknown cipher {name:?} (expected aes256gcm, chacha20poly1305 or none)"
            ))),
        }
    }

    /// True for suites that encrypt.
    pub fn is_encrypted(self) -> bool {
        self != Suite::None
    }
}

/// The STREAM nonce of element `index`: 3 zero bytes, the index as u64
/// big-endian, then 1 for the last element and 0 otherwise.
pub fn stream_nonce(index: u64, last: bool) -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    n[3..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// A payload key bound to a suite, ready to seal and open elements.
pub struct PayloadCipher {
    inner: CipherImpl,
}

impl std::fmt::Debug for PayloadCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PayloadCipher(<redacted>)")
    }
}

enum CipherImpl {
    Checksum(Box<blake3::Hasher>),
    Aead(LessSafeKey),
}

impl PayloadCipher {
    /// Builds the cipher for `suite` from a derived payload key.
    pub fn new(suite: Suite, key: &[u8; KEY_LEN]) -> Result<Self> {
        let inner = match suite {
            Suite::None => CipherImpl::Checksum(Box::new(blake3::Hasher::new_keyed(key))),
            Suite::Aes256Gcm => CipherImpl::Aead(LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, key).map_err(|_| Error::Crypto("bad key length"))?,
            )),
            Suite::ChaCha20Poly1305 => CipherImpl::Aead(LessSafeKey::new(
                UnboundKey::new(&CHACHA20_POLY1305, key).map_err(|_| Error::Crypto("bad key length"))?,
            )),
        };
        Ok(PayloadCipher { inner })
    }

    /// Seals `body` in place and returns the tag to append.
    pub fn seal(&self, nonce: [u8; NONCE_LEN], aad: &[u8], body: &mut [u8]) -> Result<[u8; TAG_LEN]> {
        match &self.inner {
            CipherImpl::Checksum(keyed) => Ok(checksum_tag(keyed, &nonce, aad, body)),
            CipherImpl::Aead(key) => {
                let tag = key
                    .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), body)
                    .map_err(|_| Error::Crypto("seal failed"))?;
                let mut out = [0u8; TAG_LEN];
                out.copy_from_slice(tag.as_ref());
                Ok(out)
            }
        }
    }

    /// Opens `sealed` (body followed by the tag) in place; returns the plaintext
    /// length, or `false` wrapped as `None` when authentication fails.
    pub fn open(&self, nonce: [u8; NONCE_LEN], aad: &[u8], sealed: &mut [u8]) -> Option<usize> {
        let body_len = sealed.len().checked_sub(TAG_LEN)?;
        match &self.inner {
            CipherImpl::Checksum(keyed) => {
                let (body, tag) = sealed.split_at(body_len);
                let expect = checksum_tag(keyed, &nonce, aad, body);
                bool::from(expect.ct_eq(tag)).then_some(body_len)
            }
            CipherImpl::Aead(key) => key
                .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), sealed)
                .ok()
                .map(|p| p.len()),
        }
    }
}

fn checksum_tag(keyed: &blake3::Hasher, nonce: &[u8], aad: &[u8], body: &[u8]) -> [u8; TAG_LEN] {
    let mut h = keyed.clone();
    h.update(nonce);
    h.update(aad);
    h.update(body);
    let mut out = [0u8; TAG_LEN];
    h.finalize_xof().fill(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_suite_round_trips_and_rejects_changes() {
        for suite in [Suite::None, Suite::Aes256Gcm, Suite::ChaCha20Poly1305] {
            let c = PayloadCipher::new(suite, &[5; 32]).unwrap();
            let mut buf = b"hello world".to_vec();
            let tag = c.seal(stream_nonce(3, false), b"ad", &mut buf).unwrap();
            buf.extend_from_slice(&tag);
            let mut copy = buf.clone();
            assert_eq!(c.open(stream_nonce(3, false), b"ad", &mut copy), Some(11));
            assert_eq!(&copy[..11], b"hello world");
            for (nonce, ad) in [
                (stream_nonce(4, false), &b"ad"[..]),
                (stream_nonce(3, true), b"ad"),
                (stream_nonce(3, false), b"xx"),
            ] {
                let mut copy = buf.clone();
                assert_eq!(c.open(nonce, ad, &mut copy), None, "{suite:?}");
            }
            let mut flipped = buf.clone();
            flipped[0] ^= 1;
            assert_eq!(c.open(stream_nonce(3, false), b"ad", &mut flipped), None);
        }
    }

    #[test]
    fn nonce_layout() {
        let n = stream_nonce(0x0102_0304_0506_0708, true);
        assert_eq!(n, [0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1]);
    }
}
