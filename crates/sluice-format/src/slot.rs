//! Key slots: the file key wrapped once per passphrase, X25519 recipient or
//! key file. Sealing, parsing and opening live here. See `docs/FORMAT.md` §4.
//!
//! Opening checks the key commitment of every candidate file key *inside*
//! slot opening: a slot that unwraps to a key the header does not commit to
//! counts as not opened. ChaCha20-Poly1305 is not key-committing, so a
//! crafted slot can unwrap under several passphrases; without this rule a
//! reader that told "opened, but wrong key" apart from "did not open" would
//! let an attacker test many guesses per attempt (a partitioning oracle).
//! Every failure to unlock is therefore one error, [`Error::NoMatchingKey`].

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use zeroize::Zeroizing;

use crate::bytes::Cursor;
use crate::error::{Error, KeyKind, Region, Result};
use crate::kdf::{
    argon2id, hkdf32, random_bytes, KdfParams, KeySchedule, SecretKey, KEY_LEN, LABEL_KEYFILE_SLOT, LABEL_X25519_SLOT,
};
use crate::keys::{Identity, KeyRing, SlotSpec};
use crate::suite::Suite;

/// Slot kind byte of a passphrase slot.
pub const SLOT_PASSPHRASE: u8 = 1;
/// Slot kind byte of an X25519 slot.
pub const SLOT_X25519: u8 = 2;
/// Slot kind byte of a raw key-file slot.
pub const SLOT_RAW_KEY: u8 = 3;
/// Length of a wrapped file key: 32 bytes of key plus a 16-byte tag.
pub const WRAPPED_LEN: usize = KEY_LEN + 16;
/// Body length of a passphrase slot.
pub const PASSPHRASE_SLOT_LEN: usize = 12 + 16 + WRAPPED_LEN;
/// Body length of an X25519 slot.
pub const X25519_SLOT_LEN: usize = KEY_LEN + WRAPPED_LEN;
/// Body length of a raw key-file slot.
pub const RAW_KEY_SLOT_LEN: usize = WRAPPED_LEN;
/// Bytes before a slot's body: kind (1) and body length (2).
pub const SLOT_PREFIX_LEN: usize = 3;
/// Most key slots in one file.
pub const MAX_SLOTS: usize = 512;

/// A key slot as stored in the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// The file key wrapped under Argon2id(passphrase).
    Passphrase {
        /// Argon2id cost.
        params: KdfParams,
        /// Argon2 salt.
        salt: [u8; 16],
        /// The wrapped file key.
        wrapped: [u8; WRAPPED_LEN],
    },
    /// The file key wrapped for an X25519 recipient.
    X25519 {
        /// The ephemeral public key.
        ephemeral: [u8; KEY_LEN],
        /// The wrapped file key.
        wrapped: [u8; WRAPPED_LEN],
    },
    /// The file key wrapped under a raw key file.
    RawKey {
        /// The wrapped file key.
        wrapped: [u8; WRAPPED_LEN],
    },
}

impl Slot {
    /// The kind byte.
    pub fn kind(&self) -> u8 {
        match self {
            Slot::Passphrase { .. } => SLOT_PASSPHRASE,
            Slot::X25519 { .. } => SLOT_X25519,
            Slot::RawKey { .. } => SLOT_RAW_KEY,
        }
    }

