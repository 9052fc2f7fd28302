//! Key derivation: HKDF-SHA256 labels, the per-file key schedule with its
//! header MAC and key commitment, and Argon2id for passphrases.
//! See `docs/FORMAT.md` §3 and §4.

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};
use crate::keys::Passphrase;

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

    /// Constant-time comparison of this schedule's commitment with a stored one.
    pub fn commits_to(&self, stored: &[u8; KEY_LEN]) -> bool {
        bool::from(self.commitment.ct_eq(stored))
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
    <Hmac<Sha256> as hmac::digest::KeyInit>::new(&Default::default())
}

/// Argon2id cost parameters of a passphrase slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Number of passes.
    pub passes: u32,
    /// Degree of parallelism (lanes).
    pub lanes: u32,
}

impl Default for KdfParams {
    /// RFC 9106's second recommended setting: 64 MiB, t=3, p=4.
    fn default() -> Self {
        KdfParams {
            memory_kib: 64 * 1024,
            passes: 3,
            lanes: 4,
        }
    }
}

impl KdfParams {
    /// Checks the parameters are acceptable to Argon2: at least one pass,
    /// 1 to 2^24 − 1 lanes, and at least 8 KiB of memory per lane.
    pub fn validate(&self) -> Result<()> {
        self.to_argon2().map(drop)
    }

    fn to_argon2(self) -> Result<argon2::Params> {
        argon2::Params::new(self.memory_kib, self.passes, self.lanes, Some(KEY_LEN))
            .map_err(|e| Error::InvalidParams(format!("argon2 parameters: {e}")))
    }
}

/// Caps on the Argon2 work a file may ask of the reader.
///
/// A hostile file could otherwise ask for terabytes of memory or hours of CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfLimits {
    /// Largest memory cost accepted, in KiB (default 1 GiB).
    pub max_memory_kib: u32,
    /// Largest number of passes accepted (default 16).
    pub max_passes: u32,
    /// Largest number of lanes accepted (default 16).
    pub max_lanes: u32,
}

impl Default for KdfLimits {
    fn default() -> Self {
        KdfLimits {
            max_memory_kib: 1024 * 1024,
            max_passes: 16,
            max_lanes: 16,
        }
    }
}

/// Which Argon2 cost a file asked for beyond the reader's cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KdfCost {
    /// Memory, in KiB.
    MemoryKib,
    /// Passes (time cost).
    Passes,
    /// Lanes (parallelism).
    Lanes,
}

impl std::fmt::Display for KdfCost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KdfCost::MemoryKib => "memory (KiB)",
            KdfCost::Passes => "passes",
            KdfCost::Lanes => "lanes",
        })
    }
}

impl KdfLimits {
    /// The first cost of `params` above these caps, with its value and cap.
    pub fn exceeded_by(&self, params: &KdfParams) -> Option<(KdfCost, u32, u32)> {
        [
            (KdfCost::MemoryKib, params.memory_kib, self.max_memory_kib),
            (KdfCost::Passes, params.passes, self.max_passes),
            (KdfCost::Lanes, params.lanes, self.max_lanes),
        ]
        .into_iter()
        .find(|&(_, value, cap)| value > cap)
    }
}

/// Runs Argon2id (version 0x13, no secret, no associated data) over a
/// passphrase; the result is a 32-byte key-encryption key.
pub fn argon2id(passphrase: &Passphrase, salt: &[u8], params: KdfParams) -> Result<SecretKey> {
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params.to_argon2()?);
    let mut out = Zeroizing::new([0u8; KEY_LEN]);
    a.hash_password_into(passphrase.expose(), salt, out.as_mut())
        .map_err(|e| Error::InvalidParams(format!("argon2: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_labels_are_distinct() {
        let s = KeySchedule::derive(&[1; 32], &[2; 32]);
        assert_ne!(*s.payload, *s.header);
        assert_ne!(*s.payload, s.commitment);
        let t = KeySchedule::derive(&[1; 32], &[3; 32]);
        assert_ne!(*s.payload, *t.payload, "file id must change every key");
        assert!(s.commits_to(&s.commitment));
        assert!(!s.commits_to(&t.commitment));
    }

    #[test]
    fn header_mac_verifies_only_its_own_data_and_key() {
        let s = KeySchedule::derive(&[1; 32], &[2; 32]);
        let mac = s.header_mac(b"header bytes");
        assert!(s.verify_header_mac(b"header bytes", &mac));
        assert!(!s.verify_header_mac(b"header bytez", &mac));
        let other = KeySchedule::derive(&[9; 32], &[2; 32]);
        assert!(!other.verify_header_mac(b"header bytes", &mac));
    }

    #[test]
    fn argon2_lower_bounds_are_rejected() {
        let ok = KdfParams {
            memory_kib: 8,
            passes: 1,
            lanes: 1,
        };
        ok.validate().unwrap();
        for bad in [
            KdfParams { passes: 0, ..ok },
            KdfParams { lanes: 0, ..ok },
            KdfParams {
                memory_kib: 15,
                lanes: 2,
                ..ok
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn each_cap_is_checked() {
        let caps = KdfLimits {
            max_memory_kib: 100,
            max_passes: 3,
            max_lanes: 2,
        };
        let at = KdfParams {
            memory_kib: 100,
            passes: 3,
            lanes: 2,
        };
        assert_eq!(caps.exceeded_by(&at), None, "a cost equal to its cap is allowed");
        assert_eq!(
            caps.exceeded_by(&KdfParams { memory_kib: 101, ..at }),
            Some((KdfCost::MemoryKib, 101, 100))
        );
        assert_eq!(
            caps.exceeded_by(&KdfParams { passes: 4, ..at }),
            Some((KdfCost::Passes, 4, 3))
        );
        assert_eq!(
            caps.exceeded_by(&KdfParams { lanes: 3, ..at }),
            Some((KdfCost::Lanes, 3, 2))
        );
    }
}
