//! Round trips across sizes, suites, codecs, key sources and thread counts.

mod common;

use common::*;
use proptest::prelude::*;
use sluice_engine::format::{KeyRing, Suite};
use sluice_engine::{inspect, Archive, Control, OutputFile};

const SUITES: [Suite; 3] = [Suite::Aes256Gcm, Suite::ChaCha20Poly1305, Suite::None];
const CODECS: [&str; 4] = ["zstd", "zstd:-3", "lz4", "none"];

#[test]
fn every_size_suite_codec_and_key_source() {
    let e = engine(3);
    let chunk = 16 * 1024;
    let sizes = [0, 1, chunk - 1, chunk, chunk + 1, 7 * chunk + 123];
    let data = sample(8 * chunk, 1);
    for case in key_cases() {
        for suite in SUITES {
            for codec in CODECS {
                let o = opts(suite, codec, "16KiB", case.slots.clone());
                for &len in &sizes {
                    let plain = &data[..len];
                    let file = encode(&e, plain, &o);
                    let keys = if suite.is_encrypted() {
                        case.keys.clone()
                    } else {
                        KeyRing::new().allowing_unencrypted()
                    };
                    let back = decode(&e, &file, &keys)
                        .unwrap_or_else(|err| panic!("{} {suite:?} {codec} {len}: {err}", case.name));
                    assert!(back == plain, "{} {suite:?} {codec} {len}: mismatch", case.name);
                    let info = inspect(std::io::Cursor::new(&file)).unwrap();
                    assert_eq!(info.plaintext_len, len as u64);
                    assert_eq!(info.container_len, file.len() as u64);
                }
            }
        }
    }
}

#[test]
fn digest_equals_plain_blake3_and_is_authenticated() {
    let e = engine(2);
    let data = sample(300_000, 2);
    let o = opts(Suite::None, "zstd", "64KiB", vec![]);
    let mut file = Vec::new();
    let s = e.encode(&data[..], &mut file, &o, &Control::new()).unwrap();
    assert_eq!(s.digest, *blake3::hash(&data).as_bytes());
    let d = e
        .verify(&file[..], &KeyRing::new().allowing_unencrypted(), &Control::new())
        .unwrap();
    assert_eq!(d.digest, s.digest);
    assert_eq!(d.plaintext_len, data.len() as u64);
}

#[test]
fn thread_count_and_in_flight_do_not_change_the_result() {
    let data = sample(1_000_000, 3);
    let cases = key_cases();
    let case = &cases[2];
    let o = opts(Suite::Aes256Gcm, "zstd", "16KiB", case.slots.clone());
    let mut sizes = Vec::new();
    for (threads, in_flight) in [(1, 2), (2, 3), (4, 16), (8, 64)] {
        let e = sluice_engine::Engine::new(sluice_engine::EngineConfig {
            threads: Some(threads),
            in_flight: Some(in_flight),
            ..Default::default()
        })
        .unwrap();
        let file = encode(&e, &data, &o);
        sizes.push(file.len());
        // Decode with a different thread count from the one that encoded.
        assert_eq!(decode(&engine(3), &file, &case.keys).unwrap(), data);
    }
    assert!(sizes.windows(2).all(|w| w[0] == w[1]), "sizes differ: {sizes:?}");
}

#[test]
fn decode_to_file_writes_chunks_in_place() {
    let e = engine(3);
    let data = sample(700_000, 6);
    let cases = key_cases();
    let case = &cases[2];
    for codec in CODECS {
        let o = opts(Suite::Aes256Gcm, codec, "16KiB", case.slots.clone());
        let file = encode(&e, &data, &o);
        let mut stale = tempfile_in_target();
        // Stale, longer content must not survive: the file ends where the data does.
        std::io::Write::write_all(&mut stale, &vec![0xEE; 900_000]).unwrap();
        let mut out = OutputFile::new(stale, true);
        let s = e
            .decode_to_file(&file[..], &mut out, &case.keys, &Control::new())
            .unwrap();
        assert_eq!(s.plaintext_len, data.len() as u64);
        out.sync().unwrap();
        let mut back = Vec::new();
        let mut written = out.file().try_clone().unwrap();
        std::io::Seek::seek(&mut written, std::io::SeekFrom::Start(0)).unwrap();
        std::io::Read::read_to_end(&mut written, &mut back).unwrap();
        assert!(back == data, "{codec}");
        // Damage is still reported, by chunk.
        let mut bad = file.clone();
        let at = bad.len() / 2;
        bad[at] ^= 1;
        let err = e
            .decode_to_file(&bad[..], &mut out, &case.keys, &Control::new())
            .unwrap_err();
        assert!(err.to_string().contains("chunk"), "{err}");
    }
}

