//! End-to-end tests of the real `sluice` binary.

mod abuse;
mod errors;
mod harness;
mod jwt;
mod keys;
mod limits;
mod nodes;
mod observe;
mod push_pull;
mod resumable;
mod roundtrip;
mod s3;
mod serve;
mod settings;
mod shared_state;
mod signals;
mod util;
mod verify_info;
