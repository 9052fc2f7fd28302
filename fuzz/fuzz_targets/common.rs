// Shared by the fuzz targets: the fixed keys the seed corpus is made with
// (see crates/sluice-engine/examples/make_fuzz_seeds.rs) and a small engine.

use std::sync::OnceLock;

use sluice_engine::format::{Identity, KdfLimits, KeyRing, Passphrase, RawKey};
use sluice_engine::{Engine, EngineConfig};

pub fn keys() -> &'static KeyRing {
    static KEYS: OnceLock<KeyRing> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut k = KeyRing::new()
            .with_raw_key(RawKey::from_bytes(&[0x42; 32]).unwrap())
            .with_identity(Identity::from_secret_bytes([0x24; 32]))
            .with_passphrase(Passphrase::new("fuzz"))
            .allowing_unencrypted();
        // Seeds use tiny Argon2 costs; anything bigger is refused, not run.
        k.kdf_limits = KdfLimits { max_memory_kib: 256, max_passes: 2, max_lanes: 2 };
        k
    })
}

pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::new(EngineConfig { threads: Some(2), in_flight: Some(4), ..Default::default() }).unwrap())
}
