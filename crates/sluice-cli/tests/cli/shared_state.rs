//! End-to-end: several nodes on shared PostgreSQL (+ S3) through what goes
//! wrong in production — a worker killed in the middle of a large job, a
//! database restart, an object store outage. Runs when
//! `scripts/shared_state_test.sh` provides the servers (`SLUICE_TEST_*`);
//! skipped otherwise, unless the run requires them (`SLUICE_TEST_REQUIRE`).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::util::*;

/// The test PostgreSQL server's control script and data directory.
fn postgres_control() -> Option<(String, String)> {
    let ctl = required_env("SLUICE_TEST_PG_CTL", "postgres")?;
    let dir = required_env("SLUICE_TEST_PG_DIR", "postgres")?;
    Some((ctl, dir))
}

/// Uploads `body` (not waiting for the job), retrying while the service
/// answers 503 (the database restarting); returns the job id.
fn upload(api: &Server, token: &str, key: &str, body: &[u8]) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = put(api, token, &format!("/v1/objects/{key}?wait=false"), body);
        if r.status == 202 {
            return r.json()["id"].as_str().unwrap().to_string();
        }
        assert!(
            r.status == 503 && Instant::now() < deadline,
            "{key}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A job's JSON, retrying while the service answers 503.
fn job(api: &Server, token: &str, id: &str) -> serde_json::Value {
    loop {
        let r = get(api, token, &format!("/v1/jobs/{id}"));
        if r.status != 503 {
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            return r.json();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The size of job `i` of the mixed run: mostly small, some medium, one of
/// 256 MiB (job 0, the one whose worker is killed).
fn mixed_len(i: usize) -> usize {
    match i {
        0 => 256 << 20,
        i if i % 50 == 25 => (8 << 20) + i * 1000,
        i => (4 << 10) + (i * 7919) % (256 << 10),
    }
}

#[test]
fn three_nodes_300_jobs_a_worker_killed_mid_job_and_postgres_restarted_each_stored_once() {
    let Some((pg_ctl, pg_dir)) = postgres_control() else {
        return;
    };
    let env = Env::new();
    let token = tenant(&env, "acme", "write");
    // The age must exceed the longest an upload's staged bytes can wait
    // for their job row (here, across the database restart).
    let reaper = [
        "--reaper-interval-secs",
        "1",
        "--reaper-min-age-secs",
        "10",
        "--reaper-multipart-age-secs",
        "10",
    ];
    let api = Server::start(
        &env,
        &[&["--workers", "0", "--job-lease-secs", "3"][..], &reaper[..]].concat(),
    );
    let mut w1 = Worker::start(&env, "w1", &[&["--workers", "2"][..], &reaper[..]].concat());
    let mut w2 = Worker::start(&env, "w2", &[&["--workers", "2"][..], &reaper[..]].concat());

    // The large job first; once a worker is in the middle of it, kill that worker.
    let big = sample(mixed_len(0));
    let big_id = upload(&api, &token, "mix/0", &big);
    let deadline = Instant::now() + Duration::from_secs(120);
    while job(&api, &token, &big_id)["progress"]["bytes_in"].as_i64().unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "the large job never made progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    let victim = if w1.log().contains(&big_id) { &mut w1 } else { &mut w2 };
    assert!(victim.log().contains(&big_id), "a worker logs the job it runs");
    victim.kill9();

    let mut ids = vec![(0usize, big_id)];
    let mut w3 = None;
    for i in 1..300 {
        ids.push((i, upload(&api, &token, &format!("mix/{i}"), &sample(mixed_len(i)))));
        if i == 100 {
            // A replacement node, started later.
            w3 = Some(Worker::start(
                &env,
                "w3",
                &[&["--workers", "2"][..], &reaper[..]].concat(),
            ));
        }
        if i == 150 {
            let out = Command::new(&pg_ctl).args(["restart", &pg_dir]).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
    }

    // Every accepted job succeeds, exactly once.
    for (i, id) in &ids {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let j = job(&api, &token, id);
            match j["state"].as_str().unwrap() {
                "succeeded" => break,
                "queued" | "running" => {}
                _ => panic!("job {i} ended {j}"),
            }
            assert!(Instant::now() < deadline, "job {i} not done: {j}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    for (i, _) in &ids {
        let got = get(&api, &token, &format!("/v1/objects/mix/{i}/content"));
        assert_eq!(got.status, 200, "mix/{i}: {}", String::from_utf8_lossy(&got.body));
        assert_same_bytes(&got.body, &sample(mixed_len(*i)), &format!("mix/{i}"));
    }
    let mut keys = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = get(&api, &token, &format!("/v1/objects?prefix=mix/&limit=1000{cursor}")).json();
        keys.extend(
            page["objects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["key"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(keys.len(), 300, "each stored once");
    let big = job(&api, &token, &ids[0].1);
    assert!(big["attempts"].as_i64().unwrap() >= 2, "taken over: {big}");

    // Once the reapers ran: one container per object in the store (a
    // small object's is in its row), no staging left and no multipart
    // upload (the killed attempt's unfinished container included).
    let stored = (0..300).filter(|&i| mixed_len(i) > 128 << 10).count();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let containers = env.stored_names("objects/");
        let staging = env.stored_names("staging/");
        let multipart = env.multipart_uploads();
        if containers.len() == stored && staging.is_empty() && multipart == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} containers, {multipart} multipart uploads, staging left: {staging:?}",
            containers.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let logs = [
        api.log(),
        w1.log(),
        w2.log(),
        w3.as_ref().map(Worker::log).unwrap_or_default(),
    ];
    for log in &logs {
        assert!(!log.contains("panicked"), "{log}");
    }
}

/// A TCP proxy that can cut its traffic: the object store "goes away"
/// (connections reset, new ones refused) and comes back, while the store
/// itself keeps its data.
struct Outage {
    port: u16,
    down: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Outage {
    fn start(upstream: u16) -> Outage {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (d, o) = (Arc::clone(&down), Arc::clone(&open));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if d.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                o.lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 64 << 10];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Write);
                    });
                }
            }
        });
        Outage { port, down, open }
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

#[test]
fn an_s3_outage_of_20_s_answers_503_fast_and_running_jobs_finish_after_it() {
    let Some(endpoint) = required_env("SLUICE_TEST_S3", "s3") else {
        return;
    };
    let upstream: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let proxy = Outage::start(upstream);
    let env = Env::new();
    let token = tenant(&env, "acme", "write");
    let proxied = format!("http://127.0.0.1:{}", proxy.port);
    let s = Server::start_with(
        &env,
        &[
            "--workers",
            "1",
            "--breaker-failures",
            "2",
            "--breaker-open-secs",
            "1",
            "--store-retries",
            "1",
            "--store-timeout-secs",
            "2",
        ],
        &[("AWS_ENDPOINT_URL", &proxied)],
    );
    // Jobs accepted before the outage, one of them large enough to be
    // running when it starts.
    let mut sent = Vec::new();
    for (i, len) in [64 << 20, 1 << 20, 4 << 10].into_iter().enumerate() {
        let body = sample(len);
        sent.push((i, upload(&s, &token, &format!("o/{i}"), &body), body));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while job(&s, &token, &sent[0].1)["state"] != "running" {
        assert!(Instant::now() < deadline, "the large job never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    proxy.cut();
    let cut_at = Instant::now();
    // Uploads that need the store are refused with 503 and Retry-After;
    // once the breaker is open, at once. Small ones live in the database:
    // they are stored all along.
    let mut fast = Duration::MAX;
    let large = sample(1 << 20);
    while cut_at.elapsed() < Duration::from_secs(15) {
        let started = Instant::now();
        // Refused before its body is read: a client that sends it anyway may
        // see a broken pipe instead of the answer, so this one asks first.
        let r = put_expecting(&s, &token, "/v1/objects/during?wait=false", &large);
        assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
        assert!(r.header("retry-after").is_some());
        fast = fast.min(started.elapsed());
        let r = put(&s, &token, "/v1/objects/small-during?wait=true", b"bytes");
        assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(fast < Duration::from_millis(500), "{fast:?}");
    assert_eq!(get(&s, &token, "/v1/objects/small-during/content").body, b"bytes");
    for (i, id, _) in &sent {
        let j = job(&s, &token, id);
        assert!(j["state"] != "failed", "job {i} failed during the outage: {j}");
    }
    std::thread::sleep(Duration::from_secs(20).saturating_sub(cut_at.elapsed()));
    proxy.restore();
    for (i, id, body) in &sent {
        let j = wait_job(&s, &token, id, &["succeeded", "failed"], Duration::from_secs(180));
        assert_eq!(j["state"], "succeeded", "job {i}: {j}\n{}", s.log());
        assert_same_bytes(
            &get(&s, &token, &format!("/v1/objects/o/{i}/content")).body,
            body,
            &format!("o/{i}"),
        );
    }
    assert_eq!(put(&s, &token, "/v1/objects/after?wait=false", b"bytes").status, 202);
    assert!(!s.log().contains("panicked"), "{}", s.log());
}
