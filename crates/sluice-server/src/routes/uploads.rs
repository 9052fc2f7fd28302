//! `/v1/uploads`: resumable uploads. A client announces an object (key,
//! size, part size), sends its parts in any order and as often as it likes
//! (a part sent again replaces the earlier copy), asks which arrived, and
//! completes the session into a job — or aborts it. Sessions expire
//! (`--upload-ttl-secs`); the reaper then reclaims their parts. Each part is
//! stored durably before it is acknowledged, so a client that was cut off
//! resumes from the parts the server holds: on S3 (parts of at least 5 MiB)
//! as a part of one S3 multipart upload, completed into one staged object;
//! elsewhere as an object of its own, read in order by the job.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use sluice_store::{new_id, JobKind, NewJob, NewUpload, Objects, Scope, Upload, UploadPart, UploadState};

use crate::auth::Caller;
use crate::limits::BodyLimit;
use crate::problem::{ApiResult, Problem};
use crate::routes::objects::{check_key, job_response, storage_unavailable, stream_body_to, BodyReader};
use crate::state::AppState;

/// Part size when the client names none.
pub const DEFAULT_PART_SIZE: u64 = 8 << 20;
/// Smallest part size (but a whole smaller than it is one part).
pub const MIN_PART_SIZE: u64 = 1 << 20;
/// Largest part size.
pub const MAX_PART_SIZE: u64 = 64 << 20;
/// Most parts per session.
pub const MAX_PARTS: u64 = 100_000;

/// Body of `POST /v1/uploads`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    /// The object's key.
    pub key: String,
    /// Total bytes.
    pub size: u64,
    /// Pipeline name (default `default`).
    pub pipeline: Option<String>,
    /// Bytes per part (default 8 MiB; 1 to 64 MiB).
    pub part_size: Option<u64>,
    /// BLAKE3 (hex) the whole must have.
    pub blake3: Option<String>,
}

fn session_json(u: &Upload, parts: &[UploadPart]) -> Value {
    let complete: Vec<&UploadPart> = parts.iter().filter(|p| p.size == u.part_len(p.number)).collect();
    json!({
        "id": u.id,
        "key": u.object_key,
        "pipeline": u.pipeline,
        "size": u.size,
        "part_size": u.part_size,
        "parts": u.part_count(),
        "state": u.state.as_str(),
        "received": complete.iter().map(|p| p.number).collect::<Vec<_>>(),
        "received_bytes": complete.iter().map(|p| p.size).sum::<i64>(),
        "job": u.job_id,
        "created_at": u.created_at,
        "expires_at": u.expires_at,
    })
}

fn check_digest(d: &str) -> Result<String, Problem> {
    let d = d.trim().to_ascii_lowercase();
    if d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Problem::bad_request("blake3 must be 64 hex digits"));
    }
    Ok(d)
}

/// `POST /v1/uploads`: opens a session (201).
pub async fn create(
    State(st): State<AppState>,
    caller: Caller,
    body: Result<axum::Json<NewSession>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    let who = caller.require(Scope::Write)?;
    let axum::Json(req) = body.map_err(|e| Problem::bad_request(e.body_text()))?;
    check_key(&req.key)?;
    if !st.objects.available() {
        return Err(storage_unavailable(&st));
    }
    if req.size > st.config.max_upload_bytes {
        return Err(BodyLimit {
            bytes: st.config.max_upload_bytes,
            quota: None,
        }
        .exceeded());
    }
    let part_size = req.part_size.unwrap_or(DEFAULT_PART_SIZE);
    if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&part_size) {
        return Err(Problem::bad_request(format!(
            "part_size must be {MIN_PART_SIZE} to {MAX_PART_SIZE} bytes"
        )));
    }
    if req.size.div_ceil(part_size) > MAX_PARTS {
        return Err(Problem::bad_request(format!(
            "more than {MAX_PARTS} parts: use a larger part_size"
        )));
    }
    let expected_digest = req.blake3.as_deref().map(check_digest).transpose()?;
    let pipeline = req.pipeline.unwrap_or_else(|| "default".into());
    st.db.pipeline(&who.tenant_id, &pipeline).await?;
    if st.limits.of(&who.tenant_id).quota_bytes.is_some() {
        let stored = st.db.stored_bytes(&who.tenant_id).await?.max(0) as u64;
        // Only a check: the open session's size counts as stored from now on.
        drop(st.limits.reserve(&who.tenant_id, stored, Some(req.size))?);
    }
    let upload = st
        .db
        .create_upload(&NewUpload {
            tenant_id: who.tenant_id.clone(),
            object_key: req.key,
            pipeline,
            size: req.size as i64,
            part_size: part_size as i64,
            expected_digest,
            ttl_ms: st.config.upload_ttl.as_millis() as i64,
        })
        .await?;
    let upload = if st.objects.multipart_parts(part_size) {
        match start_multipart(&st, &upload).await {
            Ok(u) => u,
            Err(p) => {
                let _ = st.db.close_upload(&upload.id, UploadState::Aborted).await;
                return Err(p);
            }
        }
    } else {
        upload
    };
    tracing::info!(upload = %upload.id, tenant = %who.tenant_name, size = upload.size, "resumable upload opened");
    let mut resp = (StatusCode::CREATED, axum::Json(session_json(&upload, &[]))).into_response();
    if let Ok(loc) = header::HeaderValue::from_str(&format!("/v1/uploads/{}", upload.id)) {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(resp)
}

