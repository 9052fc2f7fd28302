//! The service's settings as a user gives them: one name per knob (older
//! spellings still work), and a bad value named the way it was given —
//! flag, environment variable or config-file key.

use std::time::Duration;

use crate::harness::*;
use crate::util::*;

/// Runs `sluice serve` with `args` and `vars`, expecting it to refuse to
/// start; returns its error output.
fn refused(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> String {
    let out = env
        .cmd()
        .arg("serve")
        .args(["--data-dir", env.path("data").to_str().unwrap()])
        .args(args)
        .envs(vars.iter().copied())
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_bad_setting_is_named_as_it_was_given() {
    let env = Env::new();
    let err = refused(&env, &["--runtime-threads", "0"], &[]);
    assert!(err.contains("--runtime-threads: must be 1 to 4096, got 0"), "{err}");
    let err = refused(&env, &[], &[("SLUICE_RUNTIME_THREADS", "0")]);
    assert!(
        err.contains("SLUICE_RUNTIME_THREADS: must be 1 to 4096, got 0"),
        "{err}"
    );
    let file = env.write("sluice.toml", b"log_format = \"xml\"\n");
    let err = refused(&env, &["--config", file.to_str().unwrap()], &[]);
    assert!(
        err.contains(&format!(
            "log_format in {}: \"xml\": expected text or json",
            file.display()
        )),
        "{err}"
    );
    let err = refused(&env, &["--store", "ftp://x"], &[]);
    assert!(err.contains("--store: "), "{err}");
    let err = refused(&env, &[], &[("SLUICE_DATABASE", "mysql://x")]);
    assert!(err.contains("SLUICE_DATABASE: expected sqlite://PATH"), "{err}");
    // A worker needs a job slot; the setting is named as given.
    let out = env
        .cmd()
        .args([
            "worker",
            "--data-dir",
            env.path("data").to_str().unwrap(),
            "--workers",
            "0",
        ])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--max-running-jobs: a worker runs at least one job"),
        "{err}"
    );
}

/// The effective configuration a server logged at start.
fn logged_config(s: &Server) -> serde_json::Value {
    let log = s.log();
    let line = log
        .lines()
        .rfind(|l| l.contains("effective configuration"))
        .unwrap_or_else(|| panic!("no configuration logged: {log}"));
    let start = line.find("config=").map(|i| i + "config=".len()).unwrap();
    let end = line[start..].find(" role=").map_or(line.len(), |i| start + i);
    serde_json::from_str(line[start..end].trim()).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[test]
fn old_spellings_of_renamed_settings_still_work() {
    let env = Env::new();
    // Flags and a config-file key: --cpu-threads is -j/--threads,
    // --engine-memory-mib is --max-memory, --workers is --max-running-jobs.
    let file = env.write("sluice.toml", b"engine_memory_mib = 96\n");
    let s = Server::start(
        &env,
        &[
            "--cpu-threads",
            "3",
            "--workers",
            "1",
            "--config",
            file.to_str().unwrap(),
        ],
    );
    let c = logged_config(&s);
    assert_eq!(
        (c["threads"].as_u64(), c["max_running_jobs"].as_u64()),
        (Some(3), Some(1)),
        "{c}"
    );
    assert_eq!(c["max_memory"].as_u64(), Some(96 << 20), "{c}");
    drop(s);
    // The old environment variables.
    let s = Server::start_with(
        &env,
        &[],
        &[
            ("SLUICE_CPU_THREADS", "2"),
            ("SLUICE_ENGINE_MEMORY_MIB", "80"),
            ("SLUICE_WORKERS", "3"),
        ],
    );
    let c = logged_config(&s);
    assert_eq!(c["threads"].as_u64(), Some(2), "{c}");
    assert_eq!(c["max_memory"].as_u64(), Some(80 << 20), "{c}");
    assert_eq!(c["max_running_jobs"].as_u64(), Some(3), "{c}");
    drop(s);
    // The one name each now has.
    let s = Server::start(&env, &["-j", "1", "--max-memory", "64", "--max-running-jobs", "2"]);
    let c = logged_config(&s);
    assert_eq!(
        (
            c["threads"].as_u64(),
            c["max_memory"].as_u64(),
            c["max_running_jobs"].as_u64()
        ),
        (Some(1), Some(64 << 20), Some(2)),
        "{c}"
    );
}

#[test]
fn help_shows_each_default_once_from_the_defaults_table() {
    let env = Env::new();
    let out = env.cmd().args(["serve", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for shown in [
        "[default: 127.0.0.1:8470]",
        "[default: 64]",
        "[default: 2 x cores, 2 to 16]",
        "[default: ./sluice-data]",
    ] {
        assert_eq!(help.matches(shown).count(), 1, "{shown} in:\n{help}");
    }
    assert!(help.contains("--workers"), "the alias is shown");
}
