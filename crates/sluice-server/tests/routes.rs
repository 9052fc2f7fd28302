//! The native API's routes without a socket: each request goes through the
//! real router (`tower::ServiceExt::oneshot`) to a service on a temporary
//! SQLite database and an in-memory object store.
//!
//! The error table: a failing upload answers the same status and code
//! whether it was processed while it streamed in (a job slot was free) or
//! staged and queued (none was).

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use serde_json::Value;
use sluice_server::api::{JobBody, ProblemBody};
use sluice_service::testing::TestService;
use sluice_service::{Scope, Settings};
use tower::ServiceExt;

/// An answer: status, headers and body.
struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }

    fn problem(&self) -> ProblemBody {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not a problem: {} {}", self.status, String::from_utf8_lossy(&self.body)))
    }

    #[track_caller]
    fn expect(&self, status: u16, code: &str) {
        let p = self.problem();
        assert_eq!(
            (self.status.as_u16(), p.code.as_str()),
            (status, code),
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(p.status, status);
        assert_eq!(self.headers["content-type"], "application/problem+json");
    }
}

async fn send(app: &Router, req: Request<Body>) -> Reply {
    let resp = app.clone().oneshot(req).await.expect("the router answers");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_else(|e| format!("(body broke off: {e})").into_bytes());
    Reply { status, headers, body }
}

fn request(method: &str, path: &str, token: &str, body: Body) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .body(body)
        .expect("a request")
}

/// A service for `settings`; unless they say otherwise, with no small-object
/// path (these tests' bodies are small, and most of them are about the
/// streamed and queued paths; [`Path::Small`] turns it on).
async fn setup(settings: Settings) -> (TestService, Router, String) {
    let settings = Settings {
        small_object_max: settings.small_object_max.or(Some(0)),
        ..settings
    };
    let t = TestService::start(settings).await;
    let token = t.tenant("acme", Scope::Write).await;
    let app = sluice_server::router(t.service.clone());
    (t, app, token)
}

/// Waits until `check` holds, or fails the test after `secs`.
async fn wait_until<F: std::future::Future<Output = bool>>(secs: u64, what: &str, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Which way an upload with `?wait=true` is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    /// A job slot is free: processed as it streams in.
    Streamed,
    /// No slot is free: staged, queued, run by the dispatcher once a slot
    /// frees up.
    Queued,
    /// A small body: stored on arrival, its container in its row, recorded
    /// by the group commit (the service must allow small objects: see
    /// [`small`]).
    Small,
}

/// `settings` with the small-object path on for this file's bodies.
fn small(settings: Settings) -> Settings {
    Settings {
        small_object_max: Some(1 << 20),
        ..settings
    }
}

/// `PUT uri` with `?wait=true` on `path`'s way; `body` makes the body.
async fn put_waiting(
    t: &TestService,
    app: &Router,
    token: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: fn() -> Body,
    path: Path,
) -> Reply {
    let mut req = request("PUT", uri, token, body());
    for (k, v) in headers {
        req.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    match path {
        Path::Streamed | Path::Small => send(app, req).await,
        Path::Queued => {
            let held = t.hold_job_slots().expect("free job slots to hold");
            let before = queued_jobs(t, token).await;
            let app = app.clone();
            let answer = tokio::spawn(async move { send(&app, req).await });
            // Once the job is queued (or the request ended without one),
            // the slots are given back and the dispatcher runs it.
            wait_until(10, "the upload is queued or answered", || {
                let done = answer.is_finished();
                async move { done || queued_jobs(t, token).await > before }
            })
            .await;
            drop(held);
            answer.await.expect("the request task")
        }
    }
}

async fn queued_jobs(t: &TestService, token: &str) -> usize {
    let caller = t.caller(token).await;
    t.service
        .jobs(&caller, Some("queued"), None, Some(1000))
        .await
        .map(|p| p.items.len())
        .unwrap_or(0)
}

fn data() -> Body {
    Body::from(vec![7u8; 100_000])
}

fn broken() -> Body {
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
        Ok(bytes::Bytes::from(vec![1u8; 70_000])),
        Err(std::io::Error::other("connection reset by the client")),
    ];
    Body::from_stream(futures_util::stream::iter(chunks))
}