/// Starts the S3 multipart upload a new session's parts will go to.
async fn start_multipart(st: &AppState, upload: &Upload) -> ApiResult<Upload> {
    let whole = Objects::upload_whole_path(&upload.tenant_id, &upload.id);
    let id = st.objects.begin_parts(&whole).await?;
    if let Err(e) = st.db.set_upload_multipart(&upload.id, &id).await {
        let _ = st.objects.abort_parts(&whole, &id).await;
        return Err(e.into());
    }
    Ok(Upload {
        multipart_id: Some(id),
        ..upload.clone()
    })
}

/// `GET /v1/uploads/{id}`: the session and the parts that arrived.
pub async fn status(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let who = caller.require(Scope::Read)?;
    let u = st.db.upload(&who.tenant_id, &id).await?;
    let parts = st.db.upload_parts(&u.id).await?;
    Ok(axum::Json(session_json(&u, &parts)).into_response())
}

fn closed(u: &Upload) -> Problem {
    Problem::new(
        StatusCode::CONFLICT,
        "upload_closed",
        format!("upload {} is {}", u.id, u.state.as_str()),
    )
}

/// `PUT /v1/uploads/{id}/parts/{n}`: stores part `n` (0-based; exactly
/// `part_size` bytes, the last one the rest). Sending a part again is
/// harmless: the newer copy replaces the older.
pub async fn put_part(
    State(st): State<AppState>,
    caller: Caller,
    Path((id, number)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let who = caller.require(Scope::Write)?;
    let number: i64 = number
        .parse()
        .map_err(|_| Problem::bad_request("the part number must be a whole number"))?;
    let u = st.db.upload(&who.tenant_id, &id).await?;
    if u.state != UploadState::Open {
        return Err(closed(&u));
    }
    if number < 0 || number >= u.part_count() {
        return Err(Problem::bad_request(format!(
            "part {number} is out of range: this upload has parts 0 to {}",
            u.part_count() - 1
        )));
    }
    let expected = u.part_len(number) as u64;
    let wrong_size =
        |got: u64| Problem::bad_request(format!("part {number} must be exactly {expected} bytes; got {got}"));
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n != expected) {
        return Err(wrong_size(n));
    }
    if !st.objects.available() {
        return Err(storage_unavailable(&st));
    }
    if let Some(multipart_id) = &u.multipart_id {
        return put_multipart_part(&st, &u, multipart_id, number, body).await;
    }
    // Written under a name of its own, then renamed over the part: a
    // broken or wrong-sized resend never destroys a good earlier copy.
    let location = Objects::upload_part_path(&who.tenant_id, &u.id, number);
    let scratch = format!("{location}.{}", new_id()?);
    let limit = BodyLimit {
        bytes: expected,
        quota: None,
    };
    let (received, digest) = match stream_body_to(&st, body, &scratch, &limit, true).await {
        Ok(r) => r,
        Err(p) if p.code == "upload_too_large" => return Err(wrong_size(expected + 1)),
        Err(p) => return Err(p),
    };
    if received != expected {
        let _ = st.objects.delete(&scratch).await;
        return Err(wrong_size(received));
    }
    if let Err(e) = st.objects.rename(&scratch, &location).await {
        let _ = st.objects.delete(&scratch).await;
        return Err(e.into());
    }
    let part = UploadPart {
        number,
        size: received as i64,
        digest: hex::encode(digest.unwrap_or_default()),
        etag: None,
    };
    st.db.record_part(&u.id, &part).await?;
    // Closed meanwhile (aborted or expired): its parts are being removed.
    let now = st.db.upload(&who.tenant_id, &u.id).await?;
    if now.state != UploadState::Open && now.state != UploadState::Completed {
        let _ = st.objects.delete(&location).await;
        return Err(closed(&now));
    }
    Ok(axum::Json(json!({"number": number, "size": part.size, "blake3": part.digest})).into_response())
}

