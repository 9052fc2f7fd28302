//! Key derivation: HKDF-SHA256 labels, the per-file key schedule, the
//! header MAC and key wrapping for slots. See `docs/FORMAT.md` §3.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// Length of every symmetric key and of the file id.
pub const KEY_LEN: usize = 32;
/// Length of the header MAC (HMAC-SHA256).
pub const MAC_LEN: usize = 32;

/// HKDF label for the payload (chunk sealing) key.
pub const LABEL_PAYLOAD: &[u8] = b"sluice v1 payload key";
/// HKDF label for the header MAC key.
pub const LABEL_HEADER: &[u8] = b"sluice v1 header key";
/// HKDF label for the key commitment value.
pub const LABEL_COMMITMENT: &[u8] = b"sluice v1 key commitment";
/// HKDF label for the key-encryption key of an X25519 slot.
pub const LABEL_X25519_SLOT: &[u8] = b"sluice v1 x25519 slot";
/// HKDF label for the key-encryption key of a raw key-file slot.
pub const LABEL_KEYFILE_SLOT: &[u8] = b"sluice v1 key file slot";

/// A 32-byte secret that is wiped from memory when dropped.
pub type SecretKey = Zeroizing<[u8; KEY_LEN]>;

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) -> Result<()> {
    aws_lc_rs::rand::fill(buf).map_err(|_| Error::Crypto("random number generator failed"))
}

/// A fresh random 32-byte secret.
pub fn random_key() -> Result<SecretKey> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    random_bytes(key.as_mut())?;
    Ok(key)
}

/// HKDF-SHA256 (RFC 5869) with `salt`, `ikm` and `info`, producing 32 bytes.
pub fn hkdf32(ikm: &[u8], salt: &[u8], info: &[u8]) -> SecretKey {
    let hk = Hkdf::<Sha256>::new(Some(salt), ikm);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    // 32 bytes is far below HKDF-SHA256's 255*32 output limit, so expand cannot fail.
    if hk.expand(info, out.as_mut()).is_err() {
        out.zeroize();
    }
    out
}

/// The keys derived from one file key and one file id.
pub struct KeySchedule {
    /// Key for sealing chunks and the index.
    pub payload: SecretKey,
    /// Key for the header MAC.
    pub header: SecretKey,
    /// Public value committing to the file key, stored in the header.
    pub commitment: [u8; KEY_LEN],
}

impl KeySchedule {
    /// Derives the schedule of a file from its file key and file id.
    pub fn derive(file_key: &[u8; KEY_LEN], file_id: &[u8; KEY_LEN]) -> Self {
        let commitment = *hkdf32(file_key, file_id, LABEL_COMMITMENT);
        KeySchedule {
            payload: hkdf32(file_key, file_id, LABEL_PAYLOAD),
            header: hkdf32(file_key, file_id, LABEL_HEADER),
            commitment,
        }
    }

    /// HMAC-SHA256 of `data` under the header key.
    pub fn header_mac(&self, data: &[u8]) -> [u8; MAC_LEN] {
        let mut mac = new_hmac(self.header.as_ref());
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Constant-time check of a header MAC.
    pub fn verify_header_mac(&self, data: &[u8], tag: &[u8]) -> bool {
        let mut mac = new_hmac(self.header.as_ref());
        mac.update(data);
        mac.verify_slice(tag).is_ok()
    }
}

fn new_hmac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length; the error branch is unreachable.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable_hmac(),
    }
}

#[cold]
fn unreachable_hmac() -> Hmac<Sha256> {
    // HMAC-SHA256 takes keys of any length; this cannot be reached.
    <Hmac<Sha256> as hmac::digest::KeyInit>::new(&Default::default())
}

/// Length of a wrapped file key: 32 bytes of key plus a 16-byte tag.
pub const WRAPPED_LEN: usize = KEY_LEN + 16;

/// Wraps `file_key` under `kek` with ChaCha20-Poly1305 and a zero nonce.
///
/// Every key-encryption key is used exactly once (it depends on a fresh salt
/// or ephemeral key), so the fixed nonce never repeats under one key.
pub fn wrap_key(kek: &[u8; KEY_LEN], aad: &[u8], file_key: &[u8; KEY_LEN]) -> Result<[u8; WRAPPED_LEN]> {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, kek).map_err(|_| Error::Crypto("bad key length"))?);
    let mut out = [0u8; WRAPPED_LEN];
    let (body, tag_out) = out.split_at_mut(KEY_LEN);
    body.copy_from_slice(file_key);
    let tag = key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key([0; 12]), Aad::from(aad), body)
        .map_err(|_| Error::Crypto("key wrap failed"))?;
    tag_out.copy_from_slice(tag.as_ref());
    Ok(out)
}

/// Unwraps a file key; `None` when the tag does not verify (wrong key).
pub fn unwrap_key(kek: &[u8; KEY_LEN], aad: &[u8], wrapped: &[u8]) -> Option<SecretKey> {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
    if wrapped.len() != WRAPPED_LEN {
        return None;
    }
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, kek).ok()?);
    let mut buf = Zeroizing::new([0u8; WRAPPED_LEN]);
    buf.copy_from_slice(wrapped);
    let plain = key
        .open_in_place(Nonce::assume_unique_for_key([0; 12]), Aad::from(aad), buf.as_mut())
        .ok()?;
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    if plain.len() != KEY_LEN {
        return None;
    }
    out.copy_from_slice(plain);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_round_trip_and_wrong_key() {
        let kek = [7u8; 32];
        let fk = [9u8; 32];
        let w = wrap_key(&kek, b"aad", &fk).unwrap();
        assert_eq!(*unwrap_key(&kek, b"aad", &w).unwrap(), fk);
        assert!(unwrap_key(&[8u8; 32], b"aad", &w).is_none());
        assert!(unwrap_key(&kek, b"other", &w).is_none());
    }

    #[test]
    fn schedule_labels_are_distinct() {
        let s = KeySchedule::derive(&[1; 32], &[2; 32]);
        assert_ne!(*s.payload, *s.header);
        assert_ne!(*s.payload, s.commitment);
        let t = KeySchedule::derive(&[1; 32], &[3; 32]);
        assert_ne!(*s.payload, *t.payload, "file id must change every key");
    }
}
