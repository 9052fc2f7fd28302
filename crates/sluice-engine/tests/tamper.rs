//! The tamper matrix: every region flipped, truncated, reordered, spliced
//! or extended must fail with its own specific error, and whatever plaintext
//! was written before the failure must be a true prefix of the original.

mod common;

use common::*;
use sluice_engine::format::{
    Error as F, Identity, KeyRing, Passphrase, RawKey, RecordHeader, RecordKind, Region, SlotSpec, Suite, TruncatedAt,
    RECORD_HEADER_LEN, TAG_LEN,
};
use sluice_engine::{Archive, Control, Error};

const CHUNK: usize = 4096;

/// A file of 6 chunks (the last one short) with its layout.
struct Fixture {
    plain: Vec<u8>,
    file: Vec<u8>,
    keys: KeyRing,
    header_len: usize,
    /// Start offset of each chunk record, then of the index record.
    records: Vec<usize>,
    footer: usize,
}

fn fixture_with(slots: Vec<SlotSpec>, keys: KeyRing, plain: Vec<u8>) -> Fixture {
    let e = engine(2);
    let o = opts(Suite::Aes256Gcm, "zstd", "4KiB", slots);
    let file = encode(&e, &plain, &o);
    let archive = Archive::open(&file, &keys).unwrap();
    let header_len = archive.header().len();
    let mut records: Vec<usize> = archive
        .index()
        .offsets(header_len as u64)
        .into_iter()
        .map(|o| o as usize)
        .collect();
    records.push(archive.index().index_offset as usize);
    Fixture {
        plain,
        footer: file.len() - 16,
        file,
        keys,
        header_len,
        records,
    }
}

fn fixture() -> Fixture {
    let key = RawKey::from_bytes(&[42; 32]).unwrap();
    fixture_with(
        vec![SlotSpec::RawKey(key.clone())],
        KeyRing::new().with_raw_key(key),
        sample(5 * CHUNK + 100, 9),
    )
}

/// Decodes `file`, checks partial output is a prefix of `plain`, returns the error.
fn decode_err(f: &Fixture, file: &[u8], keys: &KeyRing) -> Error {
    let mut out = Vec::new();
    let err = engine(2)
        .decode(file, &mut out, keys, &Control::new())
        .expect_err("tampered file decoded successfully");
    assert!(
        f.plain.starts_with(&out),
        "unauthenticated or wrong plaintext was written before: {err}"
    );
    err
}

fn flip(file: &[u8], at: usize) -> Vec<u8> {
    let mut v = file.to_vec();
    v[at] ^= 0x04;
    v
}

/// Flip a byte and repair the header checksum, as an attacker would.
fn forge(file: &[u8], at: usize, header_len: usize) -> Vec<u8> {
    let mut v = flip(file, at);
    let sum = blake3::hash(&v[..header_len - 32]);
    v[header_len - 32..header_len].copy_from_slice(sum.as_bytes());
    v
}

#[test]
fn untouched_fixture_decodes() {
    let f = fixture();
    assert_eq!(decode(&engine(2), &f.file, &f.keys).unwrap(), f.plain);
    assert_eq!(f.records.len(), 7);
}

#[test]
fn header_flips() {
    let f = fixture();
    let h = f.header_len;
    let e = |at: usize| decode_err(&f, &flip(&f.file, at), &f.keys);
    assert!(matches!(e(0), Error::Format(F::NotSluice)));
    assert!(matches!(e(7), Error::Format(F::NotSluice)));
    assert!(matches!(e(8), Error::Format(F::UnsupportedVersion(5))));
    // Header length: either out of range, or the checksum no longer lines up.
    let err = e(12);
    assert!(
        matches!(
            err,
            Error::Format(F::Invalid {
                region: Region::Header,
                ..
            }) | Error::Format(F::HeaderCorrupted)
        ),
        "{err}"
    );
    // Every field, the commitment, the slot, the MAC and the checksum itself:
    // accidental damage is caught by the checksum before anything is parsed.
    for at in [
        14,
        15,
        16,
        17,
        18,
        20,
        51,
        52,
        83,
        84,
        86,
        90,
        h - 64,
        h - 33,
        h - 32,
        h - 1,
    ] {
        assert!(
            matches!(e(at), Error::Format(F::HeaderCorrupted)),
            "offset {at}: {}",
            e(at)
        );
    }
}

