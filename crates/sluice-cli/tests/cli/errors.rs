//! Bad input and refusals: a clear line, the right exit code, nothing left behind.

use predicates::prelude::*;
use predicates::str::contains;

use crate::util::*;

#[test]
fn refuses_to_overwrite_and_to_clobber_the_input() {
    let env = Env::new();
    env.write("f", b"data");
    env.write("existing", b"keep me");
    env.cmd()
        .args(["process", "f", "-o", "existing", "--encrypt", "none"])
        .assert()
        .code(2)
        .stderr(contains("already exists"));
    assert_eq!(read(&env.path("existing")), b"keep me");
    env.cmd()
        .args(["process", "f", "-o", "existing", "--encrypt", "none", "--force"])
        .assert()
        .success();
    env.cmd()
        .args(["process", "f", "-o", "f", "--encrypt", "none", "--force"])
        .assert()
        .code(2)
        .stderr(contains("same file"));
    assert_eq!(read(&env.path("f")), b"data");
    env.cmd()
        .args(["process", "f", "-o", "./f", "--encrypt", "none", "--force"])
        .assert()
        .code(2);
    // A FIFO (or a device: /dev/null) is never replaced by a regular file.
    let fifo = env.path("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    env.cmd()
        .args(["process", "f", "-o", "fifo", "--encrypt", "none", "--force"])
        .assert()
        .code(2)
        .stderr(contains("not a regular file"));
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
}

#[test]
fn corrupt_and_truncated_files_leave_no_output() {
    let env = Env::new();
    let data = sample(600_000);
    env.write("f", &data);
    let key = env.key_file("k.bin");
    env.cmd()
        .args(["process", "f", "-o", "c.sluice", "--chunk-size", "64KiB", "--key-file"])
        .arg(&key)
        .assert()
        .success();
    let good = read(&env.path("c.sluice"));
    let mut bad = good.clone();
    let mid = good.len() / 2;
    bad[mid] ^= 1;
    env.write("bad.sluice", &bad);
    env.write("short.sluice", &good[..good.len() - 100]);
    let before = env.files();
    env.cmd()
        .args(["restore", "bad.sluice", "-o", "out", "--key-file"])
        .arg(&key)
        .assert()
        .code(4)
        .stderr(contains("error: bad.sluice: chunk").and(contains("failed authentication")));
    env.cmd()
        .args(["restore", "short.sluice", "-o", "out", "--key-file"])
        .arg(&key)
        .assert()
        .code(4)
        .stderr(contains("truncated"));
    assert_eq!(env.files(), before, "partial output or temp file left behind");
    env.cmd()
        .args(["restore", "f", "-o", "out", "--key-file"])
        .arg(&key)
        .assert()
        .code(4)
        .stderr(contains("not a sluice file"));
    env.cmd()
        .args(["info", "f"])
        .assert()
        .code(4)
        .stderr(contains("not a sluice file"));
    assert_eq!(env.files(), before);
}

#[test]
fn io_faults_are_named() {
    let env = Env::new();
    env.write("f", &sample(100_000));
    env.cmd()
        .args(["process", "missing", "-o", "o", "--encrypt", "none"])
        .assert()
        .code(3)
        .stderr(contains("missing"));
    // Opens fine, then every read fails with EIO: an unreadable input.
    env.cmd()
        .args(["process", "/proc/self/mem", "-o", "m.sluice", "--encrypt", "none"])
        .assert()
        .code(3)
        .stderr(contains("error: /proc/self/mem: reading input: Input/output error"));
    assert!(!env
        .files()
        .iter()
        .any(|f| f.starts_with(".m.sluice") || f == "m.sluice"));
    std::fs::create_dir(env.path("d")).unwrap();
    env.cmd()
        .args(["process", "d", "-o", "o", "--encrypt", "none"])
        .assert()
        .code(2)
        .stderr(contains("directory"));
    env.cmd()
        .args(["process", "f", "-o", "d", "--encrypt", "none", "--force"])
        .assert()
        .code(2)
        .stderr(contains("directory"));
    env.cmd()
        .args(["process", "f", "-o", "nodir/o", "--encrypt", "none"])
        .assert()
        .code(3);
    // A full disk: standard output on /dev/full.
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = std::process::Command::new(bin())
        .args(["process", "f", "-o", "-", "--encrypt", "none"])
        .current_dir(env.dir.path())
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("writing output") && err.contains("No space"), "{err}");
    assert!(!env.path("o").exists());
}

#[test]
fn bad_flags_are_usage_errors() {
    let env = Env::new();
    env.write("f", b"x");
    for args in [
        vec!["process", "f", "-o", "o", "--encrypt", "rot13"],
        vec!["process", "f", "-o", "o", "--encrypt", "none", "--compress", "gzip"],
        vec!["process", "f", "-o", "o", "--encrypt", "none", "--compress", "zstd:99"],
        vec!["process", "f", "-o", "o", "--encrypt", "none", "--chunk-size", "3MiB"],
        vec!["process", "f", "-o", "o", "--encrypt", "none", "--chunk-size", "1GiB"],
        vec!["frobnicate"],
        vec!["verify"],
    ] {
        env.cmd().args(&args).assert().code(2);
    }
    assert!(!env.path("o").exists());
}

#[test]
fn help_and_version() {
    let env = Env::new();
    env.cmd().arg("--version").assert().success().stdout(contains("sluice"));
    for c in ["process", "restore", "verify", "info", "keygen"] {
        env.cmd()
            .args([c, "--help"])
            .assert()
            .success()
            .stdout(contains("Examples"));
    }
    env.cmd()
        .arg("--help")
        .assert()
        .success()
        .stdout(contains("Exit codes"));
}

#[test]
fn bench_measures_a_grid_and_recommends() {
    let env = Env::new();
    env.write("sample", &sample(3 << 20));
    let out = env
        .cmd()
        .args([
            "bench",
            "sample",
            "--codecs",
            "lz4,zstd:3",
            "--chunk-sizes",
            "1MiB,8MiB",
            "--json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["sample_bytes"], 3 << 20);
    let rows = doc["results"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for row in rows {
        assert!(row["process_mib_s"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["output_bytes"].as_u64().unwrap() > 0, "{row}");
    }
    assert!(doc["recommended"]["flags"].as_str().unwrap().starts_with("--compress "));
    // Nothing is written beside the sample.
    assert_eq!(env.files(), vec!["sample".to_string()]);
    env.cmd()
        .args(["bench", "sample", "--chunk-sizes", "3MiB"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--chunk-sizes"));
    env.cmd()
        .args(["bench", "missing-file"])
        .assert()
        .code(3)
        .stderr(predicates::str::contains("missing-file"));
}
