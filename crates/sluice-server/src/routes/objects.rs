//! `/v1/objects`: uploads (which become jobs), stored containers, restored
//! content (whole or by byte range), listing, deletion, verification.
//!
//! Keys may contain `/`, so one wildcard route serves `{key}`,
//! `{key}/content` and `{key}/verify`; a key may therefore not end in a
//! `content` or `verify` segment.

use std::ops::Range;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;
use sluice_engine::format::KeyRing;
use sluice_engine::{Archive, Control};
use sluice_store::{new_id, JobKind, NewJob, ObjectInfo, Objects, Scope};
use tokio_util::io::SyncIoBridge;

use crate::auth::Caller;
use crate::bridge;
use crate::json;
use crate::limits::BodyLimit;
use crate::problem::{ApiResult, Problem};
use crate::query::Query;
use crate::sink::ContainerSink;
use crate::source::ContainerSource;
use crate::state::AppState;

/// Header carrying the BLAKE3 (hex) the uploaded original must have.
pub const DIGEST_HEADER: &str = "x-sluice-blake3";
/// Longest object key, bytes.
const MAX_KEY_LEN: usize = 1024;

/// Query of `PUT /v1/objects/{key}`.
#[derive(Debug, Deserialize)]
pub struct PutQuery {
    /// Pipeline name (default `default`).
    pub pipeline: Option<String>,
    /// Answer only once the job finished.
    pub wait: Option<bool>,
}

/// Query of `GET /v1/objects`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// Most objects (1..=1000, default 100).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Checks an object key: 1..=1024 bytes of `A-Z a-z 0-9 . _ - /`, no empty,
/// `.` or `..` segment, not ending in a `content` or `verify` segment.
pub fn check_key(key: &str) -> Result<(), Problem> {
    let bad = |why: &str| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_key",
            format!("invalid object key: {why}"),
        )
    };
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(bad("must be 1 to 1024 bytes"));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
    {
        return Err(bad("only letters, digits, '.', '_', '-' and '/' are allowed"));
    }
    if key.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return Err(bad(
            "no empty, '.' or '..' path segment (and no leading or trailing '/')",
        ));
    }
    if key.ends_with("/content") || key.ends_with("/verify") || key == "content" || key == "verify" {
        return Err(bad("may not end in a 'content' or 'verify' segment"));
    }
    Ok(())
}

/// What a wildcard path names.
enum Target<'a> {
    Object(&'a str),
    Content(&'a str),
    Verify(&'a str),
}

fn target(path: &str) -> Target<'_> {
    if let Some(k) = path.strip_suffix("/content") {
        Target::Content(k)
    } else if let Some(k) = path.strip_suffix("/verify") {
        Target::Verify(k)
    } else {
        Target::Object(path)
    }
}

/// Every method on `/v1/objects/{*path}`.
pub async fn dispatch(
    State(st): State<AppState>,
    caller: Caller,
    method: Method,
    Path(path): Path<String>,
    Query(query): Query<PutQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    match (method, target(&path)) {
        (Method::PUT, Target::Object(key)) => put(st, caller, key, query, headers, body).await,
        (Method::GET, Target::Object(key)) => get_container(st, caller, key).await,
        (Method::HEAD, Target::Object(key)) => head(st, caller, key).await,
        (Method::DELETE, Target::Object(key)) => delete(st, caller, key).await,
        (Method::GET, Target::Content(key)) => content(st, caller, key, &headers).await,
        (Method::POST, Target::Verify(key)) => verify(st, caller, key).await,
        _ => Err(Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this path",
        )),
    }
}