#[test]
fn forged_header_changes_are_caught_by_mac_commitment_or_slot() {
    let f = fixture();
    let h = f.header_len;
    let e = |at: usize| decode_err(&f, &forge(&f.file, at, h), &f.keys);
    assert!(
        matches!(
            e(14),
            Error::Format(F::Invalid { .. }) | Error::Format(F::UnknownSuite(_))
        ),
        "{}",
        e(14)
    );
    assert!(matches!(e(15), Error::Format(F::UnknownCodec(5))), "{}", e(15));
    assert!(
        matches!(
            e(17),
            Error::Format(F::Invalid {
                region: Region::Header,
                ..
            })
        ),
        "{}",
        e(17)
    );
    assert!(
        matches!(
            e(18),
            Error::Format(F::Invalid {
                region: Region::Header,
                ..
            })
        ),
        "{}",
        e(18)
    );
    // File id: the slot is bound to it, so the key no longer opens it.
    assert!(matches!(e(30), Error::Format(F::NoMatchingKey { .. })), "{}", e(30));
    // Commitment: the slot opens, but to a key the forged commitment does not
    // match; that is one more way of not unlocking, reported as a wrong key.
    assert!(matches!(e(60), Error::Format(F::NoMatchingKey { .. })), "{}", e(60));
    assert!(matches!(e(100), Error::Format(F::NoMatchingKey { .. })), "{}", e(100));
    assert!(
        matches!(e(h - 40), Error::Format(F::HeaderMacMismatch)),
        "{}",
        e(h - 40)
    );
    // A level change is a valid header but not the signed one.
    assert!(matches!(e(16), Error::Format(F::HeaderMacMismatch)), "{}", e(16));
}

#[test]
fn chunk_flips() {
    let f = fixture();
    for (i, w) in f.records.windows(2).enumerate().take(6) {
        let (start, end) = (w[0], w[1]);
        let i = i as u64;
        // Body, tag (last byte of the record).
        for at in [start + RECORD_HEADER_LEN, start + RECORD_HEADER_LEN + 7, end - 1] {
            let err = decode_err(&f, &flip(&f.file, at), &f.keys);
            assert!(
                matches!(err, Error::Format(F::ChunkAuth { chunk }) if chunk == i),
                "chunk {i} at {at}: {err}"
            );
        }
        // Record header: flags and lengths are bound by the associated data.
        for at in [start + 1, start + 4, start + 9] {
            let err = decode_err(&f, &flip(&f.file, at), &f.keys);
            assert!(
                matches!(err, Error::Format(F::ChunkAuth { chunk }) if chunk == i)
                    || matches!(err, Error::Format(F::Invalid { region: Region::Chunk(c), .. }) if c == i),
                "chunk {i} header at {at}: {err}"
            );
        }
    }
}

#[test]
fn index_and_footer_flips() {
    let f = fixture();
    let idx = f.records[6];
    for at in [idx + RECORD_HEADER_LEN, idx + RECORD_HEADER_LEN + 30, f.footer - 1] {
        let err = decode_err(&f, &flip(&f.file, at), &f.keys);
        assert!(matches!(err, Error::Format(F::IndexAuth)), "index at {at}: {err}");
    }
    for at in [f.footer, f.footer + 8, f.footer + 15] {
        let err = decode_err(&f, &flip(&f.file, at), &f.keys);
        assert!(
            matches!(
                err,
                Error::Format(F::Invalid {
                    region: Region::Footer,
                    ..
                })
            ),
            "footer at {at}: {err}"
        );
    }
    // Random access goes through the footer and the index first.
    for at in [f.footer, idx + 20] {
        let res = Archive::open(flip(&f.file, at), &f.keys);
        assert!(res.is_err(), "archive opened with damage at {at}");
    }
}

