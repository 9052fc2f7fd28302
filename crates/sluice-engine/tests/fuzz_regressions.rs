//! Inputs the fuzzers found, kept as regression tests. Keys match
//! `fuzz/fuzz_targets/common.rs`.

use sluice_engine::format::{Identity, KdfLimits, KeyRing, Passphrase, RawKey};
use sluice_engine::{Archive, Control, Engine, EngineConfig, Error};

fn fuzz_keys() -> KeyRing {
    let mut k = KeyRing::new()
        .with_raw_key(RawKey::from_bytes(&[0x42; 32]).unwrap())
        .with_identity(Identity::from_secret_bytes([0x24; 32]))
        .with_passphrase(Passphrase::new("fuzz"))
        .allowing_unencrypted();
    k.kdf_limits = KdfLimits {
        max_memory_kib: 256,
        max_passes: 2,
        max_lanes: 2,
    };
    k
}

/// decode, LeakSanitizer report: chunk 0 fails authentication while later
/// chunks are still in flight. `decode` returned while (a) pool jobs of the
/// operation still held their buffers and (b) the reader thread was still
/// running its thread-local destructors: `std::thread::scope` only waits for
/// the closure, not for the thread to exit. The pipeline now drains its own
/// jobs and joins the reader explicitly before returning, so nothing of an
/// operation outlives the call. Must fail cleanly, every time.
#[test]
fn decode_leak_eae5fb2d_fails_cleanly() {
    let data = include_bytes!("fuzz_regressions/decode-leak-eae5fb2d.bin");
    let e = Engine::new(EngineConfig {
        threads: Some(2),
        in_flight: Some(4),
        ..Default::default()
    })
    .unwrap();
    let keys = fuzz_keys();
    for _ in 0..50 {
        let mut out = Vec::new();
        let err = e.decode(&data[..], &mut out, &keys, &Control::new()).unwrap_err();
        assert!(matches!(err, Error::Format(_)), "{err}");
        assert!(out.is_empty() || err.to_string().contains("chunk"), "{err}");
    }
    let _ = Archive::open(&data[..], &keys);
}
