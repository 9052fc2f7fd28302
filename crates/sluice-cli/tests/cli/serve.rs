//! End-to-end tests of `sluice serve` and `sluice admin`: the real binary,
//! on 127.0.0.1, spoken to over HTTP.

use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;
use crate::util::*;

#[test]
fn upload_process_restore_ranges_tenants_and_errors() {
    let env = Env::new();
    let writer = tenant(&env, "acme", "write");
    let reader = tenant(&env, "acme", "read");
    let other = tenant(&env, "globex", "write");
    let (identity, recipient) = env.identity("owner.key");
    let s = Server::start(&env, &[]);

    // A pipeline with the owner's recipient, so the container also opens offline.
    let p = put(
        &s,
        &writer,
        "/v1/pipelines/offsite",
        format!(r#"{{"compress":"zstd:3","chunk_size":"4MiB","recipients":["{recipient}"]}}"#).as_bytes(),
    );
    assert_eq!(p.status, 200, "{}", String::from_utf8_lossy(&p.body));
    assert_eq!(p.json()["encrypt"], "aes256gcm");

    let data = sample(200 << 20);
    let up = put(&s, &writer, "/v1/objects/backups/db.dump?pipeline=offsite", &data);
    assert_eq!(up.status, 202, "{}", String::from_utf8_lossy(&up.body));
    let job = up.json();
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(up.header("location"), Some(format!("/v1/jobs/{id}").as_str()));
    assert!(["queued", "running", "succeeded"].contains(&job["state"].as_str().unwrap()));
    let done = wait_job(&s, &writer, &id, &["succeeded", "failed"], Duration::from_secs(300));
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["progress"]["bytes_in"], data.len() as u64);
    assert_eq!(done["object"], "backups/db.dump");

    // The content, whole and by ranges, read with a read-scope token.
    let whole = get(&s, &reader, "/v1/objects/backups/db.dump/content");
    assert_eq!(whole.status, 200);
    assert!(whole.body == data, "content differs");
    assert_eq!(whole.header("content-length"), Some(data.len().to_string().as_str()));
    assert_eq!(
        whole.header("etag"),
        Some(format!("\"{}\"", blake3::hash(&data).to_hex()).as_str())
    );
    // Asked for zstd: the stored chunks as frames, decompressed by the client.
    let zstd = |range: Option<&str>| {
        let mut req = agent()
            .get(s.url("/v1/objects/backups/db.dump/content"))
            .header("Authorization", format!("Bearer {reader}"))
            .header("Accept-Encoding", "gzip, zstd");
        if let Some(r) = range {
            req = req.header("Range", r);
        }
        reply(req.call())
    };
    let z = zstd(None);
    assert_eq!(z.status, 200);
    assert_eq!(z.header("content-encoding"), Some("zstd"));
    assert_eq!(z.header("content-length"), None);
    assert_eq!(z.header("vary"), Some("accept-encoding"));
    assert_eq!(
        z.header("etag"),
        Some(format!("W/\"{}\"", blake3::hash(&data).to_hex()).as_str())
    );
    assert!(
        z.body.len() < data.len() / 2,
        "{} bytes sent for {}",
        z.body.len(),
        data.len()
    );
    assert!(
        zstd::stream::decode_all(&z.body[..]).unwrap() == data,
        "zstd content differs"
    );
    let m = String::from_utf8_lossy(&reply(agent().get(s.url("/metrics")).call()).body).into_owned();
    let sent = |encoding: &str| -> u64 {
        let name = format!("sluice_download_bytes_total{{encoding=\"{encoding}\"}} ");
        m.lines()
            .find_map(|l| l.strip_prefix(&name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
    };
    assert_eq!(sent("zstd"), z.body.len() as u64, "zstd bytes are counted as sent");
    assert!(sent("identity") >= data.len() as u64);
    // A range is sent as it is.
    let r = zstd(Some("bytes=100-199"));
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-encoding"), None);
    assert!(r.body == data[100..200]);
    let mut x = 12345u64;
    for _ in 0..12 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let a = (x >> 20) as usize % data.len();
        let b = (a + (x as usize % (9 << 20))).min(data.len() - 1);
        let r = reply(
            agent()
                .get(s.url("/v1/objects/backups/db.dump/content"))
                .header("Authorization", format!("Bearer {reader}"))
                .header("Range", format!("bytes={a}-{b}"))
                .call(),
        );
        assert_eq!(r.status, 206);
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {a}-{b}/{}", data.len()).as_str())
        );
        assert!(r.body == data[a..=b], "range {a}-{b} differs");
    }
    let r = reply(
        agent()
            .get(s.url("/v1/objects/backups/db.dump/content"))
            .header("Authorization", format!("Bearer {reader}"))
            .header("Range", format!("bytes={}-", data.len()))
            .call(),
    );
    assert_eq!(r.status, 416);

    // The stored container restores offline with the pipeline recipient's identity.
    let container = get(&s, &reader, "/v1/objects/backups/db.dump");
    assert_eq!(container.status, 200);
    env.write("db.dump.sluice", &container.body);
    env.cmd()
        .args(["restore", "db.dump.sluice", "-o", "db.dump", "-i"])
        .arg(&identity)
        .assert()
        .success();
    assert!(read(&env.path("db.dump")) == data);

    // Listing, HEAD, verify job, events.
    let list = get(&s, &reader, "/v1/objects?prefix=backups/").json();
    assert_eq!(list["objects"].as_array().unwrap().len(), 1);
    assert_eq!(list["objects"][0]["size"], data.len() as u64);
    let head = reply(
        agent()
            .head(s.url("/v1/objects/backups/db.dump"))
            .header("Authorization", format!("Bearer {reader}"))
            .call(),
    );
    assert_eq!(head.status, 200);
    assert_eq!(head.header("x-sluice-size"), Some(data.len().to_string().as_str()));
    let v = reply(
        agent()
            .post(s.url("/v1/objects/backups/db.dump/verify"))
            .header("Authorization", format!("Bearer {writer}"))
            .send_empty(),
    );
    assert_eq!(v.status, 202);
    let vid = v.json()["id"].as_str().unwrap().to_string();
    let vdone = wait_job(&s, &writer, &vid, &["succeeded", "failed"], Duration::from_secs(120));
    assert_eq!(vdone["state"], "succeeded", "{vdone}");
    let events = get(&s, &reader, &format!("/v1/jobs/{vid}/events"));
    let text = String::from_utf8_lossy(&events.body);
    assert!(text.contains("event: state") && text.contains("succeeded"), "{text}");

    // Tenants cannot see each other: 404, exactly as a missing object.
    assert_problem(
        &get(&s, &other, "/v1/objects/backups/db.dump/content"),
        404,
        "not_found",
    );
    assert_problem(&get(&s, &other, &format!("/v1/jobs/{id}")), 404, "not_found");
    assert_eq!(
        get(&s, &other, "/v1/objects").json()["objects"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // Authentication and scopes.
    let anon = reply(agent().get(s.url("/v1/objects")).call());
    assert_problem(&anon, 401, "unauthorized");
    assert_problem(&get(&s, "sluice_00", "/v1/objects"), 401, "unauthorized");
    assert_problem(&put(&s, &reader, "/v1/objects/x", b"data"), 403, "forbidden");

    // Bad input answers 4xx problems.
    assert_problem(&put(&s, &writer, "/v1/objects/a/../b", b"x"), 400, "invalid_key");
    assert_problem(&put(&s, &writer, "/v1/objects/x?pipeline=nope", b"x"), 404, "not_found");
    assert_problem(&put(&s, &writer, "/v1/pipelines/p", b"{not json"), 400, "invalid_json");
    assert_problem(
        &put(&s, &writer, "/v1/pipelines/p", br#"{"compress":"gzip"}"#),
        400,
        "invalid_pipeline",
    );
    assert_problem(
        &put(&s, &writer, "/v1/pipelines/p", br#"{"colour":"red"}"#),
        400,
        "invalid_json",
    );
    assert_problem(&get(&s, &writer, "/v1/jobs?state=sideways"), 400, "bad_request");
    assert_problem(&get(&s, &writer, "/v1/nothing-here"), 404, "not_found");

    // A wrong expected digest fails the job, and nothing is stored under the key.
    let bad = reply(
        agent()
            .put(s.url("/v1/objects/checked?wait=true"))
            .header("Authorization", format!("Bearer {writer}"))
            .header("X-Sluice-Blake3", "00".repeat(32))
            .send(&b"some bytes"[..]),
    );
    assert_problem(&bad, 422, "digest_mismatch");
    assert_problem(&get(&s, &writer, "/v1/objects/checked"), 404, "not_found");
    let good = reply(
        agent()
            .put(s.url("/v1/objects/checked?wait=true"))
            .header("Authorization", format!("Bearer {writer}"))
            .header("X-Sluice-Blake3", blake3::hash(b"some bytes").to_hex().as_str())
            .send(&b"some bytes"[..]),
    );
    assert_eq!(good.status, 201, "{}", String::from_utf8_lossy(&good.body));

    // An upload cut off mid-stream (processed as it streams in) stores nothing.
    struct CutOff(u64);
    impl Read for CutOff {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("client gave up"));
            }
            let n = (buf.len() as u64).min(self.0) as usize;
            buf[..n].fill(b'z');
            self.0 -= n as u64;
            Ok(n)
        }
    }
    let mut cut = CutOff(5 << 20);
    let sent = agent()
        .put(s.url("/v1/objects/cut?wait=true"))
        .header("Authorization", format!("Bearer {writer}"))
        .send(ureq::SendBody::from_reader(&mut cut));
    assert!(sent.is_err() || sent.unwrap().status() != 201);
    wait_until("the cut-off upload's job failed", Duration::from_secs(10), || {
        !get(&s, &writer, "/v1/jobs?state=failed").json()["jobs"]
            .as_array()
            .is_none_or(Vec::is_empty)
    });
    assert_problem(&get(&s, &writer, "/v1/objects/cut"), 404, "not_found");
    let streamed = put(&s, &writer, "/v1/objects/streamed?wait=true", &data[..(3 << 20)]);
    assert_eq!(streamed.status, 201, "{}", String::from_utf8_lossy(&streamed.body));
    assert_eq!(streamed.json()["state"], "succeeded");
    let sid = streamed.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        get(&s, &writer, &format!("/v1/jobs/{sid}")).json()["state"],
        "succeeded"
    );
    assert!(get(&s, &writer, "/v1/objects/streamed/content").body == data[..(3 << 20)]);

    // Deleting, then 404.
    assert_eq!(delete(&s, &writer, "/v1/objects/backups/db.dump").status, 204);
    assert_problem(
        &get(&s, &reader, "/v1/objects/backups/db.dump/content"),
        404,
        "not_found",
    );

    // The OpenAPI document is served.
    let doc = reply(agent().get(s.url("/v1/openapi.json")).call()).json();
    assert!(doc["paths"]["/v1/objects/{key}"]["put"].is_object());
    assert_eq!(reply(agent().get(s.url("/readyz")).call()).status, 200);

    // No token, key or identity secret in the server's log.
    let log = s.log();
    for secret in [&writer, &reader, &other] {
        assert!(!log.contains(secret.as_str()), "a token was logged");
    }
}