#[test]
fn truncation_everywhere_is_named() {
    let f = fixture();
    let h = f.header_len;
    let e = |len: usize| decode_err(&f, &f.file[..len], &f.keys);
    assert!(matches!(e(0), Error::Format(F::NotSluice)));
    assert!(matches!(e(5), Error::Format(F::HeaderTruncated)));
    assert!(matches!(e(h - 1), Error::Format(F::HeaderTruncated)));
    assert!(
        matches!(e(h), Error::Format(F::Truncated(TruncatedAt::AfterHeader))),
        "{}",
        e(h)
    );
    for i in 0..6 {
        let at_boundary = e(f.records[i + 1]);
        if i < 5 {
            assert!(
                matches!(at_boundary, Error::Format(F::Truncated(TruncatedAt::AfterChunk(c))) if c == i as u64),
                "{at_boundary}"
            );
        } else {
            assert!(
                matches!(at_boundary, Error::Format(F::Truncated(TruncatedAt::AfterChunk(5)))),
                "{at_boundary}"
            );
        }
        let inside = e(f.records[i] + 20);
        assert!(
            matches!(inside, Error::Format(F::Truncated(TruncatedAt::InsideChunk(c))) if c == i as u64),
            "{inside}"
        );
        let in_rh = e(f.records[i] + 3);
        assert!(
            matches!(in_rh, Error::Format(F::Truncated(TruncatedAt::InsideChunk(c))) if c == i as u64),
            "{in_rh}"
        );
    }
    assert!(matches!(
        e(f.records[6] + 20),
        Error::Format(F::Truncated(TruncatedAt::InsideIndex))
    ));
    assert!(matches!(
        e(f.footer),
        Error::Format(F::Truncated(TruncatedAt::InsideFooter))
    ));
    assert!(matches!(
        e(f.file.len() - 1),
        Error::Format(F::Truncated(TruncatedAt::InsideFooter))
    ));
    assert!(Archive::open(&f.file[..f.file.len() - 1], &f.keys).is_err());
}

fn splice(f: &Fixture, parts: &[(usize, usize)]) -> Vec<u8> {
    let mut v = f.file[..f.header_len].to_vec();
    for &(a, b) in parts {
        v.extend_from_slice(&f.file[a..b]);
    }
    v.extend_from_slice(&f.file[f.records[6]..]);
    v
}

#[test]
fn dropped_duplicated_and_swapped_chunks() {
    let f = fixture();
    let r = &f.records;
    let rec = |i: usize| (r[i], r[i + 1]);
    // Drop chunk 2: what arrives as chunk 2 is chunk 3, sealed for another position.
    let dropped = splice(&f, &[rec(0), rec(1), rec(3), rec(4), rec(5)]);
    assert!(matches!(
        decode_err(&f, &dropped, &f.keys),
        Error::Format(F::ChunkAuth { chunk: 2 })
    ));
    let dup = splice(&f, &[rec(0), rec(1), rec(1), rec(2), rec(3), rec(4), rec(5)]);
    assert!(matches!(
        decode_err(&f, &dup, &f.keys),
        Error::Format(F::ChunkAuth { chunk: 2 })
    ));
    let swapped = splice(&f, &[rec(0), rec(2), rec(1), rec(3), rec(4), rec(5)]);
    assert!(matches!(
        decode_err(&f, &swapped, &f.keys),
        Error::Format(F::ChunkAuth { chunk: 1 })
    ));
    // Dropping the last chunk: the index no longer matches the chunk count.
    let no_last = splice(&f, &[rec(0), rec(1), rec(2), rec(3), rec(4)]);
    let err = decode_err(&f, &no_last, &f.keys);
    assert!(
        matches!(
            err,
            Error::Format(F::Invalid {
                region: Region::Index,
                ..
            }) | Error::Format(F::IndexAuth)
        ),
        "{err}"
    );
}