    /// The kind as a word: `passphrase`, `x25519` or `key-file`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Slot::Passphrase { .. } => "passphrase",
            Slot::X25519 { .. } => "x25519",
            Slot::RawKey { .. } => "key-file",
        }
    }

    /// Bytes the slot takes in the header, prefix included.
    pub fn encoded_len(&self) -> usize {
        SLOT_PREFIX_LEN + body_len(self.kind()).unwrap_or(0)
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.kind());
        out.extend_from_slice(&(body_len(self.kind()).unwrap_or(0) as u16).to_le_bytes());
        match self {
            Slot::Passphrase { params, salt, wrapped } => {
                out.extend_from_slice(&params.memory_kib.to_le_bytes());
                out.extend_from_slice(&params.passes.to_le_bytes());
                out.extend_from_slice(&params.lanes.to_le_bytes());
                out.extend_from_slice(salt);
                out.extend_from_slice(wrapped);
            }
            Slot::X25519 { ephemeral, wrapped } => {
                out.extend_from_slice(ephemeral);
                out.extend_from_slice(wrapped);
            }
            Slot::RawKey { wrapped } => out.extend_from_slice(wrapped),
        }
    }

    /// Parses slot number `n` from its kind byte and body. Unknown kinds,
    /// wrong lengths and Argon2 parameters Argon2 itself refuses are errors
    /// of the file (integrity), not of the reader's settings.
    pub(crate) fn decode(n: usize, kind: u8, body: &[u8]) -> Result<Slot> {
        let region = Region::Slot(n);
        let expect = body_len(kind).ok_or(Error::UnknownSlotKind { slot: n, kind })?;
        if body.len() != expect {
            return Err(Error::invalid(
                region,
                format!("slot length {} (this kind is {expect} bytes)", body.len()),
            ));
        }
        let mut c = Cursor::new(body);
        let short = || Error::invalid(region, "slot body");
        Ok(match kind {
            SLOT_PASSPHRASE => {
                let params = KdfParams {
                    memory_kib: c.u32().ok_or_else(short)?,
                    passes: c.u32().ok_or_else(short)?,
                    lanes: c.u32().ok_or_else(short)?,
                };
                if let Err(Error::InvalidParams(what)) = params.validate() {
                    return Err(Error::invalid(region, what));
                }
                Slot::Passphrase {
                    params,
                    salt: c.array().ok_or_else(short)?,
                    wrapped: c.array().ok_or_else(short)?,
                }
            }
            SLOT_X25519 => Slot::X25519 {
                ephemeral: c.array().ok_or_else(short)?,
                wrapped: c.array().ok_or_else(short)?,
            },
            _ => Slot::RawKey {
                wrapped: c.array().ok_or_else(short)?,
            },
        })
    }
}

/// The exact body length of a slot kind, `None` for unknown kinds.
fn body_len(kind: u8) -> Option<usize> {
    match kind {
        SLOT_PASSPHRASE => Some(PASSPHRASE_SLOT_LEN),
        SLOT_X25519 => Some(X25519_SLOT_LEN),
        SLOT_RAW_KEY => Some(RAW_KEY_SLOT_LEN),
        _ => None,
    }
}

/// Wraps `file_key` for the recipient, passphrase or key file in `spec`.
pub(crate) fn seal(spec: &SlotSpec, file_id: &[u8; KEY_LEN], file_key: &[u8; KEY_LEN]) -> Result<Slot> {
    Ok(match spec {
        SlotSpec::Passphrase(pass, params) => {
            params.validate()?;
            let mut salt = [0u8; 16];
            random_bytes(&mut salt)?;
            let kek = argon2id(pass, &salt, *params)?;
            Slot::Passphrase {
                params: *params,
                salt,
                wrapped: wrap_key(&kek, &slot_aad(file_id, SLOT_PASSPHRASE), file_key)?,
            }
        }
        SlotSpec::Recipient(r) => {
            let eph = Identity::generate()?;
            let ephemeral = eph.recipient().to_bytes();
            let shared = eph
                .agree(&r.to_bytes())
                .ok_or_else(|| Error::InvalidKey(format!("recipient {r} is not a usable X25519 key")))?;
            let kek = x25519_kek(&shared, &ephemeral, &r.to_bytes());
            Slot::X25519 {
                ephemeral,
                wrapped: wrap_key(&kek, &slot_aad(file_id, SLOT_X25519), file_key)?,
            }
        }
        SlotSpec::RawKey(k) => {
            let kek = hkdf32(k.expose(), file_id, LABEL_KEYFILE_SLOT);
            Slot::RawKey {
                wrapped: wrap_key(&kek, &slot_aad(file_id, SLOT_RAW_KEY), file_key)?,
            }
        }
    })
}