/// A slow pipeline: zstd:19 on 1 MiB chunks keeps a job running for seconds.
fn slow_pipeline(s: &Server, token: &str) {
    let p = put(
        s,
        token,
        "/v1/pipelines/slow",
        br#"{"compress":"zstd:19","chunk_size":"1MiB"}"#,
    );
    assert_eq!(p.status, 200);
}

#[test]
fn a_job_survives_sigkill_and_is_stored_once() {
    let env = Env::new();
    let token = tenant(&env, "acme", "write");
    let mut s = Server::start(&env, &["--job-lease-secs", "3", "--max-running-jobs", "1"]);
    slow_pipeline(&s, &token);
    let data = sample(48 << 20);
    let up = put(&s, &token, "/v1/objects/big?pipeline=slow", &data);
    assert_eq!(up.status, 202);
    let id = up.json()["id"].as_str().unwrap().to_string();
    wait_job(&s, &token, &id, &["running"], Duration::from_secs(60));
    wait_until("the job made progress", Duration::from_secs(60), || {
        get(&s, &token, &format!("/v1/jobs/{id}")).json()["progress"]["bytes_in"].as_i64() > Some(0)
    });
    let status = s.signal("-KILL");
    assert!(!status.success());
    s.spawn();
    let done = wait_job(&s, &token, &id, &["succeeded", "failed"], Duration::from_secs(600));
    assert_eq!(done["state"], "succeeded", "{done}\n{}", s.log());
    assert!(done["attempts"].as_i64().unwrap() >= 2, "{done}");
    let list = get(&s, &token, "/v1/objects").json();
    assert_eq!(list["objects"].as_array().unwrap().len(), 1, "{list}");
    let content = get(&s, &token, "/v1/objects/big/content");
    assert!(content.body == data, "content differs after the restart");
}