/// The same failure on every path: one status, one code.
async fn both_paths(
    settings: Settings,
    plant: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: fn() -> Body,
) -> Vec<(u16, String)> {
    // A failing object store does not touch small objects (they live in
    // the database): only the other paths can meet it.
    let paths: &[Path] = match uri.contains("fail-storage") {
        true => &[Path::Streamed, Path::Queued],
        false => &[Path::Streamed, Path::Queued, Path::Small],
    };
    let mut answers = Vec::new();
    for &path in paths {
        let settings = match path {
            Path::Small => small(settings.clone()),
            _ => settings.clone(),
        };
        let (t, app, token) = setup(settings).await;
        if !plant.is_empty() {
            let tenant = t.caller(&token).await.tenant().to_string();
            t.sql(&plant.replace("TENANT", &tenant)).await;
        }
        if uri.contains("fail-storage") {
            t.faults.fail_writes_under("objects/");
        }
        let r = put_waiting(&t, &app, &token, uri, headers, body, path).await;
        let p = r.problem();
        answers.push((r.status.as_u16(), p.code.clone()));
        // Nothing is stored, whichever path ran.
        let key = uri
            .trim_start_matches("/v1/objects/")
            .split('?')
            .next()
            .unwrap_or_default();
        send(
            &app,
            request("GET", &format!("/v1/objects/{key}"), &token, Body::empty()),
        )
        .await
        .expect(404, "not_found");
        t.stop().await;
    }
    assert_eq!(answers[0], answers[1], "streamed vs queued");
    if let Some(small) = answers.get(2) {
        assert_eq!(&answers[0], small, "streamed vs small");
    }
    answers
}

fn slots() -> Settings {
    Settings {
        max_running_jobs: Some(1),
        ..Settings::default()
    }
}

#[tokio::test]
async fn a_digest_mismatch_is_422_on_both_paths() {
    let zeros = "0".repeat(64);
    let got = both_paths(
        slots(),
        "",
        "/v1/objects/checked?wait=true",
        &[("x-sluice-blake3", zeros.as_str())],
        data,
    )
    .await;
    assert_eq!(got[0], (422, "digest_mismatch".into()));
}

#[tokio::test]
async fn an_unknown_pipeline_is_404_on_both_paths() {
    let got = both_paths(slots(), "", "/v1/objects/p?wait=true&pipeline=nope", &[], data).await;
    assert_eq!(got[0], (404, "not_found".into()));
}

#[tokio::test]
async fn a_recipient_that_cannot_seal_is_a_key_failure_on_both_paths() {
    // A pipeline row no API would accept (planted behind its back).
    let plant = "INSERT INTO pipelines (tenant_id, name, compress, encrypt, chunk_size, recipients, updated_at) \
                 VALUES ('TENANT', 'broken', 'zstd:3', 'aes256gcm', '1MiB', '[\"sluice1notarecipient\"]', 0)";
    let got = both_paths(slots(), plant, "/v1/objects/k?wait=true&pipeline=broken", &[], data).await;
    assert_eq!(got[0], (422, "key".into()));
}

#[tokio::test]
async fn a_client_that_goes_away_is_interrupted_on_both_paths() {
    let got = both_paths(slots(), "", "/v1/objects/cut?wait=true", &[], broken).await;
    assert_eq!(got[0], (400, "interrupted".into()));
}

