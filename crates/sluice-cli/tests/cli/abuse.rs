//! End-to-end tests of the server under abuse: slow-loris connections,
//! too many connections, too many requests in flight, stalled bodies and
//! oversized requests. Each is answered cheaply (a closed connection, a
//! 4xx or a 503 with `Retry-After`) while well-behaved clients are served.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::util::*;

/// A connection that sent half a request head and then nothing.
fn half_head(s: &Server) -> TcpStream {
    let addr = s.base.trim_start_matches("http://");
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.write_all(b"GET /v1/objects HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    sock
}

/// Waits until the server closes `sock`; returns how long that took.
fn closed_after(mut sock: TcpStream, limit: Duration) -> Duration {
    let start = Instant::now();
    sock.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match sock.read(&mut buf) {
            Ok(0) => return start.elapsed(),
            Ok(_) => continue, // a 408 answer may come first
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return start.elapsed(),
            Err(e) => panic!("still open after {:?}: {e}", start.elapsed()),
        }
    }
}

#[test]
fn slow_headers_are_cut_at_the_header_timeout_and_connections_are_capped() {
    let env = Env::new();
    let token = tenant(&env, "acme", "read");
    let s = Server::start(&env, &["--header-timeout-secs", "2", "--max-connections", "8"]);
    // More idle half-heads than connection slots.
    let idle: Vec<TcpStream> = (0..12).map(|_| half_head(&s)).collect();
    std::thread::sleep(Duration::from_millis(200));
    // A well-behaved client still gets through: at the latest when the
    // first idle ones are cut at the header timeout.
    let start = Instant::now();
    assert_eq!(get(&s, &token, "/v1/objects").status, 200);
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "served after {:?}",
        start.elapsed()
    );
    for sock in idle {
        let took = closed_after(sock, Duration::from_secs(10));
        assert!(took < Duration::from_secs(8), "an idle connection lived {took:?}");
    }
    assert_eq!(get(&s, &token, "/v1/objects").status, 200);
}

