//! Key-less inspection (framing walk) of arbitrary bytes, seeking and streaming.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let a = sluice_engine::inspect(std::io::Cursor::new(data));
    let b = sluice_engine::inspect_stream(data);
    assert_eq!(a.is_ok(), b.is_ok(), "seeking and streaming inspection disagree");
});
