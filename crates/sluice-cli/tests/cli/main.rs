//! End-to-end tests of the real `sluice` binary.

mod errors;
mod keys;
mod roundtrip;
mod serve;
mod signals;
mod util;
mod verify_info;