/// Found by the nemesis (`scripts/nemesis.sh --backend postgres --minutes
/// 30 --seed 30`): a node paused past a streamed upload's lease answered
/// its client 409 `cancelled` when it woke, though nobody had cancelled
/// anything (another node had taken the job over and failed it). That is
/// the server's fault: 503 `unavailable`, send it again. A user's cancel
/// is still 409 `cancelled`.
#[tokio::test]
async fn a_streamed_upload_that_lost_its_lease_is_503_and_a_cancelled_one_409() {
    use futures_util::StreamExt;
    let (t, app, token) = setup(Settings {
        job_lease_secs: Some(3),
        ..slots()
    })
    .await;
    let caller = t.caller(&token).await;
    for (key, lost_lease) in [("stalled", true), ("cancelled", false)] {
        // Some bytes, then a client that sends no more (until cut off).
        let first: Result<bytes::Bytes, std::io::Error> = Ok(bytes::Bytes::from(vec![1u8; 70_000]));
        let body = Body::from_stream(futures_util::stream::iter([first]).chain(futures_util::stream::pending()));
        let req = request("PUT", &format!("/v1/objects/{key}?wait=true"), &token, body);
        let router = app.clone();
        let answer = tokio::spawn(async move { send(&router, req).await });
        let job = loop {
            let running = t.service.jobs(&caller, Some("running"), None, Some(10)).await.unwrap();
            if let Some(job) = running.items.into_iter().find(|j| j.object_key == key) {
                break job;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        if lost_lease {
            // What a takeover does to the row: a new attempt holds it.
            t.sql(&format!(
                "UPDATE jobs SET attempts = attempts + 1 WHERE id = '{}'",
                job.id
            ))
            .await;
        } else {
            t.service.cancel_job(&caller, &job.id).await.unwrap();
        }
        let reply = tokio::time::timeout(Duration::from_secs(10), answer)
            .await
            .expect("the upload is answered once its attempt stops")
            .unwrap();
        if lost_lease {
            reply.expect(503, "unavailable");
        } else {
            reply.expect(409, "cancelled");
        }
    }
    t.stop().await;
}

#[tokio::test]
async fn a_transient_storage_failure_is_503_on_both_paths() {
    // Failing container writes, no retries, a breaker that stays closed
    // and one attempt: the failure is the job's, at once.
    let settings = Settings {
        max_running_jobs: Some(1),
        store_retries: Some(0),
        breaker_failures: Some(1000),
        job_max_attempts: Some(1),
        ..Settings::default()
    };
    let got = both_paths(settings, "", "/v1/objects/fail-storage?wait=true", &[], data).await;
    assert_eq!(got[0], (503, "unavailable".into()));
}

#[tokio::test]
async fn an_internal_error_is_500_on_both_paths() {
    // The tenant's own identity is the server's data: damaged, it is a bug
    // or a broken database, not the client's fault.
    let plant = "UPDATE tenants SET identity = substr(identity, 2) WHERE id = 'TENANT'";
    let got = both_paths(slots(), plant, "/v1/objects/i?wait=true", &[], data).await;
    assert_eq!(got[0], (500, "internal".into()));
}

#[tokio::test]
async fn a_job_records_the_same_code_the_answer_carries() {
    let zeros = "0".repeat(64);
    for paths in [&[Path::Streamed, Path::Queued][..], &[Path::Small]] {
        let settings = match paths[0] {
            Path::Small => small(slots()),
            _ => slots(),
        };
        let (t, app, token) = setup(settings).await;
        for &path in paths {
            let r = put_waiting(
                &t,
                &app,
                &token,
                "/v1/objects/d?wait=true",
                &[("x-sluice-blake3", zeros.as_str())],
                data,
                path,
            )
            .await;
            r.expect(422, "digest_mismatch");
        }
        let failed = send(&app, request("GET", "/v1/jobs?state=failed", &token, Body::empty())).await;
        let jobs: Vec<JobBody> = serde_json::from_value(failed.json()["jobs"].clone()).unwrap();
        assert_eq!(jobs.len(), paths.len(), "{jobs:?}");
        for j in jobs {
            assert_eq!(j.error_code.as_deref(), Some("digest_mismatch"), "{j:?}");
        }
        t.stop().await;
    }
}

#[tokio::test]
async fn uploads_are_stored_and_read_back_on_every_path() {
    for (path, key) in [(Path::Streamed, "a"), (Path::Queued, "b"), (Path::Small, "c")] {
        let settings = match path {
            Path::Small => small(slots()),
            _ => slots(),
        };
        let (t, app, token) = setup(settings).await;
        let r = put_waiting(
            &t,
            &app,
            &token,
            &format!("/v1/objects/{key}?wait=true"),
            &[],
            data,
            path,
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&r.body));
        let job: JobBody = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(job.state, "succeeded");
        assert_eq!(r.headers["location"], format!("/v1/jobs/{}", job.id));
        let content = send(
            &app,
            request("GET", &format!("/v1/objects/{key}/content"), &token, Body::empty()),
        )
        .await;
        assert_eq!(content.status, StatusCode::OK);
        assert_eq!(content.body, vec![7u8; 100_000]);
        let mut ranged = request("GET", &format!("/v1/objects/{key}/content"), &token, Body::empty());
        ranged.headers_mut().insert("range", "bytes=10-19".parse().unwrap());
        let r = send(&app, ranged).await;
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.headers["content-range"], "bytes 10-19/100000");
        assert_eq!(r.body, vec![7u8; 10]);
        // The container itself, as `sluice restore` reads it.
        let container = send(
            &app,
            request("GET", &format!("/v1/objects/{key}"), &token, Body::empty()),
        )
        .await;
        assert_eq!(container.status, StatusCode::OK);
        assert_eq!(&container.body[..8], b"\x89SLUICE\n");
        assert_eq!(
            container.headers["content-length"].to_str().unwrap(),
            container.body.len().to_string()
        );
        t.stop().await;
    }
}

