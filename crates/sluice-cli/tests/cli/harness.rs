//! Helpers for end-to-end tests of `sluice serve`: a server on a free
//! port, admin commands, HTTP calls and their checks.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// A running server on a free port, killed when dropped.
pub(crate) struct Server {
    pub(crate) child: Option<Child>,
    pub(crate) base: String,
    pub(crate) data: std::path::PathBuf,
    pub(crate) extra: Vec<String>,
    pub(crate) log: std::path::PathBuf,
    pub(crate) vars: Vec<(String, String)>,
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    pub(crate) fn start(env: &Env, extra: &[&str]) -> Server {
        Server::start_with(env, extra, &[])
    }

    /// Like `start`, with environment variables for the server.
    pub(crate) fn start_with(env: &Env, extra: &[&str], vars: &[(&str, &str)]) -> Server {
        let mut s = Server {
            child: None,
            base: String::new(),
            data: env.path("data"),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            log: env.path("server.log"),
            vars: env
                .state_vars()
                .iter()
                .cloned()
                .chain(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
                .collect(),
        };
        s.spawn();
        s
    }

    pub(crate) fn spawn(&mut self) {
        let port = free_port();
        self.base = format!("http://127.0.0.1:{port}");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(bin())
            .args(["serve", "--data-dir"])
            .arg(&self.data)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(&self.extra)
            .env_remove("SLUICE_PASSPHRASE")
            // Many servers run at once: none serves S3 unless a test asks.
            .env("SLUICE_S3_LISTEN", "off")
            .envs(self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
        let healthz = format!("{}/healthz", self.base);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if agent().get(&healthz).call().is_ok_and(|r| r.status() == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not start: {}", self.log());
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub(crate) fn signal(&mut self, sig: &str) -> std::process::ExitStatus {
        let pid = self.pid().to_string();
        Command::new("kill").args([sig, &pid]).status().unwrap();
        let status = self.child.as_mut().unwrap().wait().unwrap();
        self.child = None;
        status
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A `sluice worker` process, killed when dropped.
pub(crate) struct Worker {
    child: Option<Child>,
    log: std::path::PathBuf,
}

impl Worker {
    pub(crate) fn start(env: &Env, name: &str, extra: &[&str]) -> Worker {
        let data = env.path("data");
        let log = env.path(&format!("{name}.log"));
        let child = Command::new(bin())
            .arg("worker")
            // Its own (empty) data directory: the URLs name the shared state.
            .args(["--data-dir", env.path(name).to_str().unwrap()])
            .args(["--database", &env.database_url()])
            .args(["--store", &env.store_url()])
            .envs(env.state_vars().iter().map(|(k, v)| (k, v)))
            .args(["--master-key", data.join("master.key").to_str().unwrap()])
            .args(["--job-lease-secs", "3"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
            .spawn()
            .unwrap();
        Worker {
            child: Some(child),
            log,
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            Command::new("kill")
                .args(["-KILL", &c.id().to_string()])
                .status()
                .unwrap();
            let _ = c.wait();
        }
    }

    pub(crate) fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .unwrap();
        c.wait().unwrap()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into()
}

pub(crate) fn admin(env: &Env, args: &[&str]) -> String {
    let out = env
        .cmd()
        .args(["admin", "--data-dir"])
        .arg(env.path("data"))
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).unwrap().trim().to_string()
}

/// A tenant and a token of `scope`.
pub(crate) fn tenant(env: &Env, name: &str, scope: &str) -> String {
    if !admin(env, &["tenant", "list"])
        .lines()
        .any(|l| l.split('\t').next() == Some(name))
    {
        admin(env, &["tenant", "create", name]);
    }
    admin(env, &["token", "create", "--tenant", name, "--scope", scope])
}

pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub(crate) fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut r = r.unwrap();
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let status = r.status().as_u16();
    let body = r
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .unwrap_or_default();
    Reply { status, headers, body }
}

pub(crate) fn get(s: &Server, token: &str, path: &str) -> Reply {
    reply(
        agent()
            .get(s.url(path))
            .header("Authorization", format!("Bearer {token}"))
            .call(),
    )
}

pub(crate) fn put(s: &Server, token: &str, path: &str, body: &[u8]) -> Reply {
    reply(
        agent()
            .put(s.url(path))
            .header("Authorization", format!("Bearer {token}"))
            .send(body),
    )
}

pub(crate) fn delete(s: &Server, token: &str, path: &str) -> Reply {
    reply(
        agent()
            .delete(s.url(path))
            .header("Authorization", format!("Bearer {token}"))
            .call(),
    )
}

/// Polls a job until its state is one of `states`.
pub(crate) fn wait_job(s: &Server, token: &str, id: &str, states: &[&str], limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let j = get(s, token, &format!("/v1/jobs/{id}")).json();
        if states.contains(&j["state"].as_str().unwrap_or("")) {
            return j;
        }
        // The server's log says why a job is stuck.
        assert!(Instant::now() < deadline, "job {id} stuck: {j}\n{}", s.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `n` jobs of the token's tenant are running (e.g. an upload
/// that streams in holds a job slot).
pub(crate) fn wait_until_running(s: &Server, token: &str, n: usize) {
    wait_until(&format!("{n} jobs are running"), Duration::from_secs(10), || {
        get(s, token, "/v1/jobs?state=running").json()["jobs"]
            .as_array()
            .map_or(0, Vec::len)
            == n
    });
}

pub(crate) fn assert_problem(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.json()["code"], code, "{}", String::from_utf8_lossy(&r.body));
}

/// Opens a `PUT …?wait=true` (or with `key`'s own query) that announces `len` bytes, sends `first` of
/// them and then goes quiet (the socket stays open).
pub(crate) fn stalled_upload(s: &Server, token: &str, key: &str, len: usize, first: &[u8]) -> std::net::TcpStream {
    use std::io::Write;
    let addr = s.base.trim_start_matches("http://");
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    // `?wait=true` unless the key brings its own query.
    let query = if key.contains('?') { "" } else { "?wait=true" };
    write!(
        sock,
        "PUT /v1/objects/{key}{query} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: {len}\r\n\r\n"
    )
    .unwrap();
    sock.write_all(first).unwrap();
    sock
}

/// A `PUT` that asks `Expect: 100-continue` and sends its body only if the
/// server wants it, so that an upload refused before its body is read gets
/// its answer instead of a broken pipe.
pub(crate) fn put_expecting(s: &Server, token: &str, path: &str, body: &[u8]) -> Reply {
    use std::io::{BufRead, BufReader, Read, Write};
    let addr = s.base.trim_start_matches("http://");
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        sock,
        "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\
         Expect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut reader = BufReader::new(sock.try_clone().unwrap());
    loop {
        let mut status_line = String::new();
        reader.read_line(&mut status_line).unwrap();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        if status == 100 {
            sock.write_all(body).unwrap();
            continue;
        }
        let mut body = Vec::new();
        let _ = reader.read_to_end(&mut body);
        return Reply { status, headers, body };
    }
}
