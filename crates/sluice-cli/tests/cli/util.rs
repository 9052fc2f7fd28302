//! Shared helpers: a temp dir, sample data, and a command builder.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub struct Env {
    pub dir: tempfile::TempDir,
    /// Where the service keeps state: the defaults in the data directory,
    /// or PostgreSQL and S3 when the suite runs against them.
    shared: Vec<(String, String)>,
}

/// When `SLUICE_TEST_POSTGRES` (a server's base URL) and/or
/// `SLUICE_TEST_S3` (an S3 endpoint with a bucket `sluice-e2e`) are set,
/// every service process of a test gets a database and a store prefix of
/// its own there, through `SLUICE_DATABASE`/`SLUICE_STORE`: the same
/// end-to-end tests then run against PostgreSQL + S3
/// (`scripts/shared_state_test.sh`).
fn shared_state() -> Vec<(String, String)> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let unique = format!(
        "e{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let mut vars = Vec::new();
    if let Ok(base) = std::env::var("SLUICE_TEST_POSTGRES") {
        vars.push((
            "SLUICE_DATABASE".to_string(),
            format!("{}/{unique}", base.trim_end_matches('/')),
        ));
    }
    if let Ok(endpoint) = std::env::var("SLUICE_TEST_S3") {
        vars.push(("SLUICE_STORE".into(), format!("s3://sluice-e2e/{unique}")));
        vars.push(("AWS_ENDPOINT_URL".into(), endpoint));
        vars.push(("AWS_ALLOW_HTTP".into(), "true".into()));
        vars.push(("AWS_REGION".into(), "us-east-1".into()));
        vars.push(("AWS_ACCESS_KEY_ID".into(), "testing".into()));
        vars.push(("AWS_SECRET_ACCESS_KEY".into(), "testing".into()));
    }
    vars
}

impl Env {
    pub fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
            shared: shared_state(),
        }
    }

    /// Environment variables naming this test's database and store, for
    /// every service process it starts (none: the data directory's).
    pub fn state_vars(&self) -> &[(String, String)] {
        &self.shared
    }

    fn shared(&self, name: &str) -> Option<&str> {
        self.shared.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The database URL the service of this test uses.
    pub fn database_url(&self) -> String {
        self.shared("SLUICE_DATABASE")
            .map(str::to_string)
            .unwrap_or_else(|| format!("sqlite://{}", self.path("data").join("sluice.db").display()))
    }

    /// The store URL the service of this test uses.
    pub fn store_url(&self) -> String {
        self.shared("SLUICE_STORE")
            .map(str::to_string)
            .unwrap_or_else(|| format!("file://{}", self.path("data").join("store").display()))
    }

    /// The answer to an S3 `GET /BUCKET?QUERY&prefix=ROOT/UNDER` on this
    /// test's bucket, with ROOT (the test's prefix); `None` on a local store.
    fn s3_listing(&self, query: &str, under: &str) -> Option<(String, String)> {
        let url = self.shared("SLUICE_STORE")?;
        let endpoint = self.shared("AWS_ENDPOINT_URL")?;
        let (bucket, root) = url.trim_start_matches("s3://").split_once('/').unwrap();
        let mut r = ureq::get(format!("{endpoint}/{bucket}?{query}&prefix={root}/{under}"))
            .call()
            .unwrap();
        Some((root.to_string(), r.body_mut().read_to_string().unwrap()))
    }

    /// S3 multipart uploads in progress under this test's store prefix
    /// (none on a local store).
    pub fn multipart_uploads(&self) -> usize {
        self.s3_listing("uploads", "")
            .map_or(0, |(_, xml)| xml.matches("<UploadId>").count())
    }

    /// Names of everything stored under `prefix` (relative to the
    /// service's store: `uploads/`, `staging/`, `objects/`), whichever
    /// store the test uses.
    pub fn stored_names(&self, prefix: &str) -> Vec<String> {
        match self.s3_listing("list-type=2", prefix) {
            Some((root, xml)) => xml
                .split("<Key>")
                .skip(1)
                .filter_map(|k| k.split("</Key>").next())
                .map(|k| k.trim_start_matches(&format!("{root}/")).to_string())
                .collect(),
            None => {
                let root = self.path("data").join("store");
                let mut names = Vec::new();
                let mut dirs = vec![root.clone()];
                while let Some(d) = dirs.pop() {
                    for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                        let p = e.path();
                        if p.is_dir() {
                            dirs.push(p);
                        } else {
                            let name = p.strip_prefix(&root).unwrap().to_string_lossy().to_string();
                            if name.starts_with(prefix) {
                                names.push(name);
                            }
                        }
                    }
                }
                names
            }
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
            .env_remove("SLUICE_THREADS")
            .env("SLUICE_S3_LISTEN", "off")
            .envs(self.shared.iter().map(|(k, v)| (k, v)));
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

/// The value of `var`, which a test needs (`need` names what for: `moto`,
/// `postgres`, `s3`). Missing, the test is skipped — unless
/// `SLUICE_TEST_REQUIRE` (comma-separated, set by the scripts that provide
/// them) names `need`: then it fails, so a broken set-up cannot pass as
/// skipped tests.
pub fn required_env(var: &str, need: &str) -> Option<String> {
    if let Ok(v) = std::env::var(var) {
        return Some(v);
    }
    let required = std::env::var("SLUICE_TEST_REQUIRE").is_ok_and(|r| r.split(',').any(|n| n == need));
    assert!(
        !required,
        "{need} is required (SLUICE_TEST_REQUIRE) but {var} is not set"
    );
    eprintln!("skipped: needs {var} ({need}; scripts/test.sh and scripts/shared_state_test.sh set it)");
    None
}

/// Waits until `check` holds, polling, or fails the test naming `what`
/// (with `context()` for the failure message) after `limit`.
pub fn wait_until(what: &str, limit: std::time::Duration, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting until {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

/// Whether the service's store is the local directory; if not (the suite
/// runs against S3), says that the calling test is skipped.
pub fn local_store_or_skip() -> bool {
    let local = std::env::var_os("SLUICE_TEST_S3").is_none();
    if !local {
        eprintln!("skipped: this test works on the local store's files");
    }
    local
}