#[tokio::test]
async fn request_errors_are_problems_with_stable_codes() {
    let (t, app, writer) = setup(slots()).await;
    let reader = t.tenant("acme", Scope::Read).await;
    let other = t.tenant("other", Scope::Write).await;
    let none = Request::builder().uri("/v1/objects").body(Body::empty()).unwrap();
    send(&app, none).await.expect(401, "unauthorized");
    send(&app, request("GET", "/v1/objects", "sluice_00", Body::empty()))
        .await
        .expect(401, "unauthorized");
    send(&app, request("PUT", "/v1/objects/x", &reader, data()))
        .await
        .expect(403, "forbidden");
    send(&app, request("PUT", "/v1/objects/a/../b", &writer, data()))
        .await
        .expect(400, "invalid_key");
    send(&app, request("GET", "/v1/objects/missing", &writer, Body::empty()))
        .await
        .expect(404, "not_found");
    send(&app, request("PATCH", "/v1/objects/x", &writer, Body::empty()))
        .await
        .expect(405, "method_not_allowed");
    send(&app, request("GET", "/v1/jobs?state=sideways", &writer, Body::empty()))
        .await
        .expect(400, "bad_request");
    send(&app, request("GET", "/v1/objects?limit=0", &writer, Body::empty()))
        .await
        .expect(400, "bad_request");
    send(
        &app,
        request("PUT", "/v1/pipelines/p", &writer, Body::from("{not json")),
    )
    .await
    .expect(400, "invalid_json");
    send(
        &app,
        request("PUT", "/v1/pipelines/Bad%20Name", &writer, Body::from("{}")),
    )
    .await
    .expect(400, "invalid_name");
    send(
        &app,
        request("PUT", "/v1/pipelines/p", &writer, Body::from(r#"{"compress":"gzip"}"#)),
    )
    .await
    .expect(400, "invalid_pipeline");
    send(&app, request("GET", "/v1/nothing-here", &writer, Body::empty()))
        .await
        .expect(404, "not_found");
    send(&app, request("GET", "/v1/admin/tenants", &writer, Body::empty()))
        .await
        .expect(403, "forbidden");

    // A stored object: another tenant does not see it; a bad range is 416.
    let stored = send(&app, request("PUT", "/v1/objects/kept?wait=true", &writer, data())).await;
    assert_eq!(stored.status, StatusCode::CREATED);
    send(&app, request("GET", "/v1/objects/kept", &other, Body::empty()))
        .await
        .expect(404, "not_found");
    let mut ranged = request("GET", "/v1/objects/kept/content", &writer, Body::empty());
    ranged.headers_mut().insert("range", "bytes=200000-".parse().unwrap());
    let r = send(&app, ranged).await;
    r.expect(416, "range_not_satisfiable");
    assert_eq!(r.headers["content-range"], "bytes */100000");
    // A finished job cannot be cancelled; an upload cannot be retried.
    let job: JobBody = serde_json::from_slice(&stored.body).unwrap();
    send(
        &app,
        request("DELETE", &format!("/v1/jobs/{}", job.id), &writer, Body::empty()),
    )
    .await
    .expect(409, "already_finished");
    send(
        &app,
        request("POST", &format!("/v1/jobs/{}/retry", job.id), &writer, Body::empty()),
    )
    .await
    .expect(409, "not_finished");
    // A closed upload session takes no parts.
    let mut open = request("POST", "/v1/uploads", &writer, Body::from(r#"{"key":"s","size":10}"#));
    open.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    let session = send(&app, open).await;
    assert_eq!(
        session.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&session.body)
    );
    let id = session.json()["id"].as_str().unwrap().to_string();
    send(
        &app,
        request("POST", &format!("/v1/uploads/{id}/complete"), &writer, Body::empty()),
    )
    .await
    .expect(409, "incomplete");
    let aborted = send(
        &app,
        request("DELETE", &format!("/v1/uploads/{id}"), &writer, Body::empty()),
    )
    .await;
    assert_eq!(aborted.status, StatusCode::NO_CONTENT);
    send(
        &app,
        request(
            "PUT",
            &format!("/v1/uploads/{id}/parts/0"),
            &writer,
            Body::from("0123456789"),
        ),
    )
    .await
    .expect(409, "upload_closed");
    t.stop().await;
}

#[tokio::test]
async fn limits_refuse_with_retry_after() {
    let settings = Settings {
        max_running_jobs: Some(1),
        default_max_queued: Some(1),
        ..Settings::default()
    };
    let (t, app, token) = setup(settings).await;
    let held = t.hold_job_slots();
    let first = send(&app, request("PUT", "/v1/objects/q1", &token, data())).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let second = send(&app, request("PUT", "/v1/objects/q2", &token, data())).await;
    second.expect(429, "quota_queued");
    assert!(second.headers.contains_key("retry-after"));
    drop(held);
    t.stop().await;
}

/// Issue #19: past its transfer cap a tenant's next download gets 429 with
/// `Retry-After` while another tenant is served; past the node's cap, 503,
/// and `/readyz` says the node is saturated. Ending a transfer frees it.
#[tokio::test]
async fn transfer_caps_refuse_with_retry_after_and_readyz_reports_saturation() {
    let settings = Settings {
        max_transfers: Some(2),
        max_transfers_per_tenant: Some(1),
        ..Settings::default()
    };
    let (t, app, token) = setup(settings).await;
    let other = t.tenant("beta", Scope::Write).await;
    let third = t.tenant("gamma", Scope::Write).await;
    for tok in [&token, &other, &third] {
        let put = send(&app, request("PUT", "/v1/objects/k?wait=true", tok, data())).await;
        assert_eq!(put.status, StatusCode::CREATED);
    }
    let open_download = |tok: &str| {
        let app = app.clone();
        let req = request("GET", "/v1/objects/k/content", tok, Body::empty());
        async move { app.oneshot(req).await.expect("the router answers") }
    };
    // acme's download, its body not read: the transfer stays in flight.
    let held = open_download(&token).await;
    assert_eq!(held.status(), StatusCode::OK);
    let refused = send(&app, request("GET", "/v1/objects/k/content", &token, Body::empty())).await;
    refused.expect(429, "too_many_transfers");
    assert!(refused.headers.contains_key("retry-after"));
    // beta is within its own cap; with it the node is at its cap.
    let beta = open_download(&other).await;
    assert_eq!(beta.status(), StatusCode::OK);
    let full = send(&app, request("GET", "/v1/objects/k/content", &third, Body::empty())).await;
    full.expect(503, "transfers_full");
    assert!(full.headers.contains_key("retry-after"));
    let ready = send(&app, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    ready.expect(503, "not_ready");
    assert!(String::from_utf8_lossy(&ready.body).contains("saturated"));
    // Ending the transfers frees them.
    let body = axum::body::to_bytes(held.into_body(), usize::MAX).await.unwrap();
    assert_eq!(body.len(), 100_000);
    drop(beta);
    let again = send(&app, request("GET", "/v1/objects/k/content", &token, Body::empty())).await;
    assert_eq!(again.status, StatusCode::OK);
    let ready = send(&app, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(ready.status, StatusCode::OK);
    t.stop().await;
}

#[tokio::test]
async fn buckets_are_created_given_a_pipeline_and_deleted_natively() {
    let (t, app, writer) = setup(slots()).await;
    let other = t.tenant("other", Scope::Write).await;
    let body = |s: &str| Body::from(s.to_string());
    let json = |r: &Reply| serde_json::from_slice::<serde_json::Value>(&r.body).expect("JSON");
    let made = send(&app, request("PUT", "/v1/buckets/photos", &writer, Body::empty())).await;
    assert_eq!(made.status, 201);
    assert_eq!(json(&made)["pipeline"], serde_json::Value::Null);
    // A pipeline that does not exist is refused, and nothing changes.
    send(
        &app,
        request("PUT", "/v1/buckets/photos", &writer, body(r#"{"pipeline":"fast"}"#)),
    )
    .await
    .expect(404, "not_found");
    let made = send(
        &app,
        request("PUT", "/v1/pipelines/fast", &writer, body(r#"{"compress":"lz4"}"#)),
    )
    .await;
    assert_eq!(made.status, 200);
    let set = send(
        &app,
        request("PUT", "/v1/buckets/photos", &writer, body(r#"{"pipeline":"fast"}"#)),
    )
    .await;
    assert_eq!(
        (set.status.as_u16(), json(&set)["pipeline"].as_str()),
        (200, Some("fast"))
    );
    let listed = send(&app, request("GET", "/v1/buckets", &writer, Body::empty())).await;
    assert_eq!(json(&listed)["buckets"][0]["pipeline"], "fast");
    // Another tenant can neither see nor take it.
    send(&app, request("GET", "/v1/buckets/photos", &other, Body::empty()))
        .await
        .expect(403, "forbidden");
    send(&app, request("PUT", "/v1/buckets/photos", &other, Body::empty()))
        .await
        .expect(403, "forbidden");
    send(&app, request("PUT", "/v1/buckets/Bad_Name", &writer, Body::empty()))
        .await
        .expect(400, "invalid_name");
    send(
        &app,
        request("PUT", "/v1/buckets/photos", &writer, body(r#"{"pipe":1}"#)),
    )
    .await
    .expect(400, "invalid_json");
    // Cleared: back to the default.
    let cleared = send(
        &app,
        request("PUT", "/v1/buckets/photos", &writer, body(r#"{"pipeline":null}"#)),
    )
    .await;
    assert_eq!(json(&cleared)["pipeline"], serde_json::Value::Null);
    let gone = send(&app, request("DELETE", "/v1/buckets/photos", &writer, Body::empty())).await;
    assert_eq!(gone.status, 204);
    send(&app, request("GET", "/v1/buckets/photos", &writer, Body::empty()))
        .await
        .expect(404, "not_found");
}