#[test]
fn chunk_spliced_from_another_file_with_the_same_passphrase() {
    let pass = Passphrase::new("same passphrase");
    let plain = sample(5 * CHUNK + 100, 9);
    let mk = || {
        fixture_with(
            vec![SlotSpec::Passphrase(pass.clone(), fast_kdf())],
            KeyRing::new().with_passphrase(pass.clone()),
            plain.clone(),
        )
    };
    let (a, b) = (mk(), mk());
    let mut v = a.file.clone();
    // Same plaintext, same lengths: replace chunk 3 of A with chunk 3 of B.
    assert_eq!(a.records, b.records);
    v[a.records[3]..a.records[4]].copy_from_slice(&b.file[b.records[3]..b.records[4]]);
    assert!(matches!(
        decode_err(&a, &v, &a.keys),
        Error::Format(F::ChunkAuth { chunk: 3 })
    ));
    // The whole header of B on A's body: every chunk is bound to A's header.
    let mut w = b.file[..b.header_len].to_vec();
    w.extend_from_slice(&a.file[a.header_len..]);
    assert!(matches!(
        decode_err(&a, &w, &a.keys),
        Error::Format(F::ChunkAuth { chunk: 0 })
    ));
}

#[test]
fn appended_bytes_are_rejected() {
    let f = fixture();
    for extra in [&b"x"[..], &[0u8; 100], &f.file[f.header_len..f.records[1]]] {
        let mut v = f.file.clone();
        v.extend_from_slice(extra);
        assert!(matches!(decode_err(&f, &v, &f.keys), Error::Format(F::TrailingData)));
        assert!(Archive::open(v, &f.keys).is_err());
    }
}

#[test]
fn wrong_keys() {
    let f = fixture();
    let wrong_raw = KeyRing::new().with_raw_key(RawKey::from_bytes(&[43; 32]).unwrap());
    assert!(matches!(
        decode_err(&f, &f.file, &wrong_raw),
        Error::Format(F::NoMatchingKey { .. })
    ));
    let id = KeyRing::new().with_identity(Identity::generate().unwrap());
    assert!(matches!(
        decode_err(&f, &f.file, &id),
        Error::Format(F::MissingKey { .. })
    ));
    assert!(matches!(
        decode_err(&f, &f.file, &KeyRing::new()),
        Error::Format(F::MissingKey { .. })
    ));

    let pass = Passphrase::new("right");
    let p = fixture_with(
        vec![SlotSpec::Passphrase(pass.clone(), fast_kdf())],
        KeyRing::new().with_passphrase(pass),
        sample(100, 1),
    );
    let wrong = KeyRing::new().with_passphrase(Passphrase::new("wrong"));
    assert!(matches!(
        decode_err(&p, &p.file, &wrong),
        Error::Format(F::NoMatchingKey { .. })
    ));

    let owner = Identity::generate().unwrap();
    let x = fixture_with(
        vec![SlotSpec::Recipient(owner.recipient())],
        KeyRing::new().with_identity(owner),
        sample(100, 1),
    );
    let stranger = KeyRing::new().with_identity(Identity::generate().unwrap());
    let err = decode_err(&x, &x.file, &stranger);
    assert!(matches!(err, Error::Format(F::NoMatchingKey { .. })), "{err}");
    assert!(err.to_string().contains("identity"), "{err}");
}

#[test]
fn hostile_kdf_cost_is_refused_before_work() {
    let pass = Passphrase::new("p");
    let p = fixture_with(
        vec![SlotSpec::Passphrase(pass.clone(), fast_kdf())],
        KeyRing::new().with_passphrase(pass.clone()),
        sample(100, 1),
    );
    // Raise the memory cost to 64 GiB in the slot and repair the checksum.
    let mut v = p.file.clone();
    let slot_body = 86 + 3;
    v[slot_body..slot_body + 4].copy_from_slice(&(64u32 * 1024 * 1024).to_le_bytes());
    let sum = blake3::hash(&v[..p.header_len - 32]);
    v[p.header_len - 32..p.header_len].copy_from_slice(sum.as_bytes());
    let err = decode_err(&p, &v, &KeyRing::new().with_passphrase(pass));
    assert!(matches!(err, Error::Format(F::KdfCostTooHigh { .. })), "{err}");
}

