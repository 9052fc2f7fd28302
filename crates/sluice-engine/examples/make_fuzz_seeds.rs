//! Writes the fuzzers' seed corpus: real containers of every suite,
//! compression and key kind, made with the fixed keys the fuzz targets use.
//!
//! `cargo run --example make_fuzz_seeds -- fuzz/corpus`

use std::path::PathBuf;

use sluice_engine::format::{
    ChunkSize, Compression, FileParams, Identity, KdfParams, Passphrase, RawKey, SlotSpec, Suite,
};
use sluice_engine::{Control, EncodeOptions, Engine, EngineConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus".into()));
    let engine = Engine::new(EngineConfig {
        threads: Some(1),
        in_flight: None,
        ..Default::default()
    })?;
    let raw = RawKey::from_bytes(&[0x42; 32])?;
    let id = Identity::from_secret_bytes([0x24; 32]);
    let pass = Passphrase::new("fuzz");
    let key_kinds: Vec<(&str, Vec<SlotSpec>)> = vec![
        ("keyfile", vec![SlotSpec::RawKey(raw)]),
        (
            "x25519",
            vec![
                SlotSpec::Recipient(id.recipient()),
                SlotSpec::Recipient(Identity::generate()?.recipient()),
            ],
        ),
        (
            "passphrase",
            vec![SlotSpec::Passphrase(
                pass,
                KdfParams {
                    memory_kib: 64,
                    passes: 1,
                    lanes: 1,
                },
            )],
        ),
    ];
    let texts: [(&str, Vec<u8>); 3] = [
        ("empty", Vec::new()),
        ("small", b"hello, sluice fuzzing seed\n".repeat(3)),
        (
            "chunks",
            (0..10_000u32)
                .map(|i| {
                    if i % 3000 < 1500 {
                        b"abcdefgh"[(i % 8) as usize]
                    } else {
                        (i.wrapping_mul(2654435761) >> 13) as u8
                    }
                })
                .collect(),
        ),
    ];
    let mut n = 0;
    for suite in [Suite::Aes256Gcm, Suite::ChaCha20Poly1305, Suite::None] {
        for comp in ["zstd:1", "lz4", "none"] {
            for (kname, slots) in &key_kinds {
                if !suite.is_encrypted() && *kname != "keyfile" {
                    continue;
                }
                for (tname, text) in &texts {
                    let opts = EncodeOptions {
                        params: FileParams {
                            suite,
                            compression: Compression::parse(comp)?,
                            chunk_size: ChunkSize::parse("4KiB")?,
                        },
                        slots: if suite.is_encrypted() { slots.clone() } else { vec![] },
                        adaptive: true,
                    };
                    let mut file = Vec::new();
                    engine.encode(&text[..], &mut file, &opts, &Control::new())?;
                    let name = format!("{}-{}-{}-{}", suite.name(), comp.replace(':', ""), kname, tname);
                    for target in ["header", "decode", "inspect"] {
                        let d = dir.join(target);
                        std::fs::create_dir_all(&d)?;
                        std::fs::write(d.join(&name), &file)?;
                    }
                    // The range target reads a 16-byte range selector first.
                    let d = dir.join("range");
                    std::fs::create_dir_all(&d)?;
                    let mut with_sel = vec![0u8; 8];
                    with_sel.extend_from_slice(&5000u64.to_le_bytes());
                    with_sel.extend_from_slice(&file);
                    std::fs::write(d.join(&name), with_sel)?;
                    n += 1;
                }
            }
        }
    }
    eprintln!("wrote {n} seed containers per target into {}", dir.display());
    Ok(())
}
