//! A small blocking client of a `sluice serve` API, for `sluice push` and
//! `sluice pull`: the token from `SLUICE_TOKEN`, timeouts, problem answers
//! turned into errors that name the problem, retries of what may succeed
//! when tried again.

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::StatusCode;
use zeroize::Zeroizing;

use crate::exit::usage;

/// The API of one server.
pub struct Api {
    http: Client,
    base: String,
    token: Zeroizing<String>,
}

impl Api {
    /// A client of `server` (e.g. `http://127.0.0.1:8470`) with the token
    /// in `SLUICE_TOKEN` (never a flag: it would show in `ps`).
    pub fn new(server: &str) -> Result<Api> {
        let token = std::env::var("SLUICE_TOKEN")
            .map_err(|_| usage("set SLUICE_TOKEN to an API token (sluice admin token create)"))?;
        let token = Zeroizing::new(token.trim().to_string());
        if token.is_empty() {
            return Err(usage("SLUICE_TOKEN is empty"));
        }
        if !(server.starts_with("http://") || server.starts_with("https://")) {
            return Err(usage(format!(
                "--server {server:?}: expected http://HOST:PORT or https://…"
            )));
        }
        let http = Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // Parts and downloads are long; a stalled one is cut by the server.
            .timeout(None)
            .build()
            .context("cannot start the HTTP client")?;
        Ok(Api {
            http,
            base: server.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// A request to `path` (starting with `/`) with the token.
    pub fn request(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(self.token.as_str())
    }

    /// Sends `req` and returns its answer if it succeeded; a problem answer
    /// becomes an error naming its code and detail.
    pub fn send(&self, req: RequestBuilder) -> Result<Response> {
        let resp = req.send().map_err(|e| anyhow!("{}: {e}", self.base))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(Failure::from_response(resp).into())
    }

    /// `send`, retried with backoff while the failure may pass (network
    /// errors, 408, 429, 5xx).
    pub fn send_retrying(&self, make: impl Fn() -> RequestBuilder) -> Result<Response> {
        let mut wait = Duration::from_millis(500);
        for attempt in 1.. {
            match self.send(make()) {
                Ok(r) => return Ok(r),
                Err(e) if attempt < 5 && transient(&e) => {
                    let hint = e.downcast_ref::<Failure>().and_then(|f| f.retry_after);
                    std::thread::sleep(hint.unwrap_or(wait));
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the loop returns")
    }

    /// The answer of `send_retrying` as one of the API's bodies
    /// (`sluice_server::api`).
    pub fn json<T: serde::de::DeserializeOwned>(&self, make: impl Fn() -> RequestBuilder) -> Result<T> {
        let resp = self.send_retrying(make)?;
        resp.json().context("the server's answer is not what the API says")
    }
}

/// An error answer of the server.
#[derive(Debug, thiserror::Error)]
#[error("the server answered {status}: {code}: {detail}")]
pub struct Failure {
    /// HTTP status.
    pub status: StatusCode,
    /// The problem's stable code.
    pub code: String,
    /// What happened.
    pub detail: String,
    /// The server's `Retry-After`.
    pub retry_after: Option<Duration>,
}

impl Failure {
    fn from_response(resp: Response) -> Failure {
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(|s| Duration::from_secs(s.min(60)));
        let (code, detail) = match resp.json::<sluice_server::api::ProblemBody>() {
            Ok(p) => (p.code, p.detail),
            Err(_) => ("error".into(), status.canonical_reason().unwrap_or("").to_string()),
        };
        Failure {
            status,
            code,
            detail,
            retry_after,
        }
    }
}

/// Whether trying again may succeed.
fn transient(e: &anyhow::Error) -> bool {
    match e.downcast_ref::<Failure>() {
        Some(f) => {
            f.status == StatusCode::REQUEST_TIMEOUT
                || f.status == StatusCode::TOO_MANY_REQUESTS
                || f.status.is_server_error()
        }
        // Not an answer: the connection failed.
        None => true,
    }
}

/// The API path of object `key` (its segments percent-encoded).
pub fn object_path(key: &str) -> String {
    let segments: Vec<String> = key.split('/').map(encode_segment).collect();
    format!("/v1/objects/{}", segments.join("/"))
}

fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
