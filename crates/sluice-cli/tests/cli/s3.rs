//! End-to-end: `sluice serve --store s3://BUCKET/PREFIX` against a real
//! S3-compatible server (moto, from PyPI; `scripts/test.sh` installs it in
//! a venv and names its `moto_server` in `SLUICE_TEST_MOTO`). Endpoint,
//! region and credentials reach the server through the standard `AWS_*`
//! variables.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::resumable::post_json;
use crate::util::*;

/// A moto S3 server on a free port of 127.0.0.1, killed when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    /// Starts moto, or `None` (skipping) when it is not installed — unless
    /// the run requires it (scripts/test.sh installs it and says so).
    fn start() -> Option<Moto> {
        let bin = required_env("SLUICE_TEST_MOTO", "moto")?;
        let port = free_port();
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let endpoint = format!("http://127.0.0.1:{port}");
        wait_until("moto answers", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Some(Moto { child, endpoint })
    }

    fn create_bucket(&self, name: &str) {
        let r = agent().put(format!("{}/{name}", self.endpoint)).send_empty().unwrap();
        assert_eq!(r.status(), 200);
    }

    fn keys(&self, bucket: &str, prefix: &str) -> String {
        let mut r = agent()
            .get(format!("{}/{bucket}?list-type=2&prefix={prefix}", self.endpoint))
            .call()
            .unwrap();
        r.body_mut().read_to_string().unwrap()
    }

    /// The bucket's multipart uploads in progress (S3's
    /// ListMultipartUploads), as XML.
    fn multipart_uploads(&self, bucket: &str) -> String {
        let mut r = agent()
            .get(format!("{}/{bucket}?uploads", self.endpoint))
            .call()
            .unwrap();
        r.body_mut().read_to_string().unwrap()
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "sluice-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "sluice-test-secret".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn uploads_ranges_and_deletes_on_an_s3_store() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("sluice-test");
    let env = Env::new();
    let token = tenant(&env, "acme", "write");
    let vars = moto.env();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // A deleted object's container is kept for readers for the retired
    // grace period: none here, and a reaper pass every second.
    let s = Server::start_with(
        &env,
        &[
            "--store",
            "s3://sluice-test/node-a",
            "--retired-grace-secs",
            "0",
            "--reaper-interval-secs",
            "1",
        ],
        &vars,
    );

    // Small, one part, and several parts (multipart uploads of 8 MiB parts).
    let mut sent = Vec::new();
    for (i, len) in [1000usize, 3 << 20, 21 << 20].into_iter().enumerate() {
        let body = sample(len);
        let r = put(&s, &token, &format!("/v1/objects/s3/{i}"), &body);
        assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
        sent.push((format!("s3/{i}"), body, r.json()["id"].as_str().unwrap().to_string()));
    }
    let streamed = sample(9 << 20);
    let r = put(&s, &token, "/v1/objects/s3/streamed?wait=true", &streamed);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    for (_, _, id) in &sent {
        wait_job(&s, &token, id, &["succeeded"], Duration::from_secs(120));
    }
    sent.push(("s3/streamed".into(), streamed, String::new()));
    for (key, body, _) in &sent {
        assert_eq!(
            get(&s, &token, &format!("/v1/objects/{key}/content")).body,
            *body,
            "{key}"
        );
    }
    // Ranged reads fetch the chunks they need (ranged GETs).
    let (key, body, _) = &sent[2];
    let r = reply(
        agent()
            .get(s.url(&format!("/v1/objects/{key}/content")))
            .header("Authorization", format!("Bearer {token}"))
            .header("Range", "bytes=9437000-18874999")
            .call(),
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, body[9_437_000..18_875_000]);
    let verify = reply(
        agent()
            .post(s.url(&format!("/v1/objects/{key}/verify")))
            .header("Authorization", format!("Bearer {token}"))
            .send_empty(),
    );
    assert_eq!(verify.status, 202);
    wait_job(
        &s,
        &token,
        verify.json()["id"].as_str().unwrap(),
        &["succeeded"],
        Duration::from_secs(60),
    );

    // Containers live under the prefix; staging is gone once jobs are done.
    // (A job's staging is deleted right after its commit, which a client may see first.)
    eventually("no staging left", || {
        !moto.keys("sluice-test", "node-a/").contains("<Key>node-a/staging/")
    });
    // The small one's container lives in its database row, not the bucket.
    let listing = moto.keys("sluice-test", "node-a/");
    assert_eq!(listing.matches("<Key>node-a/objects/").count(), 3, "{listing}");
    assert_eq!(delete(&s, &token, "/v1/objects/s3/0").status, 204);
    assert_eq!(delete(&s, &token, "/v1/objects/s3/1").status, 204);
    eventually("the deleted object's container is reaped", || {
        moto.keys("sluice-test", "node-a/")
            .matches("<Key>node-a/objects/")
            .count()
            == 2
    });
    // A resumable upload (parts as objects under uploads/) through `sluice push`.
    let pushed = sample(13 << 20);
    let file = env.write("pushed.bin", &pushed);
    let out = crate::push_pull::push(&env, &token, &file, &s.base, "s3/pushed")
        .args(["--part-size", "4MiB", "--quiet"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(get(&s, &token, "/v1/objects/s3/pushed/content").body, pushed);
    eventually("the parts are gone once stored", || {
        !moto.keys("sluice-test", "node-a/").contains("<Key>node-a/uploads/")
    });

    // Parts of 5 MiB and more are the parts of one S3 multipart upload:
    // sent in any order and again, nothing under uploads/ but the
    // assembled object, which the job consumes.
    const MIB: usize = 1 << 20;
    let whole = sample(12 * MIB + 333);
    let session = post_json(
        &s,
        &token,
        "/v1/uploads",
        &format!(
            r#"{{"key":"s3/multipart","size":{},"part_size":{}}}"#,
            whole.len(),
            5 * MIB
        ),
    );
    assert_eq!(session.status, 201, "{}", String::from_utf8_lossy(&session.body));
    let id = session.json()["id"].as_str().unwrap().to_string();
    let part = |n: usize| &whole[n * 5 * MIB..((n + 1) * 5 * MIB).min(whole.len())];
    for n in [2, 0, 0, 1] {
        let r = put(&s, &token, &format!("/v1/uploads/{id}/parts/{n}"), part(n));
        assert_eq!(r.status, 200, "part {n}: {}", String::from_utf8_lossy(&r.body));
    }
    assert_eq!(
        get(&s, &token, &format!("/v1/uploads/{id}")).json()["received"],
        serde_json::json!([0, 1, 2])
    );
    assert!(
        !moto.keys("sluice-test", "node-a/uploads/").contains("<Key>"),
        "the parts are in the multipart upload, not objects"
    );
    assert!(moto.multipart_uploads("sluice-test").contains(&id));
    let done = post_json(&s, &token, &format!("/v1/uploads/{id}/complete"), "");
    assert_eq!(done.status, 202, "{}", String::from_utf8_lossy(&done.body));
    wait_job(
        &s,
        &token,
        done.json()["id"].as_str().unwrap(),
        &["succeeded"],
        Duration::from_secs(120),
    );
    assert_same_bytes(
        &get(&s, &token, "/v1/objects/s3/multipart/content").body,
        &whole,
        "s3/multipart",
    );
    eventually("the assembled upload is gone once stored", || {
        !moto.keys("sluice-test", "node-a/uploads/").contains("<Key>")
    });
    assert!(!moto.multipart_uploads("sluice-test").contains(&id));

    // Aborted: its multipart upload is aborted too.
    let session = post_json(
        &s,
        &token,
        "/v1/uploads",
        &format!(r#"{{"key":"s3/given-up","size":{},"part_size":{}}}"#, 11 * MIB, 5 * MIB),
    );
    let gone = session.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        put(&s, &token, &format!("/v1/uploads/{gone}/parts/1"), &whole[..5 * MIB]).status,
        200
    );
    assert!(moto.multipart_uploads("sluice-test").contains(&gone));
    assert_eq!(delete(&s, &token, &format!("/v1/uploads/{gone}")).status, 204);
    assert!(!moto.multipart_uploads("sluice-test").contains(&gone), "aborted");
    assert!(!s.log().contains("sluice-test-secret"), "credentials never logged");
}

/// Waits (up to 20 s) for `cond`.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not after 20 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}
