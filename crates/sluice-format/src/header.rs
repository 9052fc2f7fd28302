//! The container header: magic, version, parameters, file id, key
//! commitment, key slots, MAC and checksum. See `docs/FORMAT.md` §2 and §4.

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::bytes::Cursor;
use crate::codec::{Codec, Compression};
use crate::error::{Error, KeyKind, Region, Result};
use crate::kdf::{
    hkdf32, random_bytes, random_key, unwrap_key, wrap_key, KeySchedule, SecretKey, KEY_LEN, LABEL_KEYFILE_SLOT,
    LABEL_X25519_SLOT, MAC_LEN, WRAPPED_LEN,
};
use crate::keys::{argon2id, Identity, KdfParams, KeyRing, SlotSpec};
use crate::suite::{PayloadCipher, Suite};

/// The 8-byte magic number that starts every container.
pub const MAGIC: [u8; 8] = *b"\x89SLUICE\n";
/// The format version this crate writes and reads.
pub const VERSION: u16 = 1;
/// Bytes needed to learn the header length: magic, version, header length.
pub const PREFIX_LEN: usize = 14;
/// Length of the fixed fields before the slots.
pub const FIXED_LEN: usize = 86;
/// Length of the BLAKE3 checksum that ends the header.
pub const CHECKSUM_LEN: usize = 32;
/// Smallest possible header (no slots).
pub const MIN_HEADER_LEN: usize = FIXED_LEN + MAC_LEN + CHECKSUM_LEN;
/// Largest header accepted; bounds allocation before anything is authenticated.
pub const MAX_HEADER_LEN: usize = 64 * 1024;
/// Most key slots in one file.
pub const MAX_SLOTS: usize = 512;
/// Smallest chunk size exponent (4 KiB).
pub const MIN_CHUNK_LOG2: u8 = 12;
/// Largest chunk size exponent (64 MiB).
pub const MAX_CHUNK_LOG2: u8 = 26;
/// Default chunk size exponent (1 MiB), chosen by measurement (docs/PERFORMANCE.md).
pub const DEFAULT_CHUNK_LOG2: u8 = 20;

/// Slot kind byte of a passphrase slot.
pub const SLOT_PASSPHRASE: u8 = 1;
/// Slot kind byte of an X25519 slot.
pub const SLOT_X25519: u8 = 2;
/// Slot kind byte of a raw key-file slot.
pub const SLOT_RAW_KEY: u8 = 3;
/// Body length of a passphrase slot.
pub const PASSPHRASE_SLOT_LEN: usize = 12 + 16 + WRAPPED_LEN;
/// Body length of an X25519 slot.
pub const X25519_SLOT_LEN: usize = KEY_LEN + WRAPPED_LEN;
/// Body length of a raw key-file slot.
pub const RAW_KEY_SLOT_LEN: usize = WRAPPED_LEN;

/// A chunk size: a power of two between 4 KiB and 64 MiB.
///
/// Powers of two keep every chunk an aligned BLAKE3 subtree, so the
/// whole-file digest can be computed in parallel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChunkSize(u8);

impl Default for ChunkSize {
    fn default() -> Self {
        ChunkSize(DEFAULT_CHUNK_LOG2)
    }
}

impl ChunkSize {
    /// From the exponent stored in the header.
    pub fn from_log2(log2: u8) -> Result<Self> {
        if (MIN_CHUNK_LOG2..=MAX_CHUNK_LOG2).contains(&log2) {
            Ok(ChunkSize(log2))
        } else {
            Err(Error::invalid(
                Region::Header,
                format!("chunk size exponent {log2} (allowed {MIN_CHUNK_LOG2}..={MAX_CHUNK_LOG2})"),
            ))
        }
    }

    /// From a byte count, which must be a power of two in range.
    pub fn from_bytes(n: u64) -> Result<Self> {
        if !n.is_power_of_two() || !((1 << MIN_CHUNK_LOG2)..=(1 << MAX_CHUNK_LOG2)).contains(&n) {
            return Err(Error::InvalidParams(format!(
                "chunk size {n} must be a power of two from 4KiB to 64MiB"
            )));
        }
        // Truncation is impossible: n <= 2^26.
        Ok(ChunkSize(n.trailing_zeros() as u8))
    }

