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