async fn put(
    st: AppState,
    caller: Caller,
    key: &str,
    q: PutQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let who = caller.require(Scope::Write)?;
    check_key(key)?;
    // A failing store: answer at once rather than take a body it cannot keep.
    if !st.objects.available() {
        return Err(storage_unavailable(&st));
    }
    let pipeline_name = q.pipeline.unwrap_or_else(|| "default".into());
    st.db.pipeline(&who.tenant_id, &pipeline_name).await?;
    let expected_digest = match headers.get(DIGEST_HEADER) {
        Some(v) => {
            let s = v.to_str().unwrap_or("").trim().to_ascii_lowercase();
            if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Problem::bad_request(format!(
                    "{DIGEST_HEADER} must be 64 hex digits (BLAKE3)"
                )));
            }
            Some(s)
        }
        None => None,
    };
    let max_upload = st.config.max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max_upload) {
        return Err(BodyLimit {
            bytes: max_upload,
            quota: None,
        }
        .exceeded());
    }
    let stored = match st.limits.of(&who.tenant_id).quota_bytes {
        Some(_) => st.db.stored_bytes(&who.tenant_id).await?.max(0) as u64,
        None => 0,
    };
    // Counts against the quota until the upload is stored or refused.
    let reservation = st.limits.reserve(&who.tenant_id, stored, declared)?;
    let limit = BodyLimit::new(max_upload, &reservation);
    let (depth, queued) = st.limits.counts(&who.tenant_id);
    let job_id = new_id()?;
    // A client that waits, with a job slot free: process while it streams in.
    if q.wait.unwrap_or(false) {
        if let Ok(slot) = std::sync::Arc::clone(&st.job_slots).try_acquire_owned() {
            st.limits.admit_queued(&who.tenant_id, depth, 0)?;
            let job = NewJob {
                id: job_id,
                tenant_id: who.tenant_id.clone(),
                kind: JobKind::Process,
                object_key: key.to_string(),
                pipeline: pipeline_name,
                staging: None,
                expected_digest,
                max_attempts: i64::from(st.config.job_max_attempts),
                staged_bytes: 0,
            };
            let result = crate::inline::process_streaming(&st, job, body, limit).await;
            drop(slot);
            let job = result?;
            return Ok(job_response(StatusCode::CREATED, &job, &st));
        }
    }
    st.limits.admit_queued(&who.tenant_id, depth, queued)?;
    let staging = Objects::staging_path(&who.tenant_id, &job_id);
    let (received, _) = stream_body_to(&st, body, &staging, &limit, false).await?;
    let job = st
        .db
        .enqueue(&NewJob {
            id: job_id,
            tenant_id: who.tenant_id.clone(),
            kind: JobKind::Process,
            object_key: key.to_string(),
            pipeline: pipeline_name,
            staging: Some(staging.clone()),
            expected_digest,
            max_attempts: i64::from(st.config.job_max_attempts),
            staged_bytes: received as i64,
        })
        .await;
    // On an error the staged upload stays: the insert may have committed
    // although its answer was lost, and then the queued job needs it. If
    // no job points at it, the reaper deletes it.
    let job = job?;
    // Queued: its bytes are now counted as staged, not reserved.
    drop(reservation);
    st.limits.note_job(&who.tenant_id, true);
    st.job_queued.notify_one();
    tracing::info!(job = %job.id, tenant = %who.tenant_name, bytes = received, "upload staged, job queued");
    if q.wait.unwrap_or(false) {
        return wait_for(&st, &who.tenant_id, &job.id).await;
    }
    Ok(job_response(StatusCode::ACCEPTED, &job, &st))
}

/// 503 while the object store's circuit breaker is open.
pub(crate) fn storage_unavailable(st: &AppState) -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage_unavailable",
        "the object store is failing; retry later",
    )
    .retry_after(st.config.store.breaker_open)
}

/// Streams a request body to `location`, durably, through a blocking
/// writer: on a local store a temporary file with overlapped write-back,
/// synced and renamed (so the final fsync is short and does not stall
/// other requests' commits); elsewhere the object store's multipart writer.
/// Returns the bytes received and, if `hash`, their BLAKE3 (small parts
/// only: hashing runs on the async worker). On any failure nothing is left
/// at `location` (a partial write is deleted or left to the reaper).
pub(crate) async fn stream_body_to(
    st: &AppState,
    body: Body,
    location: &str,
    limit: &BodyLimit,
    hash: bool,
) -> Result<(u64, Option<[u8; 32]>), Problem> {
    let (tx, input) = bridge::reader_channel();
    let objects = st.objects.clone();
    let target = location.to_string();
    let rt = tokio::runtime::Handle::current();
    let writing = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut input = input;
        let mut sink = ContainerSink::open(&objects, &target, rt.clone())?;
        match std::io::copy(&mut input, &mut sink) {
            Ok(_) => sink.finish(),
            Err(e) => {
                sink.abort(&rt);
                Err(e)
            }
        }
    });
    let mut reader = BodyReader::new(st, body, limit);
    let mut hasher = blake3::Hasher::new();
    let fed: Result<(), Problem> = async {
        while let Some(data) = reader.next().await? {
            if hash {
                hasher.update(&data);
            }
            // Fails only once the writer stopped: its error is reported below.
            if tx.send(bridge::Msg::Data(data)).await.is_err() {
                break;
            }
        }
        Ok(())
    }
    .await;
    let _ = match &fed {
        Ok(()) => tx.send(bridge::Msg::End).await,
        Err(p) => tx.send(bridge::Msg::Fail(p.detail.clone())).await,
    };
    drop(tx);
    let written = writing.await.map_err(Problem::internal)?;
    // Accepted means durable: the staged copy was synced before this.
    let staged = match (fed, written) {
        (Err(p), _) => Err(p),
        (Ok(()), Err(e)) => Err(staging_failed(st, e)),
        (Ok(()), Ok(())) => Ok(()),
    };
    if let Err(p) = staged {
        // Whatever was written (a partial file, parts) is the reaper's.
        let _ = st.objects.delete(location).await;
        return Err(p);
    }
    Ok((reader.received, hash.then(|| *hasher.finalize().as_bytes())))
}