#[test]
fn sigterm_drains_and_cancel_stops_a_running_job() {
    let env = Env::new();
    let token = tenant(&env, "acme", "write");
    let mut s = Server::start(&env, &["--max-running-jobs", "2", "--shutdown-grace-secs", "120"]);
    slow_pipeline(&s, &token);
    let data = sample(24 << 20);

    // Cancel: the running job stops and nothing is stored.
    let up = put(&s, &token, "/v1/objects/cancelled?pipeline=slow", &data);
    let id = up.json()["id"].as_str().unwrap().to_string();
    wait_job(&s, &token, &id, &["running"], Duration::from_secs(60));
    let c = delete(&s, &token, &format!("/v1/jobs/{id}"));
    assert_eq!(c.status, 200, "{}", String::from_utf8_lossy(&c.body));
    assert_eq!(c.json()["state"], "cancelled");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(get(&s, &token, &format!("/v1/jobs/{id}")).json()["state"], "cancelled");
    assert_problem(&get(&s, &token, "/v1/objects/cancelled"), 404, "not_found");
    assert_problem(&delete(&s, &token, &format!("/v1/jobs/{id}")), 409, "already_finished");

    // SIGTERM while a job runs: the server finishes it, then exits 0.
    let up = put(&s, &token, "/v1/objects/drained?pipeline=slow", &data);
    let id = up.json()["id"].as_str().unwrap().to_string();
    wait_job(&s, &token, &id, &["running"], Duration::from_secs(60));
    let status = s.signal("-TERM");
    assert!(status.success(), "{status:?}\n{}", s.log());
    s.spawn();
    let j = get(&s, &token, &format!("/v1/jobs/{id}")).json();
    assert_eq!(j["state"], "succeeded", "{j}");
    assert_eq!(j["attempts"], 1, "finished by the first server, not re-run");
    assert!(get(&s, &token, "/v1/objects/drained/content").body == data);
}

