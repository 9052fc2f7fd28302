//! End-to-end: what operators see of a running `sluice serve` — `/metrics`
//! (on its own listener, behind its token), request ids, job spans, JSON
//! logs — and that no secret used in a full run reaches a log line.

use std::time::Duration;

use serde_json::Value;

use crate::harness::*;
use crate::util::*;

fn metrics(base: &str, token: Option<&str>) -> Reply {
    let mut req = agent().get(format!("{base}/metrics"));
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    reply(req.call())
}

/// The value of the first sample of `series` (a name with labels, as
/// rendered), if present.
fn value_of(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn metrics_request_ids_json_logs_and_no_secret_in_any_log_line() {
    let env = Env::new();
    let token = tenant(&env, "acme", "admin");
    let metrics_token = "metrics-secret-5b1d0c";
    std::fs::write(env.path("metrics.token"), format!("{metrics_token}\n")).unwrap();
    let metrics_port = free_port();
    let metrics_base = format!("http://127.0.0.1:{metrics_port}");
    let s = Server::start_with(
        &env,
        &[
            "--log-format",
            "json",
            "--metrics-listen",
            &format!("127.0.0.1:{metrics_port}"),
            "--metrics-token-file",
            env.path("metrics.token").to_str().unwrap(),
        ],
        &[("RUST_LOG", "debug,sqlx=warn,hyper=info,h2=info")],
    );

    // A request id from the client is kept and returned; one is made otherwise.
    let r = reply(
        agent()
            .get(s.url("/v1/objects"))
            .header("Authorization", format!("Bearer {token}"))
            .header("X-Request-Id", "e2e-req-7")
            .call(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-request-id"), Some("e2e-req-7"));
    let made = get(&s, &token, "/v1/jobs");
    assert!(
        made.header("x-request-id").is_some_and(|id| id.len() >= 16),
        "{:?}",
        made.headers
    );

    // Work that uses every secret: uploads, a dashboard sign-in, a token
    // created over the API, a metrics scrape.
    let data = sample(3 << 20);
    assert_eq!(put(&s, &token, "/v1/objects/a.bin?wait=true", &data).status, 201);
    let queued = put(&s, &token, "/v1/objects/b.bin", &data);
    assert_eq!(queued.status, 202);
    wait_job(
        &s,
        &token,
        queued.json()["id"].as_str().unwrap(),
        &["succeeded"],
        Duration::from_secs(60),
    );
    let signed_in = reply(
        agent()
            .post(s.url("/ui/session"))
            .header("X-Sluice-CSRF", "1")
            .header("Content-Type", "application/json")
            .send(format!("{{\"token\":\"{token}\"}}").as_bytes()),
    );
    assert_eq!(signed_in.status, 200);
    let created = reply(
        agent()
            .post(s.url("/v1/admin/tenants/acme/tokens"))
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .send(&br#"{"scope":"read"}"#[..]),
    );
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    let new_token = created.json()["token"].as_str().unwrap().to_string();
    assert_eq!(get(&s, &new_token, "/v1/objects").status, 200);
    // A rejection, counted by reason.
    admin(&env, &["tenant", "set", "acme", "--rate", "1/s", "--burst", "1"]);
    std::thread::sleep(Duration::from_millis(1500));
    let mut limited = false;
    for _ in 0..5 {
        limited |= get(&s, &token, "/v1/objects").status == 429;
    }
    assert!(limited, "the new rate limit applies");

    // /metrics: on its own listener only, and only with its token.
    assert_problem(&get(&s, &token, "/metrics"), 404, "not_found");
    assert_problem(&metrics(&metrics_base, None), 401, "unauthorized");
    assert_problem(&metrics(&metrics_base, Some(&token)), 401, "unauthorized");
    // The sampler reads the database every few seconds: wait for a pass
    // that saw both jobs.
    // (A scrape may land in the middle of a pass: wait for both what it sets
    // first and what it sets last.)
    wait_until(
        "a sampler pass counted the jobs and the bytes",
        Duration::from_secs(20),
        || {
            let text = String::from_utf8_lossy(&metrics(&metrics_base, Some(metrics_token)).body).into_owned();
            value_of(&text, r#"sluice_jobs{tenant="acme",state="succeeded"}"#) == Some(2.0)
                && value_of(&text, r#"sluice_tenant_stored_bytes{tenant="acme"}"#).is_some_and(|b| b > 0.0)
        },
    );
    let m = metrics(&metrics_base, Some(metrics_token));
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap_or("").starts_with("text/plain"));
    let text = String::from_utf8(m.body).unwrap();
    let expect = |series: &str| value_of(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
    assert!(
        expect(r#"sluice_http_requests_total{face="native",method="PUT",route="/v1/objects/{key}",status="201"}"#)
            >= 1.0
    );
    assert!(
        expect(r#"sluice_http_requests_total{face="native",method="GET",route="/v1/objects",status="200"}"#) >= 2.0
    );
    assert!(expect(r#"sluice_http_rejected_total{reason="rate_limited"}"#) >= 1.0);
    assert_eq!(
        expect(r#"sluice_jobs_finished_total{kind="process",outcome="succeeded"}"#),
        2.0
    );
    assert_eq!(
        expect(r#"sluice_bytes_in_total{tenant="acme"}"#),
        (2 * data.len()) as f64
    );
    assert_eq!(expect(r#"sluice_jobs{tenant="acme",state="succeeded"}"#), 2.0);
    assert!(expect(r#"sluice_tenant_stored_bytes{tenant="acme"}"#) > 0.0);
    assert!(expect(r#"sluice_tenant_last_success_timestamp_seconds{tenant="acme"}"#) > 1.7e9);
    assert_eq!(expect("sluice_queue_depth"), 0.0);
    assert_eq!(expect("sluice_store_breaker_state"), 0.0);
    assert!(expect("sluice_cpu_pool_threads") >= 1.0);
    assert!(expect("sluice_tokio_workers") >= 1.0);
    assert!(expect("sluice_db_pool_max_connections") >= 1.0);
    let buckets = text
        .lines()
        .filter(|l| {
            l.starts_with("sluice_http_request_duration_seconds_bucket{") && l.contains("route=\"/v1/objects\"")
        })
        .count();
    assert!(buckets >= 15, "latency buckets from 1 ms to 60 s");
    assert!(text.contains(r#"le="0.001""#) && text.contains(r#"le="60""#));

    drop(s);
    let log = std::fs::read_to_string(env.path("server.log")).unwrap();
    for secret in [token.as_str(), new_token.as_str(), metrics_token] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
    let master_key = std::fs::read(env.path("data/master.key")).unwrap();
    assert!(
        !log.contains(&hex::encode(&master_key)),
        "the master key reached the log"
    );
    // Every line is JSON; request lines carry the request id, job lines the job.
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 10);
    assert_eq!(
        lines.len(),
        log.lines().filter(|l| !l.trim().is_empty()).count(),
        "only JSON lines"
    );
    let with_span = |name: &str, key: &str, value: &str| {
        lines.iter().any(|l| {
            l["spans"].as_array().is_some_and(|spans| {
                spans
                    .iter()
                    .any(|s| s["name"] == name && s[key].as_str() == Some(value))
            })
        })
    };
    assert!(
        with_span("request", "id", "e2e-req-7"),
        "the request id is in its log lines"
    );
    let job_id = queued.json()["id"].as_str().unwrap().to_string();
    assert!(with_span("job", "id", &job_id), "the job span names the job");
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "job succeeded" && l["span"]["tenant"].is_string()),
        "job lines name the tenant"
    );
}
