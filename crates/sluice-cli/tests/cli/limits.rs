//! End-to-end tests of tenant limits on a running server: `sluice admin
//! tenant set` (rates, quotas, queued jobs) and `token revoke`, applied
//! within a second, answered with 429/413 and `Retry-After`.

use std::time::{Duration, Instant};

use crate::harness::*;
use crate::util::*;

/// Creates a token; returns `(token, token id)`.
fn token_with_id(env: &Env, tenant: &str) -> (String, String) {
    let out = env
        .cmd()
        .args(["admin", "--data-dir"])
        .arg(env.path("data"))
        .args(["token", "create", "--tenant", tenant, "--scope", "write"])
        .assert()
        .success()
        .get_output()
        .clone();
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let err = String::from_utf8(out.stderr).unwrap();
    let id = err
        .split_whitespace()
        .skip_while(|w| *w != "id")
        .nth(1)
        .unwrap_or_else(|| panic!("no token id in {err:?}"))
        .to_string();
    (token, id)
}

/// Incompressible bytes: their containers are as large as they are.
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// Runs `sluice admin tenant set …`, which must succeed.
fn set(env: &Env, args: &[&str]) {
    let mut all = vec!["tenant", "set"];
    all.extend_from_slice(args);
    admin(env, &all);
}

/// Polls `probe` until it returns true, for at most `limit`.
fn within(limit: Duration, mut probe: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if probe() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn rates_quotas_and_revocations_apply_to_a_running_server_within_a_second() {
    let env = Env::new();
    let a = tenant(&env, "acme", "write");
    let (b, _) = token_with_id(&env, "acme");
    let other = tenant(&env, "other", "write");
    let s = Server::start(&env, &["--default-rate", "0"]);
    assert_eq!(get(&s, &a, "/v1/objects").status, 200);

    // Bad values are refused, naming the flag; nothing changes.
    let out = env
        .cmd()
        .args(["admin", "--data-dir"])
        .arg(env.path("data"))
        .args(["tenant", "set", "acme", "--rate", "fast"])
        .assert()
        .failure()
        .get_output()
        .clone();
    assert!(String::from_utf8_lossy(&out.stderr).contains("rate"), "{out:?}");
    env.cmd()
        .args(["admin", "--data-dir"])
        .arg(env.path("data"))
        .args(["tenant", "set", "nobody", "--rate", "1/s"])
        .assert()
        .failure();

    // A rate: each token of the tenant gets its burst, then 429 + Retry-After.
    set(&env, &["acme", "--rate", "2/s", "--burst", "5"]);
    let limited = within(Duration::from_secs(1), || get(&s, &a, "/v1/objects").status == 429);
    assert!(limited.is_some(), "the new rate was not applied within a second");
    let r = get(&s, &a, "/v1/objects");
    assert_problem(&r, 429, "rate_limited");
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    let b_ok = (0..5).filter(|_| get(&s, &b, "/v1/objects").status == 200).count();
    assert_eq!(b_ok, 5, "another token has its own budget");
    assert_eq!(get(&s, &b, "/v1/objects").status, 429);
    assert_eq!(
        get(&s, &other, "/v1/objects").status,
        200,
        "other tenants are not limited"
    );
    let listed = admin(&env, &["tenant", "list"]);
    assert!(listed.contains("acme\trate=2/s burst=5"), "{listed}");

    // A storage quota: uploads that would pass it are refused with 413.
    set(
        &env,
        &["acme", "--rate", "default", "--burst", "default", "--quota", "1MiB"],
    );
    assert!(within(Duration::from_secs(1), || get(&s, &a, "/v1/objects").status == 200).is_some());
    let noise = noise(600 << 10);
    assert_eq!(put(&s, &a, "/v1/objects/one?wait=true", &noise).status, 201);
    let r = put_expecting(&s, &a, "/v1/objects/two?wait=true", &noise);
    assert_problem(&r, 413, "quota_bytes");
    assert_problem(&put_expecting(&s, &a, "/v1/objects/three", &noise), 413, "quota_bytes");
    assert_eq!(put(&s, &other, "/v1/objects/two?wait=true", &noise).status, 201);
    assert_eq!(delete(&s, &a, "/v1/objects/one").status, 204);
    assert_eq!(
        put(&s, &a, "/v1/objects/two?wait=true", &noise).status,
        201,
        "room again"
    );

    // Revocation: the revoked token is refused within a second.
    let (c, c_id) = token_with_id(&env, "acme");
    assert_eq!(get(&s, &c, "/v1/objects").status, 200);
    assert_eq!(get(&s, &c, "/v1/objects").status, 200, "cached now");
    admin(&env, &["token", "revoke", &c_id]);
    let took = within(Duration::from_secs(2), || get(&s, &c, "/v1/objects").status == 401)
        .expect("a revoked token still works after 2 s");
    assert!(took < Duration::from_secs(1), "revocation took {took:?}");
    assert_problem(&get(&s, &c, "/v1/objects"), 401, "unauthorized");
    assert_eq!(get(&s, &a, "/v1/objects").status, 200, "other tokens still work");
}

#[test]
fn queued_jobs_are_capped_per_tenant_and_over_all() {
    let env = Env::new();
    let a = tenant(&env, "acme", "write");
    // Small uploads are stored on arrival and never queue: off here, so
    // that these tiny bodies take the queue.
    let s = Server::start(
        &env,
        &[
            "--max-running-jobs",
            "1",
            "--max-queue-depth",
            "3",
            "--small-object-max",
            "0",
        ],
    );
    // An upload that streams in and then goes quiet holds the only job
    // slot (and counts as running); the uploads after it queue.
    let stalled = stalled_upload(&s, &a, "stalled", 64 << 20, &sample(1 << 20));
    wait_until_running(&s, &a, 1);
    set(&env, &["acme", "--max-queued", "1"]);
    // Limits apply within a second (the revision poll): not sooner is fine.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(put(&s, &a, "/v1/objects/q1", b"queued").status, 202);
    let r = put(&s, &a, "/v1/objects/q2", b"refused");
    assert_problem(&r, 429, "quota_queued");
    assert!(r.header("retry-after").is_some());
    // Over all tenants: the queue depth cap answers 503.
    set(&env, &["acme", "--max-queued", "100"]);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(put(&s, &a, "/v1/objects/q2", b"queued").status, 202);
    let r = put(&s, &a, "/v1/objects/q3", b"refused");
    assert_problem(&r, 503, "queue_full");
    assert!(r.header("retry-after").is_some());
    // The refused ones left nothing; the accepted ones are stored once the
    // slot is free.
    drop(stalled);
    assert_problem(&get(&s, &a, "/v1/objects/q3"), 404, "not_found");
    for key in ["q1", "q2"] {
        let deadline = Instant::now() + Duration::from_secs(60);
        while get(&s, &a, &format!("/v1/objects/{key}/content")).status != 200 {
            assert!(Instant::now() < deadline, "{key} never stored\n{}", s.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
