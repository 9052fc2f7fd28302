//! End-to-end: several processes share one database and one object store —
//! an API-only `sluice serve --workers 0` beside `sluice worker` processes
//! that name the shared state by `--database` and `--store` URLs.

use std::time::{Duration, Instant};

use crate::harness::*;
use crate::util::*;

fn job_ids_succeeded_in(log: &str) -> usize {
    log.lines().filter(|l| l.contains("job succeeded")).count()
}

#[test]
fn an_api_node_and_worker_nodes_share_the_queue_and_a_killed_worker_s_job_is_taken_over() {
    let env = Env::new();
    let token = tenant(&env, "acme", "write");
    let api = Server::start(&env, &["--workers", "0", "--job-lease-secs", "3"]);
    let mut w1 = Worker::start(&env, "w1", &["--workers", "2"]);

    // Mixed sizes: small ones stored by the API node as they arrive (their
    // job already succeeded), the others queued by it and run by the worker.
    let mut sent = Vec::new();
    let mut large = 0;
    for (i, len) in [4 << 10, 100 << 10, 3 << 20, 1, 17 << 20].into_iter().enumerate() {
        let body = sample(len);
        let r = put(&api, &token, &format!("/v1/objects/n/{i}"), &body);
        assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
        let small = len <= 128 << 10;
        assert_eq!(
            r.json()["state"] == "succeeded",
            small,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        large += usize::from(!small);
        sent.push((i, body, r.json()["id"].as_str().unwrap().to_string()));
    }
    for (_, _, id) in &sent {
        wait_job(&api, &token, id, &["succeeded"], Duration::from_secs(120));
    }
    for (i, body, _) in &sent {
        assert_eq!(get(&api, &token, &format!("/v1/objects/n/{i}/content")).body, *body);
    }
    assert_eq!(job_ids_succeeded_in(&api.log()), 0, "the API node ran no queued job");
    assert_eq!(job_ids_succeeded_in(&w1.log()), large, "the worker ran the queued ones");

    // A waiting upload on a node without job slots is staged and answered
    // once a worker stored it.
    let body = sample(2 << 20);
    let r = put(&api, &token, "/v1/objects/n/waited?wait=true", &body);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["state"], "succeeded");

    // A worker killed in the middle of a large job: another takes it over
    // once its lease expires, and it is stored once.
    let big = sample(192 << 20);
    let r = put(&api, &token, "/v1/objects/n/big", &big);
    assert_eq!(r.status, 202);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let j = get(&api, &token, &format!("/v1/jobs/{id}")).json();
        if j["state"] == "running" {
            break;
        }
        assert!(Instant::now() < deadline, "the big job never started: {j}");
        std::thread::sleep(Duration::from_millis(20));
    }
    w1.kill9();
    let mut w2 = Worker::start(&env, "w2", &["--workers", "1"]);
    let done = wait_job(&api, &token, &id, &["succeeded"], Duration::from_secs(180));
    assert!(done["attempts"].as_i64().unwrap() >= 2, "taken over: {done}");
    assert_eq!(get(&api, &token, "/v1/objects/n/big/content").body, big);
    let listed = get(&api, &token, "/v1/objects?prefix=n/").json();
    assert_eq!(
        listed["objects"].as_array().unwrap().len(),
        sent.len() + 2,
        "each stored once"
    );
    assert!(job_ids_succeeded_in(&w2.log()) >= 1);

    // SIGTERM drains a worker cleanly.
    assert!(w2.stop().success(), "{}", w2.log());
    assert!(w2.log().contains("stopped"));
}

#[test]
fn a_worker_needs_job_slots_and_urls_are_checked() {
    let env = Env::new();
    env.cmd()
        .args([
            "worker",
            "--data-dir",
            env.path("d").to_str().unwrap(),
            "--workers",
            "0",
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("at least one job"));
    for (flag, bad, says) in [
        ("--database", "mysql://x", "sqlite://"),
        ("--store", "ftp://x", "file:///DIR or s3://"),
        ("--store", "file://relative/dir", "absolute path"),
    ] {
        env.cmd()
            .args(["serve", "--data-dir", env.path("d").to_str().unwrap(), flag, bad])
            .assert()
            .code(2)
            .stderr(predicates::str::contains(says));
    }
    env.cmd()
        .args([
            "admin",
            "--data-dir",
            env.path("d").to_str().unwrap(),
            "--database",
            "mysql://x",
            "tenant",
            "list",
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("sqlite://"));
}