fn tempfile_in_target() -> std::fs::File {
    let dir = std::env::temp_dir();
    let path = dir.join(format!(
        "sluice-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    let _ = std::fs::remove_file(&path);
    f
}

#[test]
fn incompressible_chunks_are_stored_raw() {
    let e = engine(2);
    let mut data = vec![0u8; 512 * 1024];
    sluice_engine::format::kdf::random_bytes(&mut data).unwrap();
    let o = opts(Suite::None, "zstd", "64KiB", vec![]);
    let mut file = Vec::new();
    let s = e.encode(&data[..], &mut file, &o, &Control::new()).unwrap();
    assert_eq!(s.compressed_chunks, 0);
    assert!(
        file.len() < data.len() + 8 * 64 + 1024,
        "raw storage overhead too large: {}",
        file.len()
    );
}

#[test]
fn random_ranges_read_only_the_chunks_they_need() {
    let e = engine(2);
    let chunk = 4096u64;
    let data = sample(50 * chunk as usize + 77, 4);
    let cases = key_cases();
    let case = &cases[1];
    let o = opts(Suite::ChaCha20Poly1305, "lz4", "4KiB", case.slots.clone());
    let file = encode(&e, &data, &o);
    let archive = Archive::open(&file, &case.keys).unwrap();
    assert_eq!(archive.plaintext_len(), data.len() as u64);
    let mut rng = 12345u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let len = data.len() as u64;
    let mut ranges = vec![
        (0, 0),
        (0, len),
        (len - 1, len),
        (chunk - 1, chunk + 1),
        (chunk, 2 * chunk),
    ];
    for _ in 0..60 {
        let a = next() % (len + 1);
        let b = next() % (len + 1);
        ranges.push((a.min(b), a.max(b)));
    }
    for (a, b) in ranges {
        let mut out = Vec::new();
        let s = archive.read_range(&e, a..b, &mut out, &Control::new()).unwrap();
        assert_eq!(out, &data[a as usize..b as usize], "range {a}..{b}");
        let expect_chunks = if a == b { 0 } else { (b - 1) / chunk - a / chunk + 1 };
        assert_eq!(s.chunks_read, expect_chunks, "range {a}..{b}");
    }
    let err = archive
        .read_range(&e, 5..len + 1, &mut Vec::new(), &Control::new())
        .unwrap_err();
    assert!(matches!(err, sluice_engine::Error::RangeOutOfBounds { .. }), "{err}");
}

#[test]
fn range_reads_touch_only_needed_bytes_one_read_per_chunk() {
    use sluice_engine::ReadAt;
    use std::sync::{Arc, Mutex};
    /// A source that records every (offset, length) it reads.
    struct Spy {
        inner: Vec<u8>,
        touched: Arc<Mutex<Vec<(u64, usize)>>>,
    }
    impl ReadAt for Spy {
        fn size(&self) -> std::io::Result<u64> {
            self.inner.size()
        }
        fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
            self.touched.lock().unwrap().push((offset, buf.len()));
            self.inner.read_exact_at(buf, offset)
        }
    }
    let e = engine(2);
    let data = sample(64 * 4096, 5);
    let case = key_cases().remove(2);
    let o = opts(Suite::Aes256Gcm, "none", "4KiB", case.slots);
    let file = encode(&e, &data, &o);
    let touched = Arc::new(Mutex::new(Vec::new()));
    let spy = Spy {
        inner: file,
        touched: Arc::clone(&touched),
    };
    let archive = Archive::open(spy, &case.keys).unwrap();
    let offsets = archive.index().offsets(archive.header().len() as u64);
    touched.lock().unwrap().clear();
    let mut out = Vec::new();
    // Bytes 10*4096+5 .. 11*4096+5 touch chunks 10 and 11 only.
    archive.read_range(&e, 40965..45061, &mut out, &Control::new()).unwrap();
    assert_eq!(out, &data[40965..45061]);
    let reads = touched.lock().unwrap().clone();
    assert_eq!(
        reads,
        vec![
            (offsets[10], (offsets[11] - offsets[10]) as usize),
            (offsets[11], (offsets[12] - offsets[11]) as usize)
        ],
        "one read per chunk, record header and body together"
    );
}

#[test]
fn one_opened_archive_serves_concurrent_ranges_and_file_targets() {
    let e = engine(2);
    let data = sample(40 * 4096 + 99, 8);
    let case = key_cases().remove(1);
    let o = opts(Suite::Aes256Gcm, "zstd:1", "4KiB", case.slots);
    let file = encode(&e, &data, &o);
    let archive = Archive::open(file, &case.keys).unwrap();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (archive, e, data) = (archive.clone(), &e, &data);
            s.spawn(move || {
                let a = t * 30_000 + 7;
                let b = a + 41_000;
                let mut out = Vec::new();
                archive.read_range(e, a..b, &mut out, &Control::new()).unwrap();
                assert_eq!(out, &data[a as usize..b as usize]);
            });
        }
    });
    // The same range written into a file by the workers, at its offsets.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("range");
    let mut out = OutputFile::new(std::fs::File::create(&path).unwrap(), true);
    let s = archive
        .restore_range(
            &e,
            5000..150_000,
            sluice_engine::Target::File(&mut out),
            &Control::new(),
        )
        .unwrap();
    drop(out);
    assert_eq!(s.bytes, 145_000);
    assert_eq!(std::fs::read(&path).unwrap(), &data[5000..150_000]);
    // Another source holding the same bytes reuses the opened index.
    let again = archive.with_source(archive.source().clone());
    let mut out = Vec::new();
    again.read_range(&e, 0..10, &mut out, &Control::new()).unwrap();
    assert_eq!(out, &data[..10]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]
    #[test]
    fn prop_round_trip(len in 0usize..200_000, log2 in 12u32..16, seed in any::<u64>(), suite_i in 0usize..3, codec_i in 0usize..4, threads in 1usize..5) {
        let e = engine(threads);
        let data = sample(len, seed);
        let cases = key_cases();
        let case = &cases[2];
        let o = opts(SUITES[suite_i], CODECS[codec_i], &format!("{}", 1u64 << log2), case.slots.clone());
        let file = encode(&e, &data, &o);
        let keys = if SUITES[suite_i].is_encrypted() { case.keys.clone() } else { KeyRing::new().allowing_unencrypted() };
        prop_assert_eq!(decode(&e, &file, &keys).unwrap(), data);
    }
}

