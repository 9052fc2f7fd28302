//! Ctrl-C or kill in the middle of a run leaves no partial output.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

fn interrupt_mid_run(signal: &str) {
    let env = Env::new();
    // An endless input keeps the process busy until the signal arrives.
    let mut child = Command::new(bin())
        .args([
            "process",
            "/dev/zero",
            "-o",
            "out.sluice",
            "--encrypt",
            "none",
            "--compress",
            "none",
        ])
        .current_dir(env.dir.path())
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the temporary file exists and has grown.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let growing = env.files().iter().any(|f| f.ends_with(".sluice-tmp"));
        if growing || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let st = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "exit status after {signal}: {status:?}");
    assert_eq!(env.files(), Vec::<String>::new(), "left behind after {signal}");
}

#[test]
fn sigint_leaves_nothing() {
    interrupt_mid_run("-INT");
}

#[test]
fn sigterm_leaves_nothing() {
    interrupt_mid_run("-TERM");
}

#[test]
fn input_that_shrinks_while_read_is_an_error() {
    let env = Env::new();
    let data = sample(24 << 20);
    env.write("big", &data);
    // Slow settings and a tiny read-ahead so the truncation lands mid-read.
    let child = Command::new(bin())
        .args([
            "-j",
            "1",
            "--in-flight",
            "2",
            "process",
            "big",
            "-o",
            "big.sluice",
            "--encrypt",
            "none",
        ])
        .args(["--compress", "zstd:19", "--chunk-size", "64KiB", "--no-adaptive"])
        .current_dir(env.dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let f = std::fs::OpenOptions::new().write(true).open(env.path("big")).unwrap();
    f.set_len(1 << 20).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("shrank"), "{err}");
    assert_eq!(env.files(), vec!["big".to_string()]);
}

/// A signal at any moment, including just after the rename: the exit status
/// always matches what is on disk — nothing and 130 (or death by the signal
/// if it came before the handler was installed), or the whole output and 0.
#[test]
fn exit_status_always_matches_the_output_on_disk() {
    use std::os::unix::process::ExitStatusExt;
    let env = Env::new();
    let data = sample(3 << 20);
    env.write("in", &data);
    let run = |env: &Env| {
        Command::new(bin())
            .args(["process", "in", "--encrypt", "none", "--sync"])
            .current_dir(env.dir.path())
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // How long a whole run takes here, so the signals can sweep across its end.
    let started = Instant::now();
    assert!(run(&env).wait().unwrap().success());
    let whole = started.elapsed();
    let mut outcomes = [0usize; 3];
    for round in 0..40u32 {
        let _ = std::fs::remove_file(env.path("in.sluice"));
        let mut child = run(&env);
        // From half the run's length to one and a half: across the commit.
        std::thread::sleep(whole / 2 + whole * round / 40);
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let status = child.wait().unwrap();
        let mut files = env.files();
        files.retain(|f| f != "in");
        match (status.code(), status.signal()) {
            (Some(0), _) => {
                assert_eq!(files, vec!["in.sluice".to_string()], "round {round}: exit 0");
                env.cmd()
                    .args(["verify", "in.sluice", "--allow-unencrypted"])
                    .assert()
                    .success();
                outcomes[0] += 1;
            }
            (Some(130), _) => {
                assert_eq!(files, Vec::<String>::new(), "round {round}: exit 130 left output");
                outcomes[1] += 1;
            }
            (None, Some(_)) => {
                assert_eq!(files, Vec::<String>::new(), "round {round}: killed, left output");
                outcomes[2] += 1;
            }
            other => panic!("round {round}: unexpected status {other:?}"),
        }
    }
    eprintln!(
        "completed {}, interrupted {}, killed before the handler {}",
        outcomes[0], outcomes[1], outcomes[2]
    );
}

#[test]
fn sync_flags_and_env_var() {
    let env = Env::new();
    env.write("in", &sample(1 << 20));
    for args in [&["--sync"][..], &["--no-sync"], &["--no-sync", "--sync"]] {
        env.cmd()
            .args(["process", "in", "-f", "--encrypt", "none"])
            .args(args)
            .assert()
            .success();
    }
    env.cmd()
        .args(["process", "in", "-f", "--encrypt", "none"])
        .env("SLUICE_SYNC", "off")
        .assert()
        .success();
    env.cmd()
        .args(["process", "in", "-f", "--encrypt", "none"])
        .env("SLUICE_SYNC", "sometimes")
        .assert()
        .code(2)
        .stderr(predicates::str::contains("SLUICE_SYNC"));
    env.cmd()
        .args(["restore", "in.sluice", "-o", "back", "--allow-unencrypted", "--sync"])
        .assert()
        .success();
    assert_eq!(
        std::fs::read(env.path("back")).unwrap(),
        std::fs::read(env.path("in")).unwrap()
    );
}
