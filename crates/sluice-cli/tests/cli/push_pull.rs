//! End-to-end: `sluice push` (resumable, parallel parts) and `sluice pull`
//! (whole as zstd frames, in parallel ranges and in one stream, a range, stdout) against a live server; a push killed past 60 %
//! resumes from the parts the server already holds.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::util::*;

const MIB: usize = 1 << 20;

/// `sluice` as a client of the service: the token in `SLUICE_TOKEN`, its
/// resume records in the test's directory.
pub(crate) fn client(env: &Env, token: &str) -> Command {
    let mut c = Command::new(bin());
    c.env("SLUICE_TOKEN", token)
        .env("XDG_CACHE_HOME", env.path("cache"))
        .stdin(Stdio::null());
    c
}

/// `sluice push FILE --server BASE --key KEY` as `client` runs it; the
/// caller adds part size, parallelism and output handling.
pub(crate) fn push(env: &Env, token: &str, file: &std::path::Path, base: &str, key: &str) -> Command {
    let mut c = client(env, token);
    c.args(["push", file.to_str().unwrap(), "--server", base, "--key", key]);
    c
}

/// The upload id a push remembers (its resume record).
fn remembered_upload(env: &Env) -> Option<String> {
    let dir = env.path("cache/sluice/push");
    let entry = std::fs::read_dir(dir).ok()?.flatten().next()?;
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(entry.path()).ok()?).ok()?;
    v["upload"].as_str().map(str::to_string)
}

#[test]
fn push_resumes_after_being_killed_and_pull_fetches_whole_and_ranges() {
    let env = Env::new();
    let token = tenant(&env, "acme", "write");
    // The pusher's own token: rate limits are per token, the test watches with the other.
    let pusher = tenant(&env, "acme", "write");
    let s = Server::start(&env, &[]);
    let data = sample(60 * MIB + 77);
    let file = env.write("big.bin", &data);

    // Slow the pusher down (about 10 parts/s) so it can be killed midway.
    admin(&env, &["tenant", "set", "acme", "--rate", "10/s", "--burst", "10"]);
    std::thread::sleep(Duration::from_millis(1500));
    let mut pushing = push(&env, &pusher, &file, &s.base, "up/big.bin")
        .args(["--part-size", "1MiB", "--parallel", "1", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let stored = 'watch: loop {
        assert!(Instant::now() < deadline, "the push made no progress");
        if let Some(id) = remembered_upload(&env) {
            let u = get(&s, &token, &format!("/v1/uploads/{id}")).json();
            let n = u["received"].as_array().map_or(0, Vec::len);
            if n >= 37 {
                Command::new("kill")
                    .args(["-KILL", &pushing.id().to_string()])
                    .status()
                    .unwrap();
                let _ = pushing.wait();
                // This token is rate limited too: retry past a 429.
                loop {
                    let r = get(&s, &token, &format!("/v1/uploads/{id}"));
                    if r.status == 200 {
                        break 'watch r.json();
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        assert!(
            pushing.try_wait().unwrap().is_none(),
            "the push ended before it was killed"
        );
        std::thread::sleep(Duration::from_millis(30));
    };
    let before = stored["received"].as_array().unwrap().len();
    assert!((37..61).contains(&before), "killed at {before} of 61 parts");
    assert_eq!(stored["state"], "open");

    admin(
        &env,
        &["tenant", "set", "acme", "--rate", "default", "--burst", "default"],
    );
    std::thread::sleep(Duration::from_millis(1500));
    let out = push(&env, &pusher, &file, &s.base, "up/big.bin")
        .args(["--part-size", "1MiB", "--parallel", "4", "--quiet"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("resuming upload") && stderr.contains(&format!("{before} of 61")),
        "{stderr}"
    );
    assert!(
        remembered_upload(&env).is_none(),
        "the resume record is forgotten once done"
    );

    // Whole, to a file and to stdout; a range.
    let whole = env.path("whole.bin");
    let out = client(&env, &token)
        .args([
            "pull",
            "up/big.bin",
            "--server",
            &s.base,
            "-o",
            whole.to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_same_bytes(&read(&whole), &data, "pulled content (8 zstd frames)");
    // Chunks of another codec than zstd come in parallel ranges instead.
    let p = put(
        &s,
        &token,
        "/v1/pipelines/quick",
        br#"{"compress":"lz4","chunk_size":"4MiB"}"#,
    );
    assert_eq!(p.status, 200, "{}", String::from_utf8_lossy(&p.body));
    let up = put(&s, &token, "/v1/objects/up/lz4.bin?pipeline=quick&wait=true", &data);
    assert_eq!(up.status, 201, "{}", String::from_utf8_lossy(&up.body));
    let ranged = env.path("ranged.bin");
    let out = client(&env, &token)
        .args([
            "pull",
            "up/lz4.bin",
            "--server",
            &s.base,
            "--parallel",
            "4",
            "--quiet",
            "-o",
        ])
        .arg(&ranged)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_same_bytes(&read(&ranged), &data, "pulled content (4 ranges at once)");
    let one_stream = env.path("one-stream.bin");
    let out = client(&env, &token)
        .args([
            "pull",
            "up/big.bin",
            "--server",
            &s.base,
            "--parallel",
            "1",
            "--quiet",
            "-o",
        ])
        .arg(&one_stream)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_same_bytes(&read(&one_stream), &data, "pulled content (one stream)");
    let out = client(&env, &token)
        .args([
            "pull",
            "up/big.bin",
            "--server",
            &s.base,
            "--range",
            "12345..3000000",
            "-o",
            "-",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_same_bytes(&out.stdout, &data[12345..3_000_000], "pulled range");

    // Errors name the problem; nothing is left behind.
    let out = client(&env, &token)
        .args([
            "pull",
            "up/missing.bin",
            "--server",
            &s.base,
            "-o",
            env.path("m.bin").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not_found"));
    assert!(!env.path("m.bin").exists());
    let out = Command::new(bin())
        .env_remove("SLUICE_TOKEN")
        .args(["push", file.to_str().unwrap(), "--server", &s.base])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SLUICE_TOKEN"));
}
