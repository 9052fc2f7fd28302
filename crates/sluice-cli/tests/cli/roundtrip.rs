//! Round trips through the binary: flags, pipes and ranges.

use predicates::str::contains;

use crate::util::*;

#[test]
fn suites_codecs_and_chunk_sizes() {
    let env = Env::new();
    let data = sample(700_000);
    env.write("in.bin", &data);
    let key = env.key_file("k.bin");
    let key = key.to_str().unwrap();
    for (enc, comp, chunk) in [
        ("aes256gcm", "zstd:3", "64KiB"),
        ("chacha20poly1305", "lz4", "4KiB"),
        ("aes256gcm", "none", "1MiB"),
        ("none", "zstd:19", "256KiB"),
        ("none", "none", "4MiB"),
    ] {
        let keyargs: Vec<&str> = if enc == "none" { vec![] } else { vec!["--key-file", key] };
        env.cmd()
            .args([
                "process",
                "in.bin",
                "-o",
                "c.sluice",
                "--force",
                "--encrypt",
                enc,
                "--compress",
                comp,
                "--chunk-size",
                chunk,
            ])
            .args(&keyargs)
            .assert()
            .success();
        env.cmd()
            .args(["restore", "c.sluice", "-o", "out.bin", "--force"])
            .args(&keyargs)
            .assert()
            .success();
        assert!(read(&env.path("out.bin")) == data, "{enc} {comp} {chunk}");
    }
}

#[test]
fn default_output_names() {
    let env = Env::new();
    env.write("notes.txt", b"hello sluice");
    let key = env.key_file("k.bin");
    env.cmd()
        .args(["process", "notes.txt", "--key-file"])
        .arg(&key)
        .assert()
        .success();
    assert!(env.path("notes.txt.sluice").exists());
    std::fs::remove_file(env.path("notes.txt")).unwrap();
    env.cmd()
        .args(["restore", "notes.txt.sluice", "--key-file"])
        .arg(&key)
        .assert()
        .success();
    assert_eq!(read(&env.path("notes.txt")), b"hello sluice");
}

#[test]
fn pipes_both_ways() {
    let env = Env::new();
    let data = sample(3_000_000);
    env.write("f", &data);
    env.key_file("k.bin");
    let script = format!(
        "set -o pipefail; cat f | {b} process - -o - --key-file k.bin | {b} restore - -o - --key-file k.bin | cmp - f",
        b = bin().display()
    );
    let st = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(env.dir.path())
        .status()
        .unwrap();
    assert!(st.success(), "pipeline failed");
    // Without -o, standard input goes to standard output.
    let out = env
        .cmd()
        .args(["process", "-", "--encrypt", "none"])
        .write_stdin(data.clone())
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let back = env
        .cmd()
        .args(["restore", "-"])
        .write_stdin(out)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(back == data);
}

#[test]
fn byte_ranges() {
    let env = Env::new();
    let data = sample(1_000_000);
    env.write("f", &data);
    let key = env.key_file("k.bin");
    env.cmd()
        .args(["process", "f", "-o", "f.sluice", "--chunk-size", "64KiB", "--key-file"])
        .arg(&key)
        .assert()
        .success();
    for (spec, a, b) in [
        ("0..10", 0, 10),
        ("65535..65537", 65535, 65537),
        ("999990..", 999_990, 1_000_000),
        ("123456..654321", 123_456, 654_321),
        ("5..5", 5, 5),
    ] {
        let out = env
            .cmd()
            .args(["restore", "f.sluice", "-o", "-", "--range", spec, "--key-file"])
            .arg(&key)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        assert!(out == data[a..b], "range {spec}");
    }
    env.cmd()
        .args(["restore", "f.sluice", "-o", "-", "--range", "10..2000000", "--key-file"])
        .arg(&key)
        .assert()
        .code(2)
        .stderr(contains("outside the original data"));
    env.cmd()
        .args(["restore", "-", "-o", "-", "--range", "0..10", "--key-file"])
        .arg(&key)
        .write_stdin(read(&env.path("f.sluice")))
        .assert()
        .code(2)
        .stderr(contains("seekable"));
    env.cmd()
        .args(["restore", "f.sluice", "-o", "x", "--range", "9..3", "--key-file"])
        .arg(&key)
        .assert()
        .code(2);
}

#[test]
fn threads_flag_and_env() {
    let env = Env::new();
    let data = sample(500_000);
    env.write("f", &data);
    env.cmd()
        .args([
            "-j",
            "1",
            "process",
            "f",
            "-o",
            "a.sluice",
            "--encrypt",
            "none",
            "--chunk-size",
            "64KiB",
        ])
        .assert()
        .success();
    env.cmd()
        .env("SLUICE_THREADS", "3")
        .args(["restore", "a.sluice", "-o", "a.out"])
        .assert()
        .success();
    assert!(read(&env.path("a.out")) == data);
    env.cmd()
        .args(["--threads", "0", "info", "a.sluice"])
        .assert()
        .success();
    env.cmd()
        .args(["--threads", "0", "restore", "a.sluice", "-o", "b"])
        .assert()
        .code(2)
        .stderr(contains("threads"));
}
