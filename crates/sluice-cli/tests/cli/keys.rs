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

#[test]
fn an_unencrypted_file_is_refused_where_a_key_was_given() {
    let env = Env::new();
    env.write("f", b"the real backup");
    env.write("evil", b"the attacker's content");
    let k = env.key_file("k.bin");
    env.cmd()
        .args(["process", "f", "-o", "f.sluice", "--key-file"])
        .arg(&k)
        .assert()
        .success();
    // The attacker replaces the encrypted container with one of their own.
    env.cmd()
        .args(["process", "evil", "-o", "f.sluice", "--encrypt", "none", "--force"])
        .assert()
        .success();
    env.cmd()
        .args(["restore", "f.sluice", "-o", "out", "--key-file"])
        .arg(&k)
        .assert()
        .code(4)
        .stderr(contains("not encrypted").and(contains("--allow-unencrypted")));
    assert!(!env.path("out").exists());
    env.cmd()
        .args(["verify", "f.sluice", "--key-file"])
        .arg(&k)
        .assert()
        .code(4)
        .stdout(contains("FAILED").and(contains("not encrypted")));
    env.cmd()
        .env("SLUICE_PASSPHRASE", "some passphrase")
        .args(["restore", "f.sluice", "-o", "-"])
        .assert()
        .code(4);
    // Explicitly allowed, or no key given at all: accepted.
    env.cmd()
        .args(["restore", "f.sluice", "-o", "-", "--allow-unencrypted", "--key-file"])
        .arg(&k)
        .assert()
        .success()
        .stdout("the attacker's content");
    env.cmd()
        .args(["verify", "f.sluice"])
        .assert()
        .success()
        .stdout(contains("OK"));
}

/// The container of a passphrase-protected file with one Argon2 field of its
/// slot replaced and the header checksum repaired (the MAC is not needed to
/// reach the check).
fn with_argon2_field(file: &[u8], field: usize, value: u32) -> Vec<u8> {
    let header_len = u32::from_le_bytes(file[10..14].try_into().unwrap()) as usize;
    let at = 86 + 3 + 4 * field;
    let mut v = file.to_vec();
    v[at..at + 4].copy_from_slice(&value.to_le_bytes());
    let sum = blake3::hash(&v[..header_len - 32]);
    v[header_len - 32..header_len].copy_from_slice(sum.as_bytes());
    v
}

#[test]
fn argon2_costs_a_file_asks_for() {
    let env = Env::new();
    env.write("f", b"kdf");
    env.write("pass.txt", b"pw\n");
    env.cmd()
        .args(["process", "f", "-o", "f.sluice", "--passphrase-file", "pass.txt"])
        .assert()
        .success();
    let file = read(&env.path("f.sluice"));
    // Parameters Argon2 itself refuses are a broken file (4), not a usage error (2).
    for (field, value) in [(1, 0u32), (2, 0), (0, 4)] {
        env.write("bad.sluice", &with_argon2_field(&file, field, value));
        env.cmd()
            .args([
                "restore",
                "bad.sluice",
                "-o",
                "out",
                "--passphrase-file",
                "pass.txt",
                "--force",
            ])
            .assert()
            .code(4)
            .stderr(contains("key slot 0"));
    }
    // Costs over the reader's caps are refused before any work (6), and the
    // hint names the flag that raises each cap.
    for (flag, cap) in [
        ("--max-kdf-memory", "32"),
        ("--max-kdf-passes", "2"),
        ("--max-kdf-lanes", "3"),
    ] {
        env.cmd()
            .args(["verify", "f.sluice", "--passphrase-file", "pass.txt", flag, cap])
            .assert()
            .code(6)
            .stdout(contains(flag));
    }
    env.cmd()
        .args([
            "verify",
            "f.sluice",
            "--passphrase-file",
            "pass.txt",
            "--max-kdf-memory",
            "64",
        ])
        .assert()
        .success();
}

#[test]
fn passphrase_bytes_are_the_first_line_exactly() {
    let env = Env::new();
    env.write("f", b"spaces matter");
    env.write("pass.txt", b"  two words  \r\nsecond line ignored\n");
    env.write("empty.txt", b"\nsecond line\n");
    env.cmd()
        .args(["process", "f", "-o", "f.sluice", "--passphrase-file", "pass.txt"])
        .assert()
        .success();
    env.cmd()
        .env("SLUICE_PASSPHRASE", "  two words  ")
        .args(["restore", "f.sluice", "-o", "-"])
        .assert()
        .success()
        .stdout("spaces matter");
    for other in ["two words", "  two words  \r", "  two words"] {
        env.cmd()
            .env("SLUICE_PASSPHRASE", other)
            .args(["restore", "f.sluice", "-o", "-"])
            .assert()
            .code(5);
    }
    env.cmd()
        .args(["restore", "f.sluice", "-o", "-", "--passphrase-file", "empty.txt"])
        .assert()
        .code(2)
        .stderr(contains("empty"));
}
