//! Every key source, multiple recipients, wrong keys.

use predicates::prelude::*;
use predicates::str::contains;

use crate::util::*;

#[test]
fn recipients_each_can_decrypt() {
    let env = Env::new();
    env.write("f", b"multi-recipient secret");
    let (id1, r1) = env.identity("one.key");
    let (id2, r2) = env.identity("two.key");
    let (id3, r3) = env.identity("three.key");
    env.write("recipients.txt", format!("# team\n{r2}\n\n{r3}\n").as_bytes());
    env.cmd()
        .args(["process", "f", "-o", "f.sluice", "-r", &r1, "-R", "recipients.txt"])
        .assert()
        .success();
    for id in [&id1, &id2, &id3] {
        let out = env
            .cmd()
            .args(["restore", "f.sluice", "-o", "-", "-i"])
            .arg(id)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        assert_eq!(out, b"multi-recipient secret");
    }
    // keygen -y shows the same recipient as keygen printed.
    let shown = env
        .cmd()
        .args(["keygen", "-y"])
        .arg(&id1)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(String::from_utf8(shown).unwrap().trim(), r1);
    let (stranger, _) = env.identity("stranger.key");
    env.cmd()
        .args(["restore", "f.sluice", "-o", "out", "-i"])
        .arg(&stranger)
        .assert()
        .code(5)
        .stderr(contains("f.sluice").and(contains("wrong key")));
    assert!(!env.path("out").exists());
}

#[test]
fn passphrase_from_file_and_env() {
    let env = Env::new();
    env.write("f", b"passphrase data");
    env.write("pass.txt", b"correct horse\n");
    env.write("wrong.txt", b"incorrect horse\n");
    env.cmd()
        .args(["process", "f", "-o", "a.sluice", "--passphrase-file", "pass.txt"])
        .assert()
        .success();
    env.cmd()
        .env("SLUICE_PASSPHRASE", "correct horse")
        .args(["process", "f", "-o", "b.sluice"])
        .assert()
        .success();
    for c in ["a.sluice", "b.sluice"] {
        env.cmd()
            .args(["restore", c, "-o", "-", "--passphrase-file", "pass.txt"])
            .assert()
            .success()
            .stdout("passphrase data");
        env.cmd()
            .env("SLUICE_PASSPHRASE", "correct horse")
            .args(["restore", c, "-o", "-"])
            .assert()
            .success();
        env.cmd()
            .args(["restore", c, "-o", "out", "--passphrase-file", "wrong.txt"])
            .assert()
            .code(5)
            .stderr(contains("wrong key"));
        // No terminal, no passphrase source: a clear error, not a hang.
        env.cmd()
            .args(["restore", c, "-o", "out"])
            .assert()
            .code(5)
            .stderr(contains("passphrase"));
    }
    assert!(!env.path("out").exists());
    // info tells the kind of slot without a key.
    env.cmd()
        .args(["info", "a.sluice"])
        .assert()
        .success()
        .stdout(contains("passphrase").and(contains("64 MiB")));
}

#[test]
fn passphrase_is_never_a_flag_value() {
    let env = Env::new();
    env.write("f", b"x");
    env.cmd()
        .args(["process", "f", "-o", "o", "--passphrase=hunter2"])
        .assert()
        .code(2);
    env.cmd()
        .args(["process", "f", "-o", "o", "-p", "hunter2"])
        .assert()
        .code(2);
    // -p without a terminal cannot prompt.
    env.cmd()
        .args(["process", "f", "-o", "o", "-p"])
        .assert()
        .code(2)
        .stderr(contains("terminal"));
    assert!(!env.path("o").exists());
}

#[test]
fn key_file_rules() {
    let env = Env::new();
    env.write("f", b"data");
    env.write("short.key", &[1u8; 31]);
    env.cmd()
        .args(["process", "f", "-o", "o", "--key-file", "short.key"])
        .assert()
        .code(2)
        .stderr(contains("32 bytes"));
    let k1 = env.key_file("k1.bin");
    let k2 = env.key_file("k2.bin");
    env.cmd()
        .args(["process", "f", "-o", "f.sluice", "--key-file"])
        .arg(&k1)
        .assert()
        .success();
    env.cmd()
        .args(["restore", "f.sluice", "-o", "out", "--key-file"])
        .arg(&k2)
        .assert()
        .code(5);
    env.cmd()
        .args(["restore", "f.sluice", "-o", "-", "--key-file"])
        .arg(&k1)
        .assert()
        .success()
        .stdout("data");
    // Key files are created 0600 and never overwritten.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&k1).unwrap().permissions().mode() & 0o777, 0o600);
    env.cmd()
        .args(["keygen", "--raw", "-o", "k1.bin"])
        .assert()
        .code(2)
        .stderr(contains("already exists"));
    env.cmd().args(["keygen", "-o", "k1.bin"]).assert().code(2);
}

#[test]
fn key_source_combinations_are_checked() {
    let env = Env::new();
    env.write("f", b"data");
    env.write("pass.txt", b"pw\n");
    let k = env.key_file("k.bin");
    env.cmd()
        .args(["process", "f", "-o", "o"])
        .assert()
        .code(2)
        .stderr(contains("no key given"));
    env.cmd()
        .args(["process", "f", "-o", "o", "--passphrase-file", "pass.txt", "--key-file"])
        .arg(&k)
        .assert()
        .code(2)
        .stderr(contains("stands alone"));
    env.cmd()
        .args(["process", "f", "-o", "o", "--encrypt", "none", "--key-file"])
        .arg(&k)
        .assert()
        .code(2);
    env.cmd()
        .args(["process", "f", "-o", "o", "-r", "sluice1notarecipient"])
        .assert()
        .code(2)
        .stderr(contains("recipient"));
}
