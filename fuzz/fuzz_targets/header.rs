//! Header and key-slot parsing, then unlocking with the fixed keys.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let _ = sluice_engine::format::header_len(data);
    if let Ok(h) = sluice_engine::format::Header::parse(data) {
        let _ = h.unlock(common::keys());
    }
    if data.len() >= 16 {
        let _ = sluice_engine::format::parse_footer(&data[..16]);
    }
    if let Ok(rh) = <[u8; 12]>::try_from(&data[..data.len().min(12)]) {
        let _ = sluice_engine::format::RecordHeader::parse(&rh, sluice_engine::format::Region::Index);
    }
});