#[test]
fn garbage_is_not_sluice() {
    let f = fixture();
    for junk in [&b""[..], b"hello world", &[0u8; 4096], b"\x89SLUICE"] {
        let err = decode_err(&f, junk, &f.keys);
        assert!(
            matches!(err, Error::Format(F::NotSluice) | Error::Format(F::HeaderTruncated)),
            "{err}"
        );
    }
}

/// Replaces the 12-byte record header at `at` (no key needed: it is cleartext).
fn with_record_header(file: &[u8], at: usize, rh: RecordHeader) -> Vec<u8> {
    let mut v = file.to_vec();
    v[at..at + RECORD_HEADER_LEN].copy_from_slice(&rh.to_bytes());
    v
}

#[test]
fn hostile_record_headers_are_refused_before_their_bodies_are_read() {
    let f = fixture();
    let r0 = f.records[0];
    let data = |compressed, plain_len: u32, body_len: u32| RecordHeader {
        kind: RecordKind::Data,
        compressed,
        plain_len,
        body_len,
    };
    let tag = TAG_LEN as u32;
    let chunk = CHUNK as u32;
    // Each is refused by the bounds check, not by authentication: the reader
    // never sized a buffer from the claimed lengths.
    for rh in [
        data(false, chunk + 1, chunk + 1 + tag),
        data(false, 0, tag),
        data(false, u32::MAX - tag, u32::MAX),
        data(true, 100, tag),
        data(true, 100, 100 + tag),
        data(false, 100, 100 + tag + 1),
    ] {
        let err = decode_err(&f, &with_record_header(&f.file, r0, rh), &f.keys);
        assert!(
            matches!(
                err,
                Error::Format(F::Invalid {
                    region: Region::Chunk(0),
                    ..
                })
            ),
            "{rh:?}: {err}"
        );
    }
    // The index record claiming ~4 GiB: refused as an invalid index record,
    // not read (which would report truncation after a huge allocation).
    let idx = f.records[6];
    let huge = RecordHeader {
        kind: RecordKind::Index,
        compressed: false,
        plain_len: u32::MAX - tag,
        body_len: u32::MAX,
    };
    let err = decode_err(&f, &with_record_header(&f.file, idx, huge), &f.keys);
    assert!(
        matches!(
            err,
            Error::Format(F::Invalid {
                region: Region::Index,
                ..
            })
        ),
        "{err}"
    );
    let err = Archive::open(with_record_header(&f.file, idx, huge), &f.keys).expect_err("opened");
    assert!(
        matches!(
            err,
            Error::Format(F::Invalid {
                region: Region::Footer,
                ..
            })
        ),
        "random access bounds the index by the file size: {err}"
    );
    // One entry more than the chunks read: refused before authentication.
    let plain = 56 + 4 * 7;
    let one_more = RecordHeader {
        plain_len: plain,
        body_len: plain + tag,
        ..huge
    };
    let err = decode_err(&f, &with_record_header(&f.file, idx, one_more), &f.keys);
    assert!(
        matches!(
            err,
            Error::Format(F::Invalid {
                region: Region::Index,
                ..
            })
        ),
        "{err}"
    );
}

#[test]
fn an_unencrypted_file_in_place_of_an_encrypted_one_is_refused() {
    let f = fixture();
    // What an attacker writes: any content, no key needed.
    let forged = encode(
        &engine(2),
        b"attacker's content",
        &opts(Suite::None, "zstd", "4KiB", vec![]),
    );
    let err = decode_err(&f, &forged, &f.keys);
    assert!(matches!(err, Error::Format(F::NotEncrypted)), "{err}");
    assert!(matches!(
        Archive::open(&forged, &f.keys).err(),
        Some(Error::Format(F::NotEncrypted))
    ));
    // Even with no key at all, the library expects encryption unless told otherwise.
    assert!(matches!(
        decode(&engine(2), &forged, &KeyRing::new()),
        Err(Error::Format(F::NotEncrypted))
    ));
    // Explicitly allowed: it opens.
    let allowed = f.keys.clone().allowing_unencrypted();
    assert_eq!(decode(&engine(2), &forged, &allowed).unwrap(), b"attacker's content");
}