/// Slot rules: encrypted files need at least one slot, unencrypted files
/// none, a passphrase slot stands alone, and at most [`MAX_SLOTS`].
pub(crate) fn check_rules(suite: Suite, slots: &[Slot]) -> Result<()> {
    if slots.len() > MAX_SLOTS {
        return Err(Error::InvalidParams(format!(
            "{} key slots (at most {MAX_SLOTS})",
            slots.len()
        )));
    }
    if suite.is_encrypted() && slots.is_empty() {
        return Err(Error::InvalidParams(
            "an encrypted file needs at least one recipient, passphrase or key file".into(),
        ));
    }
    if !suite.is_encrypted() && !slots.is_empty() {
        return Err(Error::InvalidParams("an unencrypted file cannot have key slots".into()));
    }
    let passphrases = slots.iter().filter(|s| s.kind() == SLOT_PASSPHRASE).count();
    if passphrases > 0 && slots.len() > 1 {
        return Err(Error::InvalidParams(
            "a passphrase slot must be the only key slot of its file".into(),
        ));
    }
    Ok(())
}

/// What kind of key `slots` accept, in words.
pub(crate) fn needed_key(slots: &[Slot]) -> &'static str {
    let any = |k: u8| slots.iter().any(|s| s.kind() == k);
    match (any(SLOT_PASSPHRASE), any(SLOT_X25519), any(SLOT_RAW_KEY)) {
        (true, _, _) => "a passphrase",
        (false, true, true) => "an identity or a key file",
        (false, true, false) => "an identity",
        (false, false, true) => "a key file",
        _ => "a key",
    }
}

/// Tries `keys` against `slots`: key files first, then identities, then (only
/// if a passphrase slot exists and nothing cheaper opened one) the passphrase.
/// Returns the key schedule of the first candidate file key that the header's
/// `commitment` commits to; any other outcome is [`Error::NoMatchingKey`]
/// (or [`Error::MissingKey`] when no key of a usable kind was given).
pub(crate) fn unlock(
    slots: &[Slot],
    file_id: &[u8; KEY_LEN],
    commitment: &[u8; KEY_LEN],
    keys: &KeyRing,
) -> Result<KeySchedule> {
    let mut opener = Opener {
        file_id,
        commitment,
        tried: Vec::new(),
    };
    let has = |k: u8| slots.iter().any(|s| s.kind() == k);
    if has(SLOT_RAW_KEY) && !keys.raw_keys.is_empty() {
        opener.tried.push(KeyKind::KeyFile);
        for slot in slots {
            if let Slot::RawKey { wrapped } = slot {
                for key in &keys.raw_keys {
                    let kek = hkdf32(key.expose(), file_id, LABEL_KEYFILE_SLOT);
                    if let Some(s) = opener.accept(unwrap_key(&kek, &slot_aad(file_id, SLOT_RAW_KEY), wrapped)) {
                        return Ok(s);
                    }
                }
            }
        }
    }
    if has(SLOT_X25519) && !keys.identities.is_empty() {
        opener.tried.push(KeyKind::Identity);
        for slot in slots {
            if let Slot::X25519 { ephemeral, wrapped } = slot {
                for id in &keys.identities {
                    if let Some(s) = opener.accept(open_x25519(id, ephemeral, wrapped, file_id)) {
                        return Ok(s);
                    }
                }
            }
        }
    }
    for (n, slot) in slots.iter().enumerate() {
        let Slot::Passphrase { params, salt, wrapped } = slot else {
            continue;
        };
        let Some(provider) = keys.passphrase.as_ref() else {
            continue;
        };
        if let Some((cost, value, limit)) = keys.kdf_limits.exceeded_by(params) {
            return Err(Error::KdfCostTooHigh {
                slot: n,
                cost,
                value,
                limit,
            });
        }
        opener.tried.push(KeyKind::Passphrase);
        let passphrase = provider().map_err(Error::PassphraseUnavailable)?;
        let kek = argon2id(&passphrase, salt, *params)?;
        if let Some(s) = opener.accept(unwrap_key(&kek, &slot_aad(file_id, SLOT_PASSPHRASE), wrapped)) {
            return Ok(s);
        }
    }
    if opener.tried.is_empty() {
        return Err(Error::MissingKey {
            needed: needed_key(slots),
        });
    }
    let tried: Vec<String> = opener.tried.iter().map(ToString::to_string).collect();
    Err(Error::NoMatchingKey {
        tried: tried.join(" or "),
    })
}

/// Accepts candidate file keys only if the header commits to them.
struct Opener<'a> {
    file_id: &'a [u8; KEY_LEN],
    commitment: &'a [u8; KEY_LEN],
    tried: Vec<KeyKind>,
}

