//! The container header: magic, version, parameters, file id, key
//! commitment, key slots, MAC and checksum. See `docs/FORMAT.md` §2.

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::bytes::Cursor;
use crate::codec::{Codec, Compression};
use crate::error::{Error, Region, Result};
use crate::kdf::{random_bytes, random_key, KeySchedule, SecretKey, KEY_LEN, MAC_LEN};
use crate::keys::{KeyRing, SlotSpec};
use crate::params::{ChunkSize, FileParams};
use crate::slot::{self, Slot, MAX_SLOTS};
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
            let past = || Error::invalid(Region::Slot(n), "slot extends past the header");
            let kind = c.u8().ok_or_else(past)?;
            let blen = c.u16().ok_or_else(past)?;
            let body = c.take(blen as usize).ok_or_else(past)?;
            slots.push(Slot::decode(n, kind, body)?);
        }
        if c.remaining() != 0 {
            return Err(bad(&format!("{} unexpected bytes after the slots", c.remaining())));
        }
        slot::check_rules(suite, &slots).map_err(|e| match e {
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
        if specs.len() > MAX_SLOTS {
            return Err(Error::InvalidParams(format!(
                "{} recipients, key files and passphrases (at most {MAX_SLOTS})",
                specs.len()
            )));
        }
        let mut file_id = [0u8; KEY_LEN];
        random_bytes(&mut file_id)?;
        let file_key: SecretKey = if params.suite.is_encrypted() {
            random_key()?
        } else {
            Zeroizing::new([0u8; KEY_LEN])
        };
        let slots = specs
            .iter()
            .map(|spec| slot::seal(spec, &file_id, &file_key))
            .collect::<Result<Vec<_>>>()?;
        slot::check_rules(params.suite, &slots)?;
        let schedule = KeySchedule::derive(&file_key, &file_id);

        let total = MIN_HEADER_LEN + slots.iter().map(Slot::encoded_len).sum::<usize>();
        if total > MAX_HEADER_LEN {
            return Err(Error::InvalidParams(format!(
                "too many key slots: header would be {total} bytes (at most {MAX_HEADER_LEN})"
            )));
        }
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(total as u32).to_le_bytes());
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
        let mac = schedule.header_mac(&out);
        out.extend_from_slice(&mac);
        let checksum = blake3::hash(&out);
        out.extend_from_slice(checksum.as_bytes());
        debug_assert_eq!(out.len(), total);
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

    /// Opens a key slot with `keys` (checking the key commitment as part of
    /// opening), then the header MAC, and returns the cipher that opens the
    /// payload.
    ///
    /// An unencrypted file is refused with [`Error::NotEncrypted`] unless
    /// `keys.allow_unencrypted` is set: anyone can make a valid unencrypted
    /// file, so accepting one where an encrypted file was expected would let
    /// an attacker replace its content unnoticed.
    pub fn unlock(&self, keys: &KeyRing) -> Result<PayloadCipher> {
        let schedule = if self.suite.is_encrypted() {
            slot::unlock(&self.slots, &self.file_id, &self.commitment, keys)?
        } else {
            if !keys.allow_unencrypted {
                return Err(Error::NotEncrypted);
            }
            let s = KeySchedule::derive(&[0; KEY_LEN], &self.file_id);
            if !s.commits_to(&self.commitment) {
                return Err(Error::HeaderMacMismatch);
            }
            s
        };
        let signed = self
            .bytes
            .get(..self.bytes.len() - MAC_LEN - CHECKSUM_LEN)
            .ok_or(Error::HeaderTruncated)?;
        if !schedule.verify_header_mac(signed, &self.mac) {
            return Err(Error::HeaderMacMismatch);
        }
        PayloadCipher::new(self.suite, &schedule.payload)
    }

    /// What kind of key this file's slots accept, in words.
    pub fn needed_key(&self) -> &'static str {
        slot::needed_key(&self.slots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kdf::KdfCost;
    use crate::keys::{Identity, Passphrase, RawKey};
    use crate::slot::tests::fast_kdf;
    use crate::slot::SLOT_PREFIX_LEN;

    #[test]
    fn create_parse_unlock_every_key_kind() {
        let id = Identity::generate().unwrap();
        let raw = RawKey::generate().unwrap();
        let params = FileParams::default();
        let specs = [SlotSpec::Recipient(id.recipient()), SlotSpec::RawKey(raw.clone())];
        let (h, _) = Header::create(&params, &specs).unwrap();
        assert_eq!(h.needed_key(), "an identity or a key file");
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
    fn each_kdf_cap_is_enforced_before_any_work() {
        let pass = Passphrase::new("p");
        let params = KdfParams {
            memory_kib: 64,
            passes: 2,
            lanes: 2,
        };
        let (h, _) = Header::create(&FileParams::default(), &[SlotSpec::Passphrase(pass.clone(), params)]).unwrap();
        type Lower = fn(&mut KdfLimits);
        let cases: [(KdfCost, Lower); 3] = [
            (KdfCost::MemoryKib, |l| l.max_memory_kib = 63),
            (KdfCost::Passes, |l| l.max_passes = 1),
            (KdfCost::Lanes, |l| l.max_lanes = 1),
        ];
        for (expect, lower) in cases {
            let asked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flag = asked.clone();
            let mut keys = KeyRing::new();
            keys.passphrase = Some(std::sync::Arc::new(move || {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(Passphrase::new("p"))
            }));
            lower(&mut keys.kdf_limits);
            let err = h.unlock(&keys).unwrap_err();
            assert!(
                matches!(err, Error::KdfCostTooHigh { cost, slot: 0, .. } if cost == expect),
                "{err}"
            );
            assert!(
                !err.to_string().contains("--"),
                "no flag names in library errors: {err}"
            );
            assert!(
                !asked.load(std::sync::atomic::Ordering::Relaxed),
                "asked for a passphrase"
            );
        }
        // At the caps exactly, it opens.
        let mut keys = KeyRing::new().with_passphrase(pass);
        keys.kdf_limits = KdfLimits {
            max_memory_kib: 64,
            max_passes: 2,
            max_lanes: 2,
        };
        h.unlock(&keys).unwrap();
    }

    use crate::kdf::{KdfLimits, KdfParams};

    /// Rebuilds a header's bytes with different slots, fixing the length
    /// and checksum (not the MAC): what a forger can do without the key.
    fn with_slots(h: &Header, slot_count: u16, slot_bytes: &[u8]) -> Vec<u8> {
        let fixed = &h.as_bytes()[..FIXED_LEN];
        let mut v = fixed.to_vec();
        v[FIXED_LEN - 2..FIXED_LEN].copy_from_slice(&slot_count.to_le_bytes());
        v.extend_from_slice(slot_bytes);
        v.extend_from_slice(&h.mac);
        let total = (v.len() + CHECKSUM_LEN) as u32;
        v[10..14].copy_from_slice(&total.to_le_bytes());
        let sum = blake3::hash(&v);
        v.extend_from_slice(sum.as_bytes());
        v
    }

    #[test]
    fn slot_count_limit_on_write_and_read() {
        let keys: Vec<SlotSpec> = (0..MAX_SLOTS + 1)
            .map(|i| SlotSpec::RawKey(RawKey::from_bytes(&[i as u8; 32]).unwrap()))
            .collect();
        let err = Header::create(&FileParams::default(), &keys).unwrap_err();
        assert!(matches!(err, Error::InvalidParams(_)), "{err}");
        // The most slots a file may have: written, parsed, opened by the last key.
        let (h, _) = Header::create(&FileParams::default(), &keys[..MAX_SLOTS]).unwrap();
        assert_eq!(Header::parse(h.as_bytes()).unwrap().slots.len(), MAX_SLOTS);
        let SlotSpec::RawKey(last) = &keys[MAX_SLOTS - 1] else {
            unreachable!()
        };
        h.unlock(&KeyRing::new().with_raw_key(last.clone())).unwrap();
        // One more slot, forged in: refused at parse time.
        let mut slots = h.as_bytes()[FIXED_LEN..h.len() - MAC_LEN - CHECKSUM_LEN].to_vec();
        let first = slots[..SLOT_PREFIX_LEN + 48].to_vec();
        slots.extend_from_slice(&first);
        let forged = with_slots(&h, (MAX_SLOTS + 1) as u16, &slots);
        let err = Header::parse(&forged).unwrap_err();
        assert!(
            matches!(err, Error::Invalid { region: Region::Header, ref what } if what.contains("slot count")),
            "{err}"
        );
    }

    #[test]
    fn headers_of_many_recipients_are_accepted_up_to_the_size_limit() {
        // 512 X25519 slots: the largest header the format allows (42 KiB).
        let ids: Vec<Identity> = (0..MAX_SLOTS).map(|_| Identity::generate().unwrap()).collect();
        let specs: Vec<SlotSpec> = ids.iter().map(|i| SlotSpec::Recipient(i.recipient())).collect();
        let (h, _) = Header::create(&FileParams::default(), &specs).unwrap();
        assert!(h.len() > 40 * 1024, "{}", h.len());
        let parsed = Header::parse(h.as_bytes()).unwrap();
        parsed
            .unlock(&KeyRing::new().with_identity(ids[MAX_SLOTS - 1].clone()))
            .unwrap();
        // A header length field past the limit is refused before reading it.
        let mut prefix = h.as_bytes()[..PREFIX_LEN].to_vec();
        prefix[10..14].copy_from_slice(&((MAX_HEADER_LEN + 1) as u32).to_le_bytes());
        assert!(matches!(header_len(&prefix), Err(Error::Invalid { .. })));
        prefix[10..14].copy_from_slice(&(MAX_HEADER_LEN as u32).to_le_bytes());
        assert_eq!(header_len(&prefix).unwrap(), MAX_HEADER_LEN);
        prefix[10..14].copy_from_slice(&((MIN_HEADER_LEN - 1) as u32).to_le_bytes());
        assert!(header_len(&prefix).is_err());
    }

    #[test]
    fn unencrypted_files_need_explicit_consent() {
        let none = FileParams {
            suite: Suite::None,
            ..FileParams::default()
        };
        let (h, _) = Header::create(&none, &[]).unwrap();
        let key = RawKey::generate().unwrap();
        for keys in [KeyRing::new(), KeyRing::new().with_raw_key(key.clone())] {
            assert!(matches!(h.unlock(&keys), Err(Error::NotEncrypted)));
        }
        h.unlock(&KeyRing::new().allowing_unencrypted()).unwrap();
        h.unlock(&KeyRing::new().with_raw_key(key).allowing_unencrypted())
            .unwrap();
    }

    /// A slot that unwraps under `kek` to `file_key`, which the header does
    /// not commit to: what an attacker builds for a partitioning oracle (a
    /// real attack makes one slot unwrap under many passphrases; here it
    /// unwraps under one, which is what each of those unwraps looks like).
    fn rewrapped(file_id: &[u8; KEY_LEN], kind: u8, kek: &[u8; KEY_LEN]) -> [u8; slot::WRAPPED_LEN] {
        slot::wrap_key(kek, &slot::slot_aad(file_id, kind), &[0x55; KEY_LEN]).unwrap()
    }

    fn encoded(slots: &[Slot]) -> Vec<u8> {
        let mut v = Vec::new();
        for s in slots {
            s.encode(&mut v);
        }
        v
    }

    #[test]
    fn a_passphrase_slot_that_opens_to_an_uncommitted_key_is_a_wrong_key() {
        let pass = Passphrase::new("guess one");
        let (h, _) = Header::create(
            &FileParams::default(),
            &[SlotSpec::Passphrase(pass.clone(), fast_kdf())],
        )
        .unwrap();
        let Slot::Passphrase { params, salt, .. } = h.slots[0].clone() else {
            unreachable!()
        };
        let kek = crate::kdf::argon2id(&pass, &salt, params).unwrap();
        let crafted = Slot::Passphrase {
            params,
            salt,
            wrapped: rewrapped(&h.file_id, slot::SLOT_PASSPHRASE, &kek),
        };
        let forged = Header::parse(&with_slots(&h, 1, &encoded(&[crafted]))).unwrap();
        let opened_wrong = forged.unlock(&KeyRing::new().with_passphrase(pass)).unwrap_err();
        let did_not_open = forged
            .unlock(&KeyRing::new().with_passphrase(Passphrase::new("guess two")))
            .unwrap_err();
        assert!(matches!(opened_wrong, Error::NoMatchingKey { .. }), "{opened_wrong}");
        assert_eq!(opened_wrong.to_string(), did_not_open.to_string());
        assert_eq!(opened_wrong.class(), did_not_open.class());
    }

    #[test]
    fn a_slot_that_opens_to_an_uncommitted_key_gives_way_to_the_next_slot() {
        let raw = RawKey::generate().unwrap();
        let id = Identity::generate().unwrap();
        let specs = [SlotSpec::RawKey(raw.clone()), SlotSpec::Recipient(id.recipient())];
        let (h, _) = Header::create(&FileParams::default(), &specs).unwrap();
        // Key file: a crafted slot 0 that opens with the same key, then the real one.
        let kek = crate::kdf::hkdf32(raw.expose(), &h.file_id, crate::kdf::LABEL_KEYFILE_SLOT);
        let crafted = Slot::RawKey {
            wrapped: rewrapped(&h.file_id, slot::SLOT_RAW_KEY, &kek),
        };
        let slots = [crafted.clone(), h.slots[0].clone(), h.slots[1].clone()];
        let forged = Header::parse(&with_slots(&h, 3, &encoded(&slots))).unwrap();
        // The MAC was made over the original slots, so a successful unlock
        // stops at the MAC: proof the real slot (not the crafted one) opened.
        let err = forged.unlock(&KeyRing::new().with_raw_key(raw.clone())).unwrap_err();
        assert!(matches!(err, Error::HeaderMacMismatch), "{err}");
        // With only the crafted slot, the same key is simply wrong.
        let only = Header::parse(&with_slots(&h, 2, &encoded(&[crafted, h.slots[1].clone()]))).unwrap();
        let err = only.unlock(&KeyRing::new().with_raw_key(raw)).unwrap_err();
        assert!(matches!(err, Error::NoMatchingKey { .. }), "{err}");
        // The identity still opens its own slot in both.
        let err = only.unlock(&KeyRing::new().with_identity(id)).unwrap_err();
        assert!(matches!(err, Error::HeaderMacMismatch), "{err}");
    }

    #[test]
    fn a_low_order_ephemeral_key_is_a_slot_that_does_not_open() {
        let id = Identity::generate().unwrap();
        let (h, _) = Header::create(&FileParams::default(), &[SlotSpec::Recipient(id.recipient())]).unwrap();
        let Slot::X25519 { wrapped, .. } = h.slots[0].clone() else {
            unreachable!()
        };
        // The all-zero point gives an all-zero shared secret with any key.
        let zero = Slot::X25519 {
            ephemeral: [0; KEY_LEN],
            wrapped,
        };
        let forged = Header::parse(&with_slots(&h, 2, &encoded(&[zero.clone(), h.slots[0].clone()]))).unwrap();
        let keys = KeyRing::new().with_identity(id);
        // Skipped, and the next slot opens (stopping only at the MAC, as above).
        assert!(matches!(forged.unlock(&keys), Err(Error::HeaderMacMismatch)));
        let alone = Header::parse(&with_slots(&h, 1, &encoded(&[zero]))).unwrap();
        assert!(matches!(alone.unlock(&keys), Err(Error::NoMatchingKey { .. })));
    }

    #[test]
    fn unknown_slot_kinds_refuse_the_file() {
        let (h, _) = Header::create(&FileParams::default(), &[SlotSpec::RawKey(RawKey::generate().unwrap())]).unwrap();
        let mut bytes = encoded(&h.slots);
        bytes[0] = 9;
        let err = Header::parse(&with_slots(&h, 1, &bytes)).unwrap_err();
        assert!(matches!(err, Error::UnknownSlotKind { slot: 0, kind: 9 }), "{err}");
    }

    /// Prints the `crafted-passphrase-slot` vector of `docs/FORMAT.md`: a
    /// complete one-chunk file whose passphrase slot was re-wrapped, under the
    /// right passphrase, around a file key the header does not commit to.
    #[test]
    #[ignore = "prints a vector for docs/FORMAT.md"]
    fn print_crafted_passphrase_slot_vector() {
        use crate::digest::{hash_chunk, DigestBuilder};
        use crate::stream::{footer, Index, StreamContext};
        let pass = Passphrase::new("sluice test vector");
        let kdf = KdfParams {
            memory_kib: 256,
            passes: 1,
            lanes: 1,
        };
        let params = FileParams {
            suite: Suite::Aes256Gcm,
            compression: Compression::NONE,
            chunk_size: ChunkSize::parse("4KiB").unwrap(),
        };
        let (h, cipher) = Header::create(&params, &[SlotSpec::Passphrase(pass.clone(), kdf)]).unwrap();
        let ctx = StreamContext::new(h.clone(), cipher);
        let plain = b"hello, sluice\n";
        let mut comp = crate::codec::Compressor::new(Compression::NONE, ChunkSize::default(), false).unwrap();
        let mut body = Vec::new();
        let rh = ctx.seal_chunk(0, plain, &mut comp, &mut body).unwrap();
        let mut digest = DigestBuilder::new();
        digest.push(hash_chunk(0, 4096, plain));
        let index_offset = (h.len() + 12 + body.len()) as u64;
        let index = Index {
            chunk_count: 1,
            plaintext_len: plain.len() as u64,
            index_offset,
            digest: digest.finish(),
            body_lens: vec![rh.body_len],
        };
        let Slot::Passphrase { params: p, salt, .. } = h.slots[0].clone() else {
            unreachable!()
        };
        let kek = crate::kdf::argon2id(&pass, &salt, p).unwrap();
        let crafted = Slot::Passphrase {
            params: p,
            salt,
            wrapped: rewrapped(&h.file_id, slot::SLOT_PASSPHRASE, &kek),
        };
        let mut file = with_slots(&h, 1, &encoded(&[crafted]));
        assert_eq!(file.len(), h.len());
        file.extend_from_slice(&rh.to_bytes());
        file.extend_from_slice(&body);
        file.extend_from_slice(&ctx.seal_index(&index).unwrap());
        file.extend_from_slice(&footer(index_offset));
        let forged = Header::parse(&file).unwrap();
        assert!(matches!(
            forged.unlock(&KeyRing::new().with_passphrase(pass)),
            Err(Error::NoMatchingKey { .. })
        ));
        println!("```vector\nname: crafted-passphrase-slot\npassphrase: sluice test vector\nexpect: wrong-key");
        println!(
            "plaintext: text hello, sluice\\n\nblake3: {}\ncontainer:",
            blake3::hash(plain).to_hex()
        );
        for line in file.chunks(32) {
            println!("{}", line.iter().map(|b| format!("{b:02x}")).collect::<String>());
        }
        println!("```");
    }
}
