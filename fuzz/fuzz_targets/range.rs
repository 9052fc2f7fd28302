//! Random access: open through footer and index, then read a range chosen
//! by the first 16 bytes of the input.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    if data.len() < 16 {
        return;
    }
    let (sel, file) = data.split_at(16);
    let a = u64::from_le_bytes(sel[..8].try_into().unwrap());
    let b = u64::from_le_bytes(sel[8..].try_into().unwrap());
    if let Ok(archive) = sluice_engine::Archive::open(file, common::keys()) {
        let len = archive.plaintext_len().max(1);
        let (a, b) = (a % len, b % (len + 1));
        let mut out = Vec::new();
        let _ = archive.read_range(common::engine(), a.min(b)..a.max(b), &mut out, &sluice_engine::Control::new());
        let _ = archive.read_range(common::engine(), a..u64::MAX, &mut out, &sluice_engine::Control::new());
    }
});