/// An upload's body, chunk by chunk: a body that sends nothing for the
/// idle timeout, goes past its limit or breaks off ends in the request's
/// error.
pub(crate) struct BodyReader<'a> {
    stream: axum::body::BodyDataStream,
    idle: Duration,
    limit: &'a BodyLimit,
    /// Bytes read so far.
    pub(crate) received: u64,
}

impl<'a> BodyReader<'a> {
    pub(crate) fn new(st: &AppState, body: Body, limit: &'a BodyLimit) -> Self {
        BodyReader {
            stream: body.into_data_stream(),
            idle: st.config.idle_body_timeout,
            limit,
            received: 0,
        }
    }

    /// The next non-empty chunk, or `None` at the end.
    pub(crate) async fn next(&mut self) -> Result<Option<bytes::Bytes>, Problem> {
        loop {
            let frame = tokio::time::timeout(self.idle, self.stream.next())
                .await
                .map_err(|_| idle_timeout(self.idle))?;
            let Some(frame) = frame else { return Ok(None) };
            let data = frame.map_err(|e| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "interrupted",
                    format!("the upload was interrupted: {e}"),
                )
            })?;
            self.received += data.len() as u64;
            if self.received > self.limit.bytes {
                return Err(self.limit.exceeded());
            }
            if !data.is_empty() {
                return Ok(Some(data));
            }
        }
    }
}

/// Staging an upload failed: the store is failing (503), not the request.
fn staging_failed(st: &AppState, e: std::io::Error) -> Problem {
    tracing::warn!(error = %e, "staging an upload failed");
    storage_unavailable(st)
}

/// 408 for an upload that sent nothing for `idle`.
pub fn idle_timeout(idle: Duration) -> Problem {
    Problem::new(
        StatusCode::REQUEST_TIMEOUT,
        "idle_timeout",
        format!("the upload sent nothing for {} s", idle.as_secs()),
    )
}

/// A job as JSON with `status` and `Location: /v1/jobs/{id}`.
pub(crate) fn job_response(status: StatusCode, job: &sluice_store::Job, st: &AppState) -> Response {
    let mut resp = (status, axum::Json(json::job(job, &st.running))).into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("/v1/jobs/{}", job.id)) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    resp
}