#[test]
fn server_memory_stays_flat_on_a_2_gib_upload() {
    let env = Env::new();
    let token = tenant(&env, "acme", "write");
    let s = Server::start(&env, &[]);
    // 2 GiB generated on the fly: never held by the test either.
    struct Gen {
        left: u64,
        x: u64,
    }
    impl Read for Gen {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = (buf.len() as u64).min(self.left) as usize;
            for (i, b) in buf[..n].iter_mut().enumerate() {
                self.x = self.x.wrapping_mul(6364136223846793005).wrapping_add(1);
                *b = if i % 64 < 48 {
                    b"log line text "[i % 14]
                } else {
                    (self.x >> 56) as u8
                };
            }
            self.left -= n as u64;
            Ok(n)
        }
    }
    let mut body = Gen { left: 2 << 30, x: 7 };
    let r = reply(
        agent()
            .put(s.url("/v1/objects/huge?wait=true"))
            .header("Authorization", format!("Bearer {token}"))
            .send(ureq::SendBody::from_reader(&mut body)),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["progress"]["bytes_in"], 2u64 << 30);
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.pid())).unwrap();
    let hwm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    eprintln!("server peak RSS after a 2 GiB upload: {} MiB", hwm_kib / 1024);
    assert!(hwm_kib < 256 * 1024, "server peak RSS {} MiB", hwm_kib / 1024);
}

