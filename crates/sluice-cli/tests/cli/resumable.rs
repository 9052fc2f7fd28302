//! End-to-end: resumable uploads over HTTP — parts in any order, a part
//! sent twice, wrong sizes refused, which parts arrived, completion into a
//! job (once), abort, expiry with the parts reclaimed, the quota.

use std::time::Duration;

use serde_json::Value;

use crate::harness::*;
use crate::util::*;

const MIB: usize = 1 << 20;

pub(crate) fn post_json(s: &Server, token: &str, path: &str, body: &str) -> Reply {
    reply(
        agent()
            .post(s.url(path))
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .send(body.as_bytes()),
    )
}

fn post_empty(s: &Server, token: &str, path: &str) -> Reply {
    reply(
        agent()
            .post(s.url(path))
            .header("Authorization", format!("Bearer {token}"))
            .send_empty(),
    )
}

fn open_session(s: &Server, token: &str, key: &str, size: usize) -> Value {
    let r = post_json(
        s,
        token,
        "/v1/uploads",
        &format!(r#"{{"key":"{key}","size":{size},"part_size":{MIB}}}"#),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

fn send_part(s: &Server, token: &str, id: &str, n: usize, data: &[u8]) -> Reply {
    put(s, token, &format!("/v1/uploads/{id}/parts/{n}"), data)
}

/// Objects stored under `uploads/` for this session (its parts, and any
/// scratch copy of one).
fn part_files(env: &Env, id: &str) -> usize {
    env.stored_names("uploads/")
        .iter()
        .filter(|n| n.contains(&format!("/{id}/")))
        .count()
}

/// Waits (up to 20 s) until no part of session `id` is stored.
fn wait_no_parts(env: &Env, id: &str, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while part_files(env, id) != 0 {
        assert!(std::time::Instant::now() < deadline, "{what}: parts still stored");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn parts_in_any_order_resent_parts_and_completion_into_one_job() {
    let env = Env::new();
    let token = tenant(&env, "acme", "write");
    let s = Server::start(&env, &[]);
    let data = sample(10 * MIB + 123);
    let chunks: Vec<&[u8]> = data.chunks(MIB).collect();
    let session = open_session(&s, &token, "big/resumed.bin", data.len());
    let id = session["id"].as_str().unwrap().to_string();
    assert_eq!(session["parts"], 11);
    assert_eq!(session["state"], "open");

    // Refused: a part of the wrong size, a part out of range, a bad number.
    assert_problem(&send_part(&s, &token, &id, 0, &chunks[0][..1000]), 400, "bad_request");
    // (Small bodies: the server answers before reading one.)
    assert_problem(&send_part(&s, &token, &id, 10, &chunks[0][..124]), 400, "bad_request");
    assert_problem(&send_part(&s, &token, &id, 11, chunks[10]), 400, "bad_request");
    assert_problem(
        &put(&s, &token, &format!("/v1/uploads/{id}/parts/x"), b"1"),
        400,
        "bad_request",
    );
    assert_eq!(part_files(&env, &id), 0, "refused parts leave nothing behind");

    // Backwards, skipping part 3; part 5 twice (the second time is harmless).
    for n in (0..chunks.len()).rev().filter(|n| *n != 3) {
        let r = send_part(&s, &token, &id, n, chunks[n]);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["size"], chunks[n].len());
    }
    assert_eq!(send_part(&s, &token, &id, 5, chunks[5]).status, 200);
    let now = get(&s, &token, &format!("/v1/uploads/{id}")).json();
    let received: Vec<i64> = now["received"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(received, vec![0, 1, 2, 4, 5, 6, 7, 8, 9, 10]);
    assert_eq!(now["received_bytes"], data.len() - MIB);

    let r = post_empty(&s, &token, &format!("/v1/uploads/{id}/complete"));
    assert_problem(&r, 409, "incomplete");
    assert!(
        r.json()["detail"].as_str().unwrap().contains(": 3"),
        "names the missing part"
    );
    assert_eq!(send_part(&s, &token, &id, 3, chunks[3]).status, 200);
    let r = post_empty(&s, &token, &format!("/v1/uploads/{id}/complete"));
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let job = r.json()["id"].as_str().unwrap().to_string();
    let again = post_empty(&s, &token, &format!("/v1/uploads/{id}/complete"));
    assert_eq!(
        (again.status, again.json()["id"].as_str()),
        (200, Some(job.as_str())),
        "one job"
    );
    assert_problem(&send_part(&s, &token, &id, 0, b"x"), 409, "upload_closed");

    wait_job(&s, &token, &job, &["succeeded"], Duration::from_secs(120));
    assert_eq!(get(&s, &token, "/v1/objects/big/resumed.bin/content").body, data);
    assert_eq!(
        get(&s, &token, &format!("/v1/uploads/{id}")).json()["state"],
        "completed"
    );
    // Deleted right after the job's commit (which the client may see first).
    wait_no_parts(&env, &id, "the parts are deleted once stored");

    // Abort: the session closes and its parts go.
    let other = open_session(&s, &token, "gone.bin", 3 * MIB);
    let oid = other["id"].as_str().unwrap().to_string();
    assert_eq!(send_part(&s, &token, &oid, 1, &data[..MIB]).status, 200);
    assert_eq!(part_files(&env, &oid), 1);
    assert_eq!(delete(&s, &token, &format!("/v1/uploads/{oid}")).status, 204);
    assert_eq!(
        get(&s, &token, &format!("/v1/uploads/{oid}")).json()["state"],
        "aborted"
    );
    assert_eq!(part_files(&env, &oid), 0);
    assert_problem(
        &post_empty(&s, &token, &format!("/v1/uploads/{oid}/complete")),
        409,
        "upload_closed",
    );

    // Another tenant sees none of it.
    let eve = tenant(&env, "eve", "write");
    assert_problem(&get(&s, &eve, &format!("/v1/uploads/{id}")), 404, "not_found");
    assert_problem(&send_part(&s, &eve, &oid, 0, b"x"), 404, "not_found");

    // An open session's size counts against the quota.
    admin(&env, &["tenant", "set", "acme", "--quota", "2MiB"]);
    std::thread::sleep(Duration::from_millis(1500));
    let r = post_json(
        &s,
        &token,
        "/v1/uploads",
        &format!(r#"{{"key":"q","size":{}}}"#, 8 * MIB),
    );
    assert_problem(&r, 413, "quota_bytes");
}

#[test]
fn an_expired_session_is_reclaimed() {
    let env = Env::new();
    let token = tenant(&env, "acme", "write");
    let s = Server::start(&env, &["--upload-ttl-secs", "1", "--reaper-interval-secs", "1"]);
    let session = open_session(&s, &token, "late.bin", 2 * MIB);
    let id = session["id"].as_str().unwrap().to_string();
    assert_eq!(send_part(&s, &token, &id, 0, &sample(MIB)).status, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while get(&s, &token, &format!("/v1/uploads/{id}")).json()["state"] != "expired" {
        assert!(std::time::Instant::now() < deadline, "the session never expired");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The reaper closes the session first, then deletes its parts.
    wait_no_parts(&env, &id, "its parts were reclaimed");
    // (A small body: the server answers before reading one.)
    assert_problem(&send_part(&s, &token, &id, 1, b"x"), 409, "upload_closed");
}
