//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use sluice_engine::format::{
    ChunkSize, Compression, FileParams, Identity, KdfParams, KeyRing, Passphrase, RawKey, SlotSpec, Suite,
};
use sluice_engine::{Control, EncodeOptions, Engine, EngineConfig};

/// Argon2 parameters small enough for hundreds of test round trips.
pub fn fast_kdf() -> KdfParams {
    KdfParams {
        memory_kib: 256,
        passes: 1,
        lanes: 1,
    }
}

/// Half compressible text, half pseudo-random bytes, deterministic.
pub fn sample(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let words = b"the quick brown fox jumps over lazy dogs while sluice compresses logs ";
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (i / 5000) % 2 == 0 {
                words[(i + (x as usize % 3)) % words.len()]
            } else {
                x as u8
            }
        })
        .collect()
}

/// One way of keying a file: the slot to write and the key ring that opens it.
pub struct KeyCase {
    pub name: &'static str,
    pub slots: Vec<SlotSpec>,
    pub keys: KeyRing,
}

pub fn key_cases() -> Vec<KeyCase> {
    let id = Identity::generate().unwrap();
    let id2 = Identity::generate().unwrap();
    let raw = RawKey::generate().unwrap();
    let pass = Passphrase::new("correct horse battery staple");
    vec![
        KeyCase {
            name: "passphrase",
            slots: vec![SlotSpec::Passphrase(pass.clone(), fast_kdf())],
            keys: KeyRing::new().with_passphrase(pass),
        },
        KeyCase {
            name: "x25519",
            slots: vec![
                SlotSpec::Recipient(id2.recipient()),
                SlotSpec::Recipient(id.recipient()),
            ],
            keys: KeyRing::new().with_identity(id),
        },
        KeyCase {
            name: "key-file",
            slots: vec![SlotSpec::RawKey(raw.clone())],
            keys: KeyRing::new().with_raw_key(raw),
        },
    ]
}

pub fn engine(threads: usize) -> Engine {
    Engine::new(EngineConfig {
        threads: Some(threads),
        in_flight: None,
        ..Default::default()
    })
    .unwrap()
}

pub fn opts(suite: Suite, compression: &str, chunk: &str, slots: Vec<SlotSpec>) -> EncodeOptions {
    EncodeOptions {
        params: FileParams {
            suite,
            compression: Compression::parse(compression).unwrap(),
            chunk_size: ChunkSize::parse(chunk).unwrap(),
        },
        slots: if suite.is_encrypted() { slots } else { vec![] },
        adaptive: true,
    }
}

pub fn encode(e: &Engine, data: &[u8], o: &EncodeOptions) -> Vec<u8> {
    let mut out = Vec::new();
    e.encode(data, &mut out, o, &Control::new()).unwrap();
    out
}

pub fn decode(e: &Engine, file: &[u8], keys: &KeyRing) -> Result<Vec<u8>, sluice_engine::Error> {
    let mut out = Vec::new();
    e.decode(file, &mut out, keys, &Control::new()).map(|_| out)
}