impl Opener<'_> {
    fn accept(&self, candidate: Option<SecretKey>) -> Option<KeySchedule> {
        // The same derivation runs whether or not the slot unwrapped, so an
        // unwrap that yields an uncommitted key costs what a failed unwrap
        // does: the two outcomes differ neither in error nor in work.
        let opened = candidate.is_some();
        let key = candidate.unwrap_or_else(|| Zeroizing::new([0u8; KEY_LEN]));
        let schedule = KeySchedule::derive(&key, self.file_id);
        (schedule.commits_to(self.commitment) && opened).then_some(schedule)
    }
}

/// Associated data of a slot's key wrap: binds it to this file and slot kind.
pub(crate) fn slot_aad(file_id: &[u8; KEY_LEN], kind: u8) -> [u8; 8 + 2 + KEY_LEN + 1] {
    let mut aad = [0u8; 8 + 2 + KEY_LEN + 1];
    let (magic, rest) = aad.split_at_mut(8);
    magic.copy_from_slice(&crate::header::MAGIC);
    let (ver, rest) = rest.split_at_mut(2);
    ver.copy_from_slice(&crate::header::VERSION.to_le_bytes());
    let (id, k) = rest.split_at_mut(KEY_LEN);
    id.copy_from_slice(file_id);
    k.fill(kind);
    aad
}

fn x25519_kek(shared: &[u8; KEY_LEN], ephemeral: &[u8; KEY_LEN], recipient: &[u8; KEY_LEN]) -> SecretKey {
    let mut salt = [0u8; 2 * KEY_LEN];
    let (a, b) = salt.split_at_mut(KEY_LEN);
    a.copy_from_slice(ephemeral);
    b.copy_from_slice(recipient);
    hkdf32(shared, &salt, LABEL_X25519_SLOT)
}

/// Opens an X25519 slot; `None` when it does not open with `id`, including
/// when the ephemeral key is a low-order point (all-zero shared secret).
fn open_x25519(id: &Identity, ephemeral: &[u8; KEY_LEN], wrapped: &[u8], file_id: &[u8; KEY_LEN]) -> Option<SecretKey> {
    let shared = id.agree(ephemeral)?;
    let kek = x25519_kek(&shared, ephemeral, &id.recipient().to_bytes());
    unwrap_key(&kek, &slot_aad(file_id, SLOT_X25519), wrapped)
}

