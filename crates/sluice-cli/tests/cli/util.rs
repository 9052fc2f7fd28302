//! Shared helpers: a temp dir, sample data, and a command builder.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, data).unwrap();
        p
    }

    /// `sluice` with the working directory set to the temp dir and a clean environment.
    pub fn cmd(&self) -> Command {
        let mut c = Command::cargo_bin("sluice").unwrap();
        c.current_dir(self.dir.path())
            .env_remove("SLUICE_PASSPHRASE")
            .env_remove("SLUICE_THREADS");
        c
    }

    /// A fresh raw key file.
    pub fn key_file(&self, name: &str) -> PathBuf {
        self.cmd().args(["keygen", "--raw", "-o", name]).assert().success();
        self.path(name)
    }

    /// A fresh identity; returns (identity path, recipient string).
    pub fn identity(&self, name: &str) -> (PathBuf, String) {
        let out = self
            .cmd()
            .args(["keygen", "-o", name])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        (self.path(name), String::from_utf8(out).unwrap().trim().to_string())
    }

    /// Files in the temp dir (to check nothing partial was left behind).
    pub fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

/// Compressible text mixed with pseudo-random blocks.
pub fn sample(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let words = b"GET /api/v1/orders 200 12ms user=alice region=eu-west-1\n";
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (i / 100_000) % 3 == 2 {
                x as u8
            } else {
                words[i % words.len()]
            }
        })
        .collect()
}

pub fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

/// Path of the built binary, for shell pipelines.
pub fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("sluice")
}

/// Asserts two byte strings are equal, reporting lengths and the first
/// difference (not the bytes themselves: they can be megabytes).
#[track_caller]
pub fn assert_same_bytes(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got
            .iter()
            .zip(want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "{what}: {} bytes, expected {}; first difference at byte {first}",
            got.len(),
            want.len()
        );
    }
}