#[test]
fn requests_past_the_in_flight_limit_are_shed_with_503() {
    let env = Env::new();
    let token = tenant(&env, "acme", "write");
    let s = Server::start(&env, &["--max-in-flight", "2"]);
    // Two uploads that stream slowly hold both in-flight slots.
    let a = stalled_upload(&s, &token, "a", 1 << 20, b"some bytes");
    let b = stalled_upload(&s, &token, "b", 1 << 20, b"some bytes");
    // Wait on /metrics, which is neither counted nor shed: a request to
    // the API could itself take the second upload's slot.
    wait_until(
        "both slow uploads hold the in-flight slots",
        Duration::from_secs(30),
        || {
            let m = agent().get(s.url("/metrics")).call();
            String::from_utf8_lossy(&reply(m).body).contains("\nsluice_http_requests_in_flight 2\n")
        },
    );
    let r = get(&s, &token, "/v1/objects");
    assert_problem(&r, 503, "overloaded");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(get(&s, &token, "/healthz").status, 200, "probes are never shed");
    drop((a, b));
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(&s, &token, "/v1/objects").status != 200 {
        assert!(Instant::now() < deadline, "still shedding after the load left");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn stalled_uploads_time_out_and_oversized_requests_are_refused() {
    let env = Env::new();
    let token = tenant(&env, "acme", "write");
    let s = Server::start(&env, &["--idle-body-timeout-secs", "2"]);
    for path in ["staged?wait=false", "streamed"] {
        let mut sock = stalled_upload(&s, &token, path, 1 << 20, &sample(64 << 10));
        sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let start = Instant::now();
        let mut head = [0u8; 12];
        sock.read_exact(&mut head).expect("no answer to a stalled upload");
        assert_eq!(&head, b"HTTP/1.1 408", "{path}: {}", String::from_utf8_lossy(&head));
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{path}: {:?}",
            start.elapsed()
        );
    }
    assert_problem(&get(&s, &token, "/v1/objects/staged"), 404, "not_found");
    let streamed = get(&s, &token, "/v1/jobs?state=failed").json();
    assert_eq!(streamed["jobs"][0]["error_code"], "idle_timeout", "{streamed}");

    // A path past the URI limit, a head past the header limit, a JSON body
    // past the JSON limit.
    let long = format!("/v1/objects/{}", "k".repeat(9000));
    assert_problem(&get(&s, &token, &long), 414, "uri_too_long");
    let r = agent()
        .get(s.url("/v1/objects"))
        .header("Authorization", format!("Bearer {token}"))
        .header("X-Big", "v".repeat(32 << 10))
        .call();
    match r {
        Ok(resp) => assert_eq!(resp.status().as_u16(), 431),
        Err(e) => assert!(
            e.to_string().contains("reset") || e.to_string().contains("closed"),
            "{e}"
        ),
    }
    let big_json = format!(r#"{{"compress":"zstd:3","recipients":["{}"]}}"#, "x".repeat(100 << 10));
    let r = put(&s, &token, "/v1/pipelines/big", big_json.as_bytes());
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(get(&s, &token, "/v1/objects").status, 200, "still serving");
    assert!(!s.log().contains("panicked"), "{}", s.log());
}

#[test]
fn an_unwritable_store_answers_503_fast_jobs_wait_and_nothing_accepted_is_lost() {
    // Breaks the local store's files; the S3 outage has its own test.
    if !local_store_or_skip() {
        return;
    }
    let env = Env::new();
    let token = tenant(&env, "acme", "write");
    let s = Server::start(
        &env,
        &[
            "--max-running-jobs",
            "1",
            "--job-max-attempts",
            "2",
            "--breaker-failures",
            "2",
            "--breaker-open-secs",
            "1",
            "--store-retries",
            "1",
            "--store-timeout-secs",
            "2",
            // Small uploads live in the database, which stays writable:
            // off here, so that these tiny bodies need the store.
            "--small-object-max",
            "0",
        ],
    );
    // A job accepted (staged) while the only slot is busy.
    let holder = stalled_upload(&s, &token, "holder", 1 << 20, b"x");
    wait_until_running(&s, &token, 1);
    let data = sample(3 << 20);
    let accepted = put(&s, &token, "/v1/objects/accepted", &data);
    assert_eq!(accepted.status, 202);
    let id = accepted.json()["id"].as_str().unwrap().to_string();

    // The store's staging area becomes unusable (a file where its directory
    // was: even root cannot write through that).
    let staging = env.path("data").join("store").join("staging");
    let aside = env.path("data").join("store").join("staging.aside");
    std::fs::rename(&staging, &aside).unwrap();
    std::fs::write(&staging, b"not a directory").unwrap();
    drop(holder);

    // Uploads fail with 503 + Retry-After; once the breaker is open, at once.
    let mut fast = None;
    for _ in 0..6 {
        let start = Instant::now();
        let r = put(&s, &token, "/v1/objects/refused?wait=false", b"bytes");
        assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
        assert!(r.header("retry-after").is_some());
        fast = Some(start.elapsed());
    }
    assert!(fast.unwrap() < Duration::from_millis(500), "{fast:?}");
    // The accepted job waits: it neither fails nor succeeds while the store is down.
    std::thread::sleep(Duration::from_secs(4));
    let j = get(&s, &token, &format!("/v1/jobs/{id}")).json();
    assert!(j["state"] == "queued" || j["state"] == "running", "{j}\n{}", s.log());

    // The store comes back: the job finishes, its content intact.
    std::fs::remove_file(&staging).unwrap();
    std::fs::rename(&aside, &staging).unwrap();
    let j = wait_job(&s, &token, &id, &["succeeded", "failed"], Duration::from_secs(60));
    assert_eq!(j["state"], "succeeded", "{j}\n{}", s.log());
    assert!(get(&s, &token, "/v1/objects/accepted/content").body == data);
    assert_eq!(put(&s, &token, "/v1/objects/after?wait=false", b"bytes").status, 202);
    assert_problem(&get(&s, &token, "/v1/objects/refused"), 404, "not_found");
    assert!(!s.log().contains("panicked"), "{}", s.log());
}
