//! `verify` over mixed sets, and `info`.

use predicates::prelude::*;
use predicates::str::contains;

use crate::util::*;

#[test]
fn verify_mixed_good_and_corrupt() {
    let env = Env::new();
    let key = env.key_file("k.bin");
    let mut names = Vec::new();
    for i in 0..4 {
        env.write(&format!("f{i}"), &sample(200_000 + i * 1000));
        let name = format!("f{i}.sluice");
        env.cmd()
            .args([
                "process",
                &format!("f{i}"),
                "-o",
                &name,
                "--chunk-size",
                "16KiB",
                "--key-file",
            ])
            .arg(&key)
            .assert()
            .success();
        names.push(name);
    }
    env.cmd()
        .arg("verify")
        .args(&names)
        .arg("--key-file")
        .arg(&key)
        .assert()
        .success()
        .stdout(contains("OK").count(4));
    let mut bad = read(&env.path("f1.sluice"));
    let n = bad.len();
    bad[n / 3] ^= 0x80;
    env.write("f1.sluice", &bad);
    let good = read(&env.path("f3.sluice"));
    env.write("f3.sluice", &good[..good.len() / 2]);
    let out = env
        .cmd()
        .arg("verify")
        .args(&names)
        .arg("--key-file")
        .arg(&key)
        .args(["--jobs", "2"])
        .assert()
        .code(4)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("OK") && lines[0].contains("f0.sluice"), "{text}");
    assert!(
        lines[1].starts_with("FAILED") && lines[1].contains("f1.sluice") && lines[1].contains("authentication"),
        "{text}"
    );
    assert!(lines[2].starts_with("OK"), "{text}");
    assert!(
        lines[3].starts_with("FAILED") && lines[3].contains("truncated"),
        "{text}"
    );

    let out = env
        .cmd()
        .arg("verify")
        .args(&names)
        .arg("--key-file")
        .arg(&key)
        .arg("--json")
        .assert()
        .code(4)
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let oks: Vec<bool> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["ok"].as_bool().unwrap())
        .collect();
    assert_eq!(oks, [true, false, true, false]);
    assert_eq!(v[0]["plaintext_len"], 200_000);
    assert_eq!(
        v[0]["blake3"].as_str().unwrap(),
        blake3::hash(&sample(200_000)).to_hex().as_str()
    );
}

#[test]
fn verify_with_wrong_key_says_so() {
    let env = Env::new();
    let k1 = env.key_file("k1.bin");
    let k2 = env.key_file("k2.bin");
    env.write("f", b"abc");
    env.cmd()
        .args(["process", "f", "-o", "f.sluice", "--key-file"])
        .arg(&k1)
        .assert()
        .success();
    env.cmd()
        .args(["verify", "f.sluice", "--key-file"])
        .arg(&k2)
        .assert()
        .code(5)
        .stdout(contains("wrong key"));
}

#[test]
fn info_without_a_key() {
    let env = Env::new();
    let (_, r) = env.identity("id.key");
    env.write("f", &sample(300_000));
    env.cmd()
        .args([
            "process",
            "f",
            "-o",
            "f.sluice",
            "--chunk-size",
            "64KiB",
            "--encrypt",
            "chacha20poly1305",
            "--compress",
            "lz4",
            "-r",
            &r,
            "-r",
            &r,
        ])
        .assert()
        .success();
    env.cmd().args(["info", "f.sluice"]).assert().success().stdout(
        contains("chacha20poly1305")
            .and(contains("lz4"))
            .and(contains("x25519, x25519"))
            .and(contains("300000")),
    );
    let out = env
        .cmd()
        .args(["info", "--json", "f.sluice"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["chunks"], 5);
    assert_eq!(v["chunk_size"], 65536);
    assert_eq!(v["plaintext_len"], 300_000);
    assert_eq!(
        v["container_len"],
        std::fs::metadata(env.path("f.sluice")).unwrap().len()
    );
    // From a pipe too.
    let bytes = read(&env.path("f.sluice"));
    env.cmd()
        .args(["info", "-"])
        .write_stdin(bytes)
        .assert()
        .success()
        .stdout(contains("5 ("));
}