/// Polls a job until it is finished: 201 with the job if it succeeded,
/// its error as a problem otherwise.
async fn wait_for(st: &AppState, tenant: &str, id: &str) -> ApiResult<Response> {
    loop {
        let job = st.db.job(tenant, id).await?;
        if job.state.is_terminal() {
            if job.state == sluice_store::JobState::Succeeded {
                return Ok(job_response(StatusCode::CREATED, &job, st));
            }
            return Err(job_problem(&job));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A finished, unsuccessful job as a problem.
pub fn job_problem(job: &sluice_store::Job) -> Problem {
    let code = match job.error_code.as_deref() {
        Some("integrity") => "integrity",
        Some("digest_mismatch") => "digest_mismatch",
        Some("bad_request") => "bad_request",
        Some("limit") => "limit",
        _ if job.state == sluice_store::JobState::Cancelled => "cancelled",
        _ => "job_failed",
    };
    let status = match code {
        "cancelled" => StatusCode::CONFLICT,
        "limit" => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    Problem::new(
        status,
        code,
        format!(
            "job {} {}: {}",
            job.id,
            job.state.as_str(),
            job.error.as_deref().unwrap_or("no detail")
        ),
    )
}

async fn object_of(st: &AppState, caller: &Caller, key: &str) -> ApiResult<ObjectInfo> {
    caller.require(Scope::Read)?;
    check_key(key).map_err(|_| Problem::not_found(format!("object {key:?}")))?;
    Ok(st.db.object(caller.tenant(), key).await?)
}

fn describe(resp: &mut Response, o: &ObjectInfo) {
    let h = resp.headers_mut();
    for (name, value) in [
        ("x-sluice-size", o.plaintext_len.to_string()),
        ("x-sluice-blake3", o.digest.clone()),
        ("x-sluice-pipeline", o.pipeline.clone()),
        ("etag", format!("\"{}\"", o.digest)),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
}

async fn get_container(st: AppState, caller: Caller, key: &str) -> ApiResult<Response> {
    let o = object_of(&st, &caller, key).await?;
    let (stream, size) = st.objects.stream(&o.location).await?;
    let body = Body::from_stream(stream.map(|r| r.map_err(std::io::Error::other)));
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.sluice"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    describe(&mut resp, &o);
    Ok(resp)
}

async fn head(st: AppState, caller: Caller, key: &str) -> ApiResult<Response> {
    let o = object_of(&st, &caller, key).await?;
    let mut resp = Response::new(Body::empty());
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(o.container_len));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/vnd.sluice"));
    describe(&mut resp, &o);
    Ok(resp)
}

async fn delete(st: AppState, caller: Caller, key: &str) -> ApiResult<Response> {
    let who = caller.require(Scope::Write)?;
    check_key(key).map_err(|_| Problem::not_found(format!("object {key:?}")))?;
    let location = st.db.delete_object(&who.tenant_id, key).await?;
    st.opened.remove(&location);
    // The row is gone first: a failure here leaves an unreferenced container
    // for the reaper, never a row pointing at nothing.
    if let Err(e) = st.objects.delete(&location).await {
        tracing::warn!(error = %e, "deleting a container failed; the reaper will retry");
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Queues a verify job of `key` (also how a verify job is retried).
pub(crate) async fn verify(st: AppState, caller: Caller, key: &str) -> ApiResult<Response> {
    let who = caller.require(Scope::Write)?;
    let o = object_of(&st, &caller, key).await?;
    let (depth, queued) = st.limits.counts(&who.tenant_id);
    st.limits.admit_queued(&who.tenant_id, depth, queued)?;
    let job = st
        .db
        .enqueue(&NewJob {
            id: new_id()?,
            tenant_id: who.tenant_id.clone(),
            kind: JobKind::Verify,
            object_key: o.key,
            pipeline: o.pipeline,
            staging: None,
            expected_digest: None,
            max_attempts: i64::from(st.config.job_max_attempts),
            staged_bytes: 0,
        })
        .await?;
    st.limits.note_job(&who.tenant_id, true);
    st.job_queued.notify_one();
    Ok(job_response(StatusCode::ACCEPTED, &job, &st))
}

/// The keys that open a tenant's object (unsealing runs off the async workers).
pub async fn keyring_for(st: &AppState, tenant_id: &str, encrypted: bool) -> ApiResult<KeyRing> {
    let identity = match st.keys.cached(tenant_id) {
        Some(id) => id,
        None => {
            let tenant = st.db.tenant(tenant_id).await?;
            let keys = std::sync::Arc::clone(&st.keys);
            tokio::task::spawn_blocking(move || keys.identity(&tenant.id, &tenant.sealed_identity))
                .await
                .map_err(Problem::internal)?
                .map_err(Problem::internal)?
        }
    };
    let ring = KeyRing::new().with_identity((*identity).clone());
    Ok(if encrypted { ring } else { ring.allowing_unencrypted() })
}

/// Ends a streamed response: flushes, or cuts the body off with the error
/// (the client sees a short body, never wrong bytes).
fn finish_stream(result: sluice_engine::Result<()>, mut writer: bridge::ChannelWriter) {
    match result.and_then(|()| std::io::Write::flush(&mut writer).map_err(sluice_engine::Error::Write)) {
        Ok(()) => {}
        Err(e) => {
            tracing::warn!(error = %e, "content stream failed");
            writer.fail(std::io::Error::other(e.to_string()));
        }
    }
}

/// The object's container opened for range reads, from the cache or
/// opened now (and cached) on a blocking thread.
async fn opened_archive(
    st: &AppState,
    caller: &Caller,
    o: &ObjectInfo,
    rt: tokio::runtime::Handle,
) -> ApiResult<Archive<ContainerSource>> {
    let cached = st.opened.get(&o.location);
    let keys = match cached {
        Some(_) => None,
        None => Some(keyring_for(st, caller.tenant(), o.encrypted).await?),
    };
    let objects = st.objects.clone();
    let location = o.location.clone();
    let cache = st.opened.clone();
    tokio::task::spawn_blocking(move || {
        let source = ContainerSource::open(&objects, &location, rt).map_err(sluice_engine::Error::Read)?;
        match (cached, keys) {
            (Some(a), _) => Ok(a.with_source(source)),
            (None, Some(keys)) => {
                let a = Archive::open(source, &keys)?;
                cache.insert(&location, &a);
                Ok(a)
            }
            (None, None) => Err(sluice_engine::Error::Internal("no keys to open the container".into())),
        }
    })
    .await
    .map_err(Problem::internal)?
    .map_err(Problem::from)
}

/// Parses a single `Range: bytes=…` against `len`: `Ok(None)` for no (or an
/// ignorable multi-) range, `Err` when unsatisfiable.
pub fn parse_range(value: &str, len: u64) -> Result<Option<Range<u64>>, ()> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None); // multiple ranges: answer with the whole content
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        len.saturating_sub(n)..len
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            len
        } else {
            b.parse::<u64>().map_err(|_| ())?.saturating_add(1).min(len)
        };
        if start >= len || end <= start {
            return Err(());
        }
        start..end
    };
    Ok(Some(range))
}

async fn content(st: AppState, caller: Caller, key: &str, headers: &HeaderMap) -> ApiResult<Response> {
    let o = object_of(&st, &caller, key).await?;
    let len = o.plaintext_len as u64;
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(v) => match parse_range(v, len) {
            Ok(r) => r,
            Err(()) => {
                let mut resp = Problem::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "range_not_satisfiable",
                    format!("the content is {len} bytes"),
                )
                .into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                return Ok(resp);
            }
        },
        None => None,
    };
    let rt = tokio::runtime::Handle::current();
    let (mut writer, rx) = bridge::channel(rt.clone(), st.config.idle_body_timeout);
    let engine = st.engine.clone();
    let ctl = Control::new();
    match range.clone() {
        None => {
            let keys = keyring_for(&st, caller.tenant(), o.encrypted).await?;
            let (reader, _) = st.objects.reader(&o.location).await?;
            tokio::task::spawn_blocking(move || {
                let input = SyncIoBridge::new_with_handle(reader, rt);
                let result = engine.decode(input, &mut writer, &keys, &ctl).map(|_| ());
                finish_stream(result, writer);
            });
        }
        Some(r) => {
            // Open (or take from the cache) before answering, so that a
            // container that cannot be read answers with a problem, not a
            // cut-off 206.
            let archive = opened_archive(&st, &caller, &o, rt.clone()).await?;
            tokio::task::spawn_blocking(move || {
                let result = archive.read_range(&engine, r, &mut writer, &ctl).map(|_| ());
                finish_stream(result, writer);
            });
        }
    }
    let body = Body::from_stream(tokio_stream_from(rx));
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    match range {
        Some(r) => {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            let h = resp.headers_mut();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(r.end - r.start));
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{len}", r.start, r.end - 1)) {
                h.insert(header::CONTENT_RANGE, v);
            }
        }
        None => {
            resp.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
    }
    describe(&mut resp, &o);
    Ok(resp)
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// `GET /v1/objects`.
pub async fn list(State(st): State<AppState>, caller: Caller, Query(q): Query<ListQuery>) -> ApiResult<Response> {
    let who = caller.require(Scope::Read)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::bad_request("limit must be 1..=1000"));
    }
    let objects = st
        .db
        .objects(
            &who.tenant_id,
            q.prefix.as_deref().unwrap_or(""),
            q.cursor.as_deref(),
            limit,
        )
        .await?;
    let next = (objects.len() == limit as usize)
        .then(|| objects.last().map(|o| o.key.clone()))
        .flatten();
    Ok(axum::Json(serde_json::json!({
        "objects": objects.iter().map(json::object).collect::<Vec<_>>(),
        "next_cursor": next,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for ok in ["a", "backups/2026/db.dump", "x-1_2.tar.zst"] {
            assert!(check_key(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "/abs",
            "a//b",
            "a/../b",
            "..",
            "a/",
            "sp ace",
            "a/content",
            "verify",
            "é",
        ] {
            assert!(check_key(bad).is_err(), "{bad}");
        }
        assert!(check_key(&"k".repeat(1025)).is_err());
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some(0..10)));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some(90..100)));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some(90..100)));
        assert_eq!(parse_range("bytes=50-500", 100), Ok(Some(50..100)));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("bytes=5-2", 100), Err(()));
        assert_eq!(parse_range("bytes=x-2", 100), Err(()));
        assert_eq!(parse_range("bytes=-0", 100), Err(()));
    }
}