    /// Parses sizes such as `4MiB`, `64KiB`, `1M`, `65536`.
    pub fn parse(s: &str) -> Result<Self> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| Error::InvalidParams(format!("chunk size {s:?} is not a size (e.g. 4MiB)")))?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kib" | "kb" => 1 << 10,
            "m" | "mib" | "mb" => 1 << 20,
            _ => {
                return Err(Error::InvalidParams(format!(
                    "chunk size {s:?}: unknown unit (use KiB or MiB)"
                )))
            }
        };
        let bytes = n
            .checked_mul(mult)
            .ok_or_else(|| Error::InvalidParams(format!("chunk size {s:?} is too large")))?;
        Self::from_bytes(bytes)
    }

    /// The exponent.
    pub fn log2(self) -> u8 {
        self.0
    }

    /// The size in bytes.
    pub fn bytes(self) -> usize {
        1usize << self.0
    }
}

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

    /// The kind as a word, for `info`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Slot::Passphrase { .. } => "passphrase",
            Slot::X25519 { .. } => "x25519",
            Slot::RawKey { .. } => "key-file",
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.kind());
        match self {
            Slot::Passphrase { params, salt, wrapped } => {
                out.extend_from_slice(&(PASSPHRASE_SLOT_LEN as u16).to_le_bytes());
                out.extend_from_slice(&params.memory_kib.to_le_bytes());
                out.extend_from_slice(&params.passes.to_le_bytes());
                out.extend_from_slice(&params.lanes.to_le_bytes());
                out.extend_from_slice(salt);
                out.extend_from_slice(wrapped);
            }
            Slot::X25519 { ephemeral, wrapped } => {
                out.extend_from_slice(&(X25519_SLOT_LEN as u16).to_le_bytes());
                out.extend_from_slice(ephemeral);
                out.extend_from_slice(wrapped);
            }
            Slot::RawKey { wrapped } => {
                out.extend_from_slice(&(RAW_KEY_SLOT_LEN as u16).to_le_bytes());
                out.extend_from_slice(wrapped);
            }
        }
    }

    fn decode(n: usize, kind: u8, body: &[u8]) -> Result<Slot> {
        let region = Region::Slot(n);
        let expect = match kind {
            SLOT_PASSPHRASE => PASSPHRASE_SLOT_LEN,
            SLOT_X25519 => X25519_SLOT_LEN,
            SLOT_RAW_KEY => RAW_KEY_SLOT_LEN,
            other => return Err(Error::UnknownSlotKind { slot: n, kind: other }),
        };
        if body.len() != expect {
            return Err(Error::invalid(
                region,
                format!("slot length {} (this kind is {expect} bytes)", body.len()),
            ));
        }
        let mut c = Cursor::new(body);
        let short = || Error::invalid(region, "slot body");
        Ok(match kind {
            SLOT_PASSPHRASE => Slot::Passphrase {
                params: KdfParams {
                    memory_kib: c.u32().ok_or_else(short)?,
                    passes: c.u32().ok_or_else(short)?,
                    lanes: c.u32().ok_or_else(short)?,
                },
                salt: c.array().ok_or_else(short)?,
                wrapped: c.array().ok_or_else(short)?,
            },
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

/// The parameters of a new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileParams {
    /// Cipher suite.
    pub suite: Suite,
    /// Compression codec and level.
    pub compression: Compression,
    /// Chunk size.
    pub chunk_size: ChunkSize,
}

/// A parsed header, with its exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Cipher suite.
    pub suite: Suite,
    /// Compression codec and level (the level is informational).
    pub compression: Compression,
    /// Chunk size.
    pub chunk_size: ChunkSize,
    /// Random per-file id (HKDF salt).
    pub file_id: [u8; KEY_LEN],
    /// Key commitment.
    pub commitment: [u8; KEY_LEN],
    /// Key slots.
    pub slots: Vec<Slot>,
    /// The header MAC, which every chunk's associated data repeats.
    pub mac: [u8; MAC_LEN],
    bytes: Vec<u8>,
}

/// Reads the header length from the first [`PREFIX_LEN`] bytes, checking the
/// magic number and version first.
pub fn header_len(prefix: &[u8]) -> Result<usize> {
    let mut c = Cursor::new(prefix);
    let magic: [u8; 8] = c.array().ok_or(Error::HeaderTruncated)?;
    if magic != MAGIC {
        return Err(Error::NotSluice);
    }
    let version = c.u16().ok_or(Error::HeaderTruncated)?;
    if version != VERSION {
        return Err(Error::UnsupportedVersion(version));
    }
    let len = c.u32().ok_or(Error::HeaderTruncated)? as usize;
    if !(MIN_HEADER_LEN..=MAX_HEADER_LEN).contains(&len) {
        return Err(Error::invalid(
            Region::Header,
            format!("header length {len} (allowed {MIN_HEADER_LEN}..={MAX_HEADER_LEN})"),
        ));
    }
    Ok(len)
}

impl Header {
    /// The exact bytes of the header as stored.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The header's length in bytes (where the first chunk starts).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a header is never empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Parses and checks a complete header (structure and checksum; no key needed).
    pub fn parse(bytes: &[u8]) -> Result<Header> {
        let len = header_len(bytes)?;
        if bytes.len() < len {
            return Err(Error::HeaderTruncated);
        }
        let bytes = bytes.get(..len).ok_or(Error::HeaderTruncated)?;
        let (body, checksum) = bytes.split_at(len - CHECKSUM_LEN);
        if !bool::from(blake3::hash(body).as_bytes().ct_eq(checksum)) {
            return Err(Error::HeaderCorrupted);
        }
        let (fields, mac) = body.split_at(body.len() - MAC_LEN);
        let mut c = Cursor::new(fields);
        let bad = |what: &str| Error::invalid(Region::Header, what.to_string());
        c.take(PREFIX_LEN).ok_or_else(|| bad("prefix"))?;
        let suite = Suite::from_id(c.u8().ok_or_else(|| bad("suite"))?)?;
        let codec = Codec::from_id(c.u8().ok_or_else(|| bad("codec"))?)?;
        let level = c.u8().ok_or_else(|| bad("level"))? as i8 as i32;
        let compression = Compression { codec, level };
        compression
            .validate()
            .map_err(|_| bad(&format!("compression level {level} for {}", codec.name())))?;
        let chunk_size = ChunkSize::from_log2(c.u8().ok_or_else(|| bad("chunk size"))?)?;
        let flags = c.u16().ok_or_else(|| bad("flags"))?;
        if flags != 0 {
            return Err(bad(&format!("flags {flags:#06x} (must be 0)")));
        }
        let file_id = c.array().ok_or_else(|| bad("file id"))?;
        let commitment = c.array().ok_or_else(|| bad("key commitment"))?;
        let count = c.u16().ok_or_else(|| bad("slot count"))? as usize;
        if count > MAX_SLOTS {
            return Err(bad(&format!("slot count {count} (at most {MAX_SLOTS})")));
        }
        let mut slots = Vec::with_capacity(count);
        for n in 0..count {
            let kind = c
                .u8()
                .ok_or_else(|| Error::invalid(Region::Slot(n), "slot extends past the header"))?;
            let blen = c
                .u16()
                .ok_or_else(|| Error::invalid(Region::Slot(n), "slot extends past the header"))?;
            let body = c
                .take(blen as usize)
                .ok_or_else(|| Error::invalid(Region::Slot(n), "slot extends past the header"))?;
            slots.push(Slot::decode(n, kind, body)?);
        }
        if c.remaining() != 0 {
            return Err(bad(&format!("{} unexpected bytes after the slots", c.remaining())));
        }
        check_slot_rules(suite, &slots).map_err(|e| match e {
            Error::InvalidParams(what) => bad(&what),
            other => other,
        })?;
        let mac: [u8; MAC_LEN] = mac.try_into().map_err(|_| bad("mac"))?;
        Ok(Header {
            suite,
            compression,
            chunk_size,
            file_id,
            commitment,
            slots,
            mac,
            bytes: bytes.to_vec(),
        })
    }

    /// Builds the header of a new file with a fresh file key and file id, and
    /// returns it with the cipher that seals the file's payload.
    pub fn create(params: &FileParams, specs: &[SlotSpec]) -> Result<(Header, PayloadCipher)> {
        params.compression.validate()?;
        let mut file_id = [0u8; KEY_LEN];
        random_bytes(&mut file_id)?;
        let file_key: SecretKey = if params.suite.is_encrypted() {
            random_key()?
        } else {
            Zeroizing::new([0u8; KEY_LEN])
        };
        let mut slots = Vec::with_capacity(specs.len());
        for spec in specs {
            slots.push(seal_slot(spec, &file_id, &file_key)?);
        }
        check_slot_rules(params.suite, &slots)?;
        let schedule = KeySchedule::derive(&file_key, &file_id);

        let mut out = Vec::with_capacity(MIN_HEADER_LEN + slots.len() * 84);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&[0; 4]); // length, patched below
        out.push(params.suite.id());
        out.push(params.compression.codec.id());
        out.push(params.compression.level as i8 as u8);
        out.push(params.chunk_size.log2());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&file_id);
        out.extend_from_slice(&schedule.commitment);
        out.extend_from_slice(&(slots.len() as u16).to_le_bytes());
        for s in &slots {
            s.encode(&mut out);
        }
        let total = out.len() + MAC_LEN + CHECKSUM_LEN;
        if total > MAX_HEADER_LEN {
            return Err(Error::InvalidParams(format!(
                "too many key slots: header would be {total} bytes"
            )));
        }
        if let Some(len_field) = out.get_mut(10..14) {
            len_field.copy_from_slice(&(total as u32).to_le_bytes());
        }
        let mac = schedule.header_mac(&out);
        out.extend_from_slice(&mac);
        let checksum = blake3::hash(&out);
        out.extend_from_slice(checksum.as_bytes());
        let cipher = PayloadCipher::new(params.suite, &schedule.payload)?;
        let header = Header {
            suite: params.suite,
            compression: params.compression,
            chunk_size: params.chunk_size,
            file_id,
            commitment: schedule.commitment,
            slots,
            mac,
            bytes: out,
        };
        Ok((header, cipher))
    }

    /// Opens a key slot with `keys`, checks the key commitment and the header
    /// MAC, and returns the cipher that opens the payload.
    pub fn unlock(&self, keys: &KeyRing) -> Result<PayloadCipher> {
        let file_key = if self.suite.is_encrypted() {
            self.open_slots(keys)?
        } else {
            Zeroizing::new([0u8; KEY_LEN])
        };
        let schedule = KeySchedule::derive(&file_key, &self.file_id);
        if !bool::from(schedule.commitment.ct_eq(&self.commitment)) {
            return Err(Error::KeyCommitmentMismatch);
        }
        let signed = self
            .bytes
            .get(..self.bytes.len() - MAC_LEN - CHECKSUM_LEN)
            .ok_or(Error::HeaderTruncated)?;
        if !schedule.verify_header_mac(signed, &self.mac) {
            return Err(Error::HeaderMacMismatch);
        }
        PayloadCipher::new(self.suite, &schedule.payload)
    }

    fn open_slots(&self, keys: &KeyRing) -> Result<SecretKey> {
        let mut tried: Vec<KeyKind> = Vec::new();
        let has = |k: u8| self.slots.iter().any(|s| s.kind() == k);
        // Cheap keys first; the passphrase (Argon2) only if nothing else worked.
        if has(SLOT_RAW_KEY) && !keys.raw_keys.is_empty() {
            tried.push(KeyKind::KeyFile);
            for slot in &self.slots {
                if let Slot::RawKey { wrapped } = slot {
                    for key in &keys.raw_keys {
                        let kek = hkdf32(key.expose(), &self.file_id, LABEL_KEYFILE_SLOT);
                        if let Some(fk) = unwrap_key(&kek, &slot_aad(&self.file_id, SLOT_RAW_KEY), wrapped) {
                            return Ok(fk);
                        }
                    }
                }
            }
        }
        if has(SLOT_X25519) && !keys.identities.is_empty() {
            tried.push(KeyKind::Identity);
            for slot in &self.slots {
                if let Slot::X25519 { ephemeral, wrapped } = slot {
                    for id in &keys.identities {
                        if let Some(fk) = open_x25519(id, ephemeral, wrapped, &self.file_id) {
                            return Ok(fk);
                        }
                    }
                }
            }
        }
        for (n, slot) in self.slots.iter().enumerate() {
            if let Slot::Passphrase { params, salt, wrapped } = slot {
                let Some(provider) = keys.passphrase.as_ref() else {
                    continue;
                };
                check_kdf_limits(n, params, keys)?;
                tried.push(KeyKind::Passphrase);
                let passphrase = provider().map_err(Error::PassphraseUnavailable)?;
                let kek = argon2id(&passphrase, salt, *params)?;
                if let Some(fk) = unwrap_key(&kek, &slot_aad(&self.file_id, SLOT_PASSPHRASE), wrapped) {
                    return Ok(fk);
                }
            }
        }
        if tried.is_empty() {
            return Err(Error::MissingKey {
                needed: self.needed_key(),
            });
        }
        let tried: Vec<String> = tried.iter().map(ToString::to_string).collect();
        Err(Error::NoMatchingKey {
            tried: tried.join(" or "),
        })
    }

    /// What kind of key this file's slots accept, in words.
    pub fn needed_key(&self) -> &'static str {
        let kinds: Vec<u8> = self.slots.iter().map(Slot::kind).collect();
        let any = |k| kinds.contains(&k);
        match (any(SLOT_PASSPHRASE), any(SLOT_X25519), any(SLOT_RAW_KEY)) {
            (true, _, _) => "a passphrase",
            (false, true, true) => "an identity or a key file",
            (false, true, false) => "an identity",
            (false, false, true) => "a key file",
            _ => "a key",
        }
    }
}