#[test]
fn stored_chunks_as_zstd_frames_decode_to_the_plaintext() {
    use sluice_engine::format::{zstd_frames, Codec, Decompressor};
    let e = engine(2);
    let chunk = 64 * 1024;
    // Compressible chunks and incompressible ones (stored raw), and a short last chunk.
    let mut data = sample(3 * chunk, 4);
    let mut x = 88_172_645_463_325_252u64;
    data.extend((0..2 * chunk + 777).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    }));
    for codec in ["zstd", "lz4"] {
        let o = opts(Suite::ChaCha20Poly1305, codec, "64KiB", key_cases()[0].slots.clone());
        let file = encode(&e, &data, &o);
        let archive = Archive::open(&file[..], &key_cases()[0].keys).unwrap();
        let mut stream = Vec::new();
        let (mut framed, mut raw) = (0, 0);
        for read in archive.record_reads(&(0..data.len() as u64)).unwrap() {
            let record = file[read.bytes.start as usize..read.bytes.end as usize].to_vec();
            let stored = archive.unseal_record(read.index, record).unwrap();
            let compressed = stored.compressed;
            let plain = stored.plain_len;
            raw += usize::from(!compressed);
            match stored.into_zstd_frame() {
                Some((buf, range)) => {
                    let frame = &buf[range];
                    let max = zstd_frames::max_frame_len(chunk);
                    assert_eq!(zstd_frames::frame_len(frame, max).unwrap(), Some(frame.len()));
                    let mut out = Vec::new();
                    Decompressor::new()
                        .decompress(Codec::Zstd, frame, &mut out, plain)
                        .unwrap();
                    let start = read.index as usize * chunk;
                    assert_eq!(out, &data[start..start + plain]);
                    stream.extend_from_slice(frame);
                    framed += 1;
                }
                None => assert!(
                    codec == "lz4" && compressed,
                    "only another codec's chunks have no frame"
                ),
            }
        }
        if codec == "zstd" {
            assert_eq!(framed, 6);
            assert_eq!(raw, 3, "the random chunks are stored raw");
            // Also one stream, decoded frame after frame.
            assert_eq!(zstd_frames_decoder(&stream), data);
        }
    }
}

/// Every frame of `stream` decoded in turn, as an HTTP client decodes a
/// `Content-Encoding: zstd` body.
fn zstd_frames_decoder(stream: &[u8]) -> Vec<u8> {
    use sluice_engine::format::{zstd_frames, Codec, Decompressor};
    let mut out = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let n = zstd_frames::frame_len(&stream[at..], usize::MAX).unwrap().unwrap();
        let len = zstd_frames::content_size(&stream[at..at + n]).unwrap() as usize;
        let mut piece = Vec::new();
        Decompressor::new()
            .decompress(Codec::Zstd, &stream[at..at + n], &mut piece, len)
            .unwrap();
        out.extend_from_slice(&piece);
        at += n;
    }
    out
}
