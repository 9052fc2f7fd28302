//! Full streaming decode of arbitrary bytes with the fixed keys.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    let _ = common::engine().decode(data, &mut out, common::keys(), &sluice_engine::Control::new());
});