fn check_kdf_limits(slot: usize, p: &KdfParams, keys: &KeyRing) -> Result<()> {
    let l = keys.kdf_limits;
    let over = |param, value, limit, how| Error::KdfCostTooHigh {
        slot,
        param,
        value,
        limit,
        how,
    };
    if p.memory_kib > l.max_memory_kib {
        return Err(over("memory (KiB)", p.memory_kib, l.max_memory_kib, "--max-kdf-memory"));
    }
    if p.passes > l.max_passes {
        return Err(over("passes", p.passes, l.max_passes, "--max-kdf-passes"));
    }
    if p.lanes > l.max_lanes {
        return Err(over("lanes", p.lanes, l.max_lanes, "--max-kdf-lanes"));
    }
    Ok(())
}

/// Associated data of a slot's key wrap: binds it to this file and slot kind.
fn slot_aad(file_id: &[u8; KEY_LEN], kind: u8) -> [u8; 8 + 2 + KEY_LEN + 1] {
    let mut aad = [0u8; 8 + 2 + KEY_LEN + 1];
    let (magic, rest) = aad.split_at_mut(8);
    magic.copy_from_slice(&MAGIC);
    let (ver, rest) = rest.split_at_mut(2);
    ver.copy_from_slice(&VERSION.to_le_bytes());
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

fn open_x25519(id: &Identity, ephemeral: &[u8; KEY_LEN], wrapped: &[u8], file_id: &[u8; KEY_LEN]) -> Option<SecretKey> {
    let shared = id.agree(ephemeral)?;
    let kek = x25519_kek(&shared, ephemeral, &id.recipient().to_bytes());
    unwrap_key(&kek, &slot_aad(file_id, SLOT_X25519), wrapped)
}

fn seal_slot(spec: &SlotSpec, file_id: &[u8; KEY_LEN], file_key: &[u8; KEY_LEN]) -> Result<Slot> {
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
/// none, and a passphrase slot stands alone.
fn check_slot_rules(suite: Suite, slots: &[Slot]) -> Result<()> {
    let passphrases = slots.iter().filter(|s| s.kind() == SLOT_PASSPHRASE).count();
    if suite.is_encrypted() && slots.is_empty() {
        return Err(Error::InvalidParams(
            "an encrypted file needs at least one recipient, passphrase or key file".into(),
        ));
    }
    if !suite.is_encrypted() && !slots.is_empty() {
        return Err(Error::InvalidParams("an unencrypted file cannot have key slots".into()));
    }
    if passphrases > 0 && slots.len() > 1 {
        return Err(Error::InvalidParams(
            "a passphrase slot must be the only key slot of its file".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
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
    fn chunk_size_parsing() {
        assert_eq!(ChunkSize::parse("4MiB").unwrap().bytes(), 4 << 20);
        assert_eq!(ChunkSize::parse("64KiB").unwrap().bytes(), 64 << 10);
        assert_eq!(ChunkSize::parse("65536").unwrap().bytes(), 65536);
        assert!(ChunkSize::parse("3MiB").is_err());
        assert!(ChunkSize::parse("128MiB").is_err());
        assert!(ChunkSize::parse("1KiB").is_err());
        assert!(ChunkSize::parse("lots").is_err());
        assert!(ChunkSize::parse("99999999999999999999GiB").is_err());
    }

    #[test]
    fn create_parse_unlock_every_key_kind() {
        let id = Identity::generate().unwrap();
        let raw = RawKey::generate().unwrap();
        let params = FileParams::default();
        let specs = [SlotSpec::Recipient(id.recipient()), SlotSpec::RawKey(raw.clone())];
        let (h, _) = Header::create(&params, &specs).unwrap();
        let parsed = Header::parse(h.as_bytes()).unwrap();
        assert_eq!(parsed, h);
        parsed.unlock(&KeyRing::new().with_identity(id)).unwrap();
        parsed.unlock(&KeyRing::new().with_raw_key(raw)).unwrap();
        let err = parsed
            .unlock(&KeyRing::new().with_identity(Identity::generate().unwrap()))
            .unwrap_err();
        assert!(matches!(err, Error::NoMatchingKey { .. }), "{err}");
        let err = parsed.unlock(&KeyRing::new()).unwrap_err();
        assert!(matches!(err, Error::MissingKey { .. }), "{err}");

        let pass = Passphrase::new("correct horse");
        let (h, _) = Header::create(&params, &[SlotSpec::Passphrase(pass.clone(), fast_kdf())]).unwrap();
        h.unlock(&KeyRing::new().with_passphrase(pass)).unwrap();
        let err = h
            .unlock(&KeyRing::new().with_passphrase(Passphrase::new("wrong")))
            .unwrap_err();
        assert!(matches!(err, Error::NoMatchingKey { .. }), "{err}");
    }

    #[test]
    fn passphrase_slot_stands_alone() {
        let specs = [
            SlotSpec::Passphrase(Passphrase::new("x"), fast_kdf()),
            SlotSpec::RawKey(RawKey::generate().unwrap()),
        ];
        assert!(Header::create(&FileParams::default(), &specs).is_err());
        let none = FileParams {
            suite: Suite::None,
            ..FileParams::default()
        };
        assert!(Header::create(&none, &specs[1..]).is_err());
        assert!(Header::create(&FileParams::default(), &[]).is_err());
    }

    #[test]
    fn kdf_caps_are_enforced_before_any_work() {
        let pass = Passphrase::new("p");
        let (h, _) = Header::create(
            &FileParams::default(),
            &[SlotSpec::Passphrase(pass.clone(), fast_kdf())],
        )
        .unwrap();
        let mut keys = KeyRing::new().with_passphrase(pass);
        keys.kdf_limits.max_memory_kib = 32;
        let err = h.unlock(&keys).unwrap_err();
        assert!(matches!(err, Error::KdfCostTooHigh { .. }), "{err}");
        assert!(err.to_string().contains("--max-kdf-memory"), "{err}");
    }
}