/// Wraps `file_key` under `kek` with ChaCha20-Poly1305 and a zero nonce.
///
/// Every key-encryption key is used exactly once (it depends on a fresh salt,
/// a fresh ephemeral key or, for key files, the fresh random file id), so the
/// fixed nonce never repeats under one key.
pub(crate) fn wrap_key(kek: &[u8; KEY_LEN], aad: &[u8], file_key: &[u8; KEY_LEN]) -> Result<[u8; WRAPPED_LEN]> {
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
pub(crate) fn unwrap_key(kek: &[u8; KEY_LEN], aad: &[u8], wrapped: &[u8]) -> Option<SecretKey> {
    let sealed: &[u8; WRAPPED_LEN] = wrapped.try_into().ok()?;
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, kek).ok()?);
    let mut buf = Zeroizing::new(*sealed);
    let plain = key
        .open_in_place(Nonce::assume_unique_for_key([0; 12]), Aad::from(aad), buf.as_mut())
        .ok()?;
    let plain: &[u8; KEY_LEN] = (&*plain).try_into().ok()?;
    Some(Zeroizing::new(*plain))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::keys::{Passphrase, RawKey};

    pub(crate) fn fast_kdf() -> KdfParams {
        KdfParams {
            memory_kib: 64,
            passes: 1,
            lanes: 1,
        }
    }

    #[test]
    fn wrap_round_trip_and_wrong_key() {
        let kek = [7u8; 32];
        let fk = [9u8; 32];
        let w = wrap_key(&kek, b"aad", &fk).unwrap();
        assert_eq!(*unwrap_key(&kek, b"aad", &w).unwrap(), fk);
        assert!(unwrap_key(&[8u8; 32], b"aad", &w).is_none());
        assert!(unwrap_key(&kek, b"other", &w).is_none());
        assert!(unwrap_key(&kek, b"aad", &w[..47]).is_none());
    }

    /// The words an error uses to say which key a file wants.
    #[test]
    fn needed_key_names_what_the_slots_accept() {
        let (file_id, fk) = ([3u8; 32], [4u8; 32]);
        let pass = seal(&SlotSpec::Passphrase(Passphrase::new("p"), fast_kdf()), &file_id, &fk).unwrap();
        let x = seal(
            &SlotSpec::Recipient(Identity::generate().unwrap().recipient()),
            &file_id,
            &fk,
        )
        .unwrap();
        let raw = seal(&SlotSpec::RawKey(RawKey::generate().unwrap()), &file_id, &fk).unwrap();
        assert_eq!(needed_key(std::slice::from_ref(&pass)), "a passphrase");
        assert_eq!(needed_key(&[x.clone(), raw.clone()]), "an identity or a key file");
        assert_eq!(needed_key(std::slice::from_ref(&x)), "an identity");
        assert_eq!(needed_key(std::slice::from_ref(&raw)), "a key file");
        assert_eq!(needed_key(&[]), "a key");
    }

    #[test]
    fn every_kind_round_trips_through_bytes() {
        let file_id = [3u8; 32];
        let fk = [4u8; 32];
        let specs = [
            SlotSpec::Passphrase(Passphrase::new("p"), fast_kdf()),
            SlotSpec::Recipient(Identity::generate().unwrap().recipient()),
            SlotSpec::RawKey(RawKey::generate().unwrap()),
        ];
        for (n, spec) in specs.iter().enumerate() {
            let slot = seal(spec, &file_id, &fk).unwrap();
            let mut bytes = Vec::new();
            slot.encode(&mut bytes);
            assert_eq!(bytes.len(), slot.encoded_len());
            let body = &bytes[SLOT_PREFIX_LEN..];
            assert_eq!(Slot::decode(n, bytes[0], body).unwrap(), slot);
            // One byte short or long is refused.
            assert!(Slot::decode(n, bytes[0], &body[1..]).is_err());
            let mut long = body.to_vec();
            long.push(0);
            assert!(Slot::decode(n, bytes[0], &long).is_err());
        }
        assert!(matches!(
            Slot::decode(7, 9, &[0; 48]),
            Err(Error::UnknownSlotKind { slot: 7, kind: 9 })
        ));
    }

    #[test]
    fn argon2_parameters_argon2_refuses_are_file_errors() {
        let slot = seal(
            &SlotSpec::Passphrase(Passphrase::new("p"), fast_kdf()),
            &[1; 32],
            &[2; 32],
        )
        .unwrap();
        let mut bytes = Vec::new();
        slot.encode(&mut bytes);
        for (offset, value) in [(4, 0u32), (8, 0), (0, 7)] {
            // passes 0, lanes 0, memory below 8 KiB per lane
            let mut b = bytes[SLOT_PREFIX_LEN..].to_vec();
            b[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
            let err = Slot::decode(2, SLOT_PASSPHRASE, &b).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::Invalid {
                        region: Region::Slot(2),
                        ..
                    }
                ),
                "{err}"
            );
            assert_eq!(err.class(), crate::ErrorClass::Integrity);
        }
    }

    #[test]
    fn rules() {
        let raw = |n: usize| -> Vec<Slot> {
            (0..n)
                .map(|_| Slot::RawKey {
                    wrapped: [0; WRAPPED_LEN],
                })
                .collect()
        };
        check_rules(Suite::Aes256Gcm, &raw(MAX_SLOTS)).unwrap();
        assert!(check_rules(Suite::Aes256Gcm, &raw(MAX_SLOTS + 1)).is_err());
        assert!(check_rules(Suite::Aes256Gcm, &[]).is_err());
        assert!(check_rules(Suite::None, &raw(1)).is_err());
        check_rules(Suite::None, &[]).unwrap();
        let mut with_pass = raw(1);
        with_pass.push(
            seal(
                &SlotSpec::Passphrase(Passphrase::new("p"), fast_kdf()),
                &[1; 32],
                &[2; 32],
            )
            .unwrap(),
        );
        assert!(check_rules(Suite::Aes256Gcm, &with_pass).is_err());
        check_rules(Suite::Aes256Gcm, &with_pass[1..]).unwrap();
    }
}