/// Part `number` of a session whose parts are those of an S3 multipart
/// upload: held in memory (within `--part-buffer-mib` over all requests;
/// past it, 503) while it arrives and is hashed, then sent as that part.
async fn put_multipart_part(
    st: &AppState,
    u: &Upload,
    multipart_id: &str,
    number: i64,
    body: Body,
) -> ApiResult<Response> {
    let expected = u.part_len(number) as u64;
    let wrong_size =
        |got: u64| Problem::bad_request(format!("part {number} must be exactly {expected} bytes; got {got}"));
    let mib = u32::try_from(expected.div_ceil(1 << 20).max(1)).unwrap_or(u32::MAX);
    let _buffer = Arc::clone(&st.part_buffers).try_acquire_many_owned(mib).map_err(|_| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "too many parts arriving at once; send this one again shortly",
        )
        .retry_after(std::time::Duration::from_secs(1))
    })?;
    let limit = BodyLimit {
        bytes: expected,
        quota: None,
    };
    let mut reader = BodyReader::new(st, body, &limit);
    let mut chunks = Vec::new();
    let mut hasher = blake3::Hasher::new();
    loop {
        match reader.next().await {
            Ok(Some(data)) => {
                hasher.update(&data);
                chunks.push(data);
            }
            Ok(None) => break,
            Err(p) if p.code == "upload_too_large" => return Err(wrong_size(expected + 1)),
            Err(p) => return Err(p),
        }
    }
    if reader.received != expected {
        return Err(wrong_size(reader.received));
    }
    let whole = Objects::upload_whole_path(&u.tenant_id, &u.id);
    let etag = st.objects.put_part(&whole, multipart_id, number, chunks).await?;
    let part = UploadPart {
        number,
        size: expected as i64,
        digest: hasher.finalize().to_hex().to_string(),
        etag: Some(etag),
    };
    st.db.record_part(&u.id, &part).await?;
    let now = st.db.upload(&u.tenant_id, &u.id).await?;
    if now.state != UploadState::Open && now.state != UploadState::Completed {
        return Err(closed(&now));
    }
    Ok(axum::Json(json!({"number": number, "size": part.size, "blake3": part.digest})).into_response())
}

/// Gives up what a closed session holds in the store: its multipart upload
/// (S3) and its parts. The abort route and the reaper (expiry, and any
/// release that failed before) call it; once it succeeds the session no
/// longer names a multipart upload.
pub(crate) async fn release(st: &AppState, u: &Upload) -> Result<(), sluice_store::Error> {
    if let Some(multipart_id) = &u.multipart_id {
        st.objects
            .abort_parts(&Objects::upload_whole_path(&u.tenant_id, &u.id), multipart_id)
            .await?;
        // At once: a release retried later must not abort it again.
        st.db.clear_upload_multipart(&u.id).await?;
    }
    st.objects
        .delete_staging(&Objects::upload_prefix(&u.tenant_id, &u.id))
        .await?;
    Ok(())
}