#[test]
fn the_reaper_removes_abandoned_staging_and_unreferenced_containers() {
    // Plants files in the local store.
    if !local_store_or_skip() {
        return;
    }
    let env = Env::new();
    let token = tenant(&env, "acme", "write");
    let s = Server::start(&env, &["--reaper-interval-secs", "1", "--reaper-min-age-secs", "0"]);
    // A stored object, which must survive.
    assert_eq!(put(&s, &token, "/v1/objects/keep?wait=true", b"kept bytes").status, 201);
    // Leftovers of a crash: a staged upload no job knows, a container no
    // object points at, a partial container file.
    let store = env.path("data").join("store");
    let orphans = [
        store.join("staging/some-tenant/0000000000000000000000000000"),
        store.join("objects/some-tenant/0000000000000000000000000000-1.sluice"),
        store.join("objects/some-tenant/0000000000000000000000000000-2.sluice.partial"),
    ];
    for o in &orphans {
        std::fs::create_dir_all(o.parent().unwrap()).unwrap();
        std::fs::write(o, b"left behind").unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while orphans.iter().any(|o| o.exists()) {
        assert!(Instant::now() < deadline, "orphans not reaped:\n{}", s.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let kept = get(&s, &token, "/v1/objects/keep/content");
    assert_eq!(kept.status, 200);
    assert_eq!(kept.body, b"kept bytes");
}

/// The one job of `key` once it is in `state`.
fn job_of(s: &Server, token: &str, key: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = get(s, token, &format!("/v1/jobs?state={state}")).json();
        if let Some(j) = list["jobs"].as_array().unwrap().iter().find(|j| j["object"] == key) {
            return j.clone();
        }
        assert!(Instant::now() < deadline, "no {state} job for {key}:\n{}", s.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn uploads_processed_as_they_stream_are_jobs_that_can_be_watched_cancelled_and_interrupted() {
    let env = Env::new();
    let token = tenant(&env, "acme", "write");
    let mut s = Server::start(&env, &["--job-lease-secs", "3"]);
    let chunk = sample(2 << 20);

    // Visible while it streams, and a cancel reaches it although its client
    // has gone quiet: the client gets its answer at once.
    let mut sock = stalled_upload(&s, &token, "stalled", 64 << 20, &chunk);
    let job = job_of(&s, &token, "stalled", "running");
    let id = job["id"].as_str().unwrap().to_string();
    assert_eq!(get(&s, &token, &format!("/v1/jobs/{id}")).json()["state"], "running");
    let c = delete(&s, &token, &format!("/v1/jobs/{id}"));
    assert_eq!(c.json()["state"], "cancelled");
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = [0u8; 12];
    sock.read_exact(&mut head).expect("no answer within 10 s of the cancel");
    assert_eq!(&head, b"HTTP/1.1 409", "{}", String::from_utf8_lossy(&head));
    drop(sock);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(get(&s, &token, &format!("/v1/jobs/{id}")).json()["state"], "cancelled");
    assert_problem(&get(&s, &token, "/v1/objects/stalled"), 404, "not_found");

    // A client that goes away: the job fails as interrupted.
    let sock = stalled_upload(&s, &token, "dropped", 64 << 20, &chunk);
    let id = job_of(&s, &token, "dropped", "running")["id"]
        .as_str()
        .unwrap()
        .to_string();
    drop(sock);
    let j = wait_job(&s, &token, &id, &["failed"], Duration::from_secs(30));
    assert_eq!(j["error_code"], "interrupted", "{j}");

    // A server killed while one streams: after the restart the job's lease
    // expires and it fails as interrupted (nothing was stored to run again).
    let sock = stalled_upload(&s, &token, "killed", 64 << 20, &chunk);
    let id = job_of(&s, &token, "killed", "running")["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.signal("-KILL");
    drop(sock);
    s.spawn();
    let j = wait_job(&s, &token, &id, &["failed"], Duration::from_secs(60));
    assert_eq!(j["error_code"], "interrupted", "{j}");
    assert_problem(&get(&s, &token, "/v1/objects/killed"), 404, "not_found");
}