/// Assembles a multipart session's parts into its one staged object;
/// returns where it is. A completion whose answer was lost (the object is
/// there, whole) counts as done.
async fn assemble(st: &AppState, u: &Upload, multipart_id: &str, parts: &[UploadPart]) -> ApiResult<String> {
    let whole = Objects::upload_whole_path(&u.tenant_id, &u.id);
    let mut etags = Vec::new();
    for n in 0..u.part_count() {
        match parts.iter().find(|p| p.number == n).and_then(|p| p.etag.clone()) {
            Some(etag) => etags.push(etag),
            None => {
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    "incomplete",
                    format!("part {n} must be sent again"),
                ))
            }
        }
    }
    if let Err(e) = st.objects.complete_parts(&whole, multipart_id, etags).await {
        if st.objects.size_of(&whole).await? != Some(u.size as u64) {
            return Err(e.into());
        }
    }
    Ok(whole)
}

/// `POST /v1/uploads/{id}/complete`: every part arrived → a queued job
/// (202, like an upload). Completing again answers the same job.
pub async fn complete(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let who = caller.require(Scope::Write)?;
    let u = st.db.upload(&who.tenant_id, &id).await?;
    if let (UploadState::Completed, Some(job_id)) = (u.state, &u.job_id) {
        let job = st.db.job(&who.tenant_id, job_id).await?;
        return Ok(job_response(StatusCode::OK, &job, &st));
    }
    if u.state != UploadState::Open {
        return Err(closed(&u));
    }
    let parts = st.db.upload_parts(&u.id).await?;
    let missing: Vec<i64> = (0..u.part_count())
        .filter(|n| !parts.iter().any(|p| p.number == *n && p.size == u.part_len(*n)))
        .collect();
    if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(20).map(i64::to_string).collect();
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "incomplete",
            format!(
                "{} of {} parts are missing: {}{}",
                missing.len(),
                u.part_count(),
                shown.join(", "),
                if missing.len() > 20 { ", …" } else { "" }
            ),
        ));
    }
    let (depth, queued) = st.limits.counts(&who.tenant_id);
    st.limits.admit_queued(&who.tenant_id, depth, queued)?;
    let staging = match &u.multipart_id {
        Some(multipart_id) => assemble(&st, &u, multipart_id, &parts).await?,
        None => Objects::upload_prefix(&who.tenant_id, &u.id),
    };
    let job = NewJob {
        id: new_id()?,
        tenant_id: who.tenant_id.clone(),
        kind: JobKind::Process,
        object_key: u.object_key.clone(),
        pipeline: u.pipeline.clone(),
        staging: Some(staging),
        expected_digest: u.expected_digest.clone(),
        max_attempts: i64::from(st.config.job_max_attempts),
        staged_bytes: u.size,
    };
    let job = match st.db.complete_upload(&u, &job).await {
        Ok(j) => j,
        Err(sluice_store::Error::Conflict(_)) => {
            // Completed by a concurrent request: answer its job.
            let now = st.db.upload(&who.tenant_id, &id).await?;
            let Some(job_id) = now.job_id else {
                return Err(closed(&now));
            };
            let job = st.db.job(&who.tenant_id, &job_id).await?;
            return Ok(job_response(StatusCode::OK, &job, &st));
        }
        Err(e) => return Err(e.into()),
    };
    st.limits.note_job(&who.tenant_id, true);
    st.job_queued.notify_one();
    tracing::info!(upload = %u.id, job = %job.id, tenant = %who.tenant_name, "resumable upload complete, job queued");
    Ok(job_response(StatusCode::ACCEPTED, &job, &st))
}

/// `DELETE /v1/uploads/{id}`: gives a session up and deletes its parts.
pub async fn abort(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let who = caller.require(Scope::Write)?;
    let u = st.db.upload(&who.tenant_id, &id).await?;
    if !st.db.close_upload(&u.id, UploadState::Aborted).await? {
        let now = st.db.upload(&who.tenant_id, &id).await?;
        return Err(closed(&now));
    }
    // If this fails (the store is down), the reaper releases it later.
    release(&st, &u).await?;
    tracing::info!(upload = %u.id, tenant = %who.tenant_name, "resumable upload aborted");
    Ok(StatusCode::NO_CONTENT.into_response())
}
