//! Resumable uploads. A client announces an object (key, size, part size),
//! sends its parts in any order and as often as it likes (a part sent
//! again replaces the earlier copy), asks which arrived, and completes the
//! session into a queued job — or aborts it. Sessions expire
//! (`upload_ttl_secs`); the reaper then reclaims their parts. Each part is
//! stored durably before it is acknowledged, so a client that was cut off
//! resumes from the parts the server holds: on S3 (parts of at least 5 MiB)
//! as a part of one S3 multipart upload, completed into one staged object;
//! elsewhere as an object of its own, read in order by the job.

use std::sync::Arc;

use sluice_store::{new_id, JobKind, NewUpload, Objects, Scope, Upload, UploadPart, UploadState};

use crate::auth::Caller;
use crate::body::{Body, BodyReader};
use crate::error::Conflict;
use crate::jobs::{Job, JobError};
use crate::objects::{check_blake3, check_native_key, write};
use crate::tenants::limits::{BodyLimit, Refusal};
use crate::transfers::Direction;
use crate::{Error, Result, Service};

/// Part size when the client names none.
pub const DEFAULT_PART_SIZE: u64 = 8 << 20;
/// Smallest part size (but a whole smaller than it is one part).
pub const MIN_PART_SIZE: u64 = 1 << 20;
/// Largest part size.
pub const MAX_PART_SIZE: u64 = 64 << 20;
/// Most parts per session.
pub const MAX_PARTS: u64 = 100_000;

/// A session to open.
#[derive(Debug, Clone, Default)]
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

/// How completing a session went.
#[derive(Debug, Clone)]
pub enum Completed {
    /// Completed now: its job is queued.
    Queued(Job),
    /// Completed before (also by a concurrent request): its job.
    Before(Job),
}

fn closed(u: &Upload) -> Error {
    Error::Conflict {
        kind: Conflict::UploadClosed,
        detail: format!("upload {} is {}", u.id, u.state.as_str()),
    }
}

fn wrong_size(number: i64, expected: u64, got: u64) -> Error {
    Error::BadRequest(format!("part {number} must be exactly {expected} bytes; got {got}"))
}

impl Service {
    /// Opens a session.
    pub async fn open_upload(&self, caller: &Caller, req: NewSession) -> Result<Upload> {
        let who = caller.require(Scope::Write)?;
        check_native_key(&req.key)?;
        self.require_storage()?;
        if req.size > self.config.max_upload_bytes {
            return Err(Error::upload(BodyLimit::bytes(self.config.max_upload_bytes).exceeded()));
        }
        let part_size = req.part_size.unwrap_or(DEFAULT_PART_SIZE);
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&part_size) {
            return Err(Error::BadRequest(format!(
                "part_size must be {MIN_PART_SIZE} to {MAX_PART_SIZE} bytes"
            )));
        }
        if req.size.div_ceil(part_size) > MAX_PARTS {
            return Err(Error::BadRequest(format!(
                "more than {MAX_PARTS} parts: use a larger part_size"
            )));
        }
        let expected_digest = req.blake3.as_deref().map(check_blake3).transpose()?;
        let pipeline = req.pipeline.unwrap_or_else(|| "default".into());
        self.db.pipeline(&who.tenant_id, &pipeline).await?;
        if self.limits.of(&who.tenant_id).quota_bytes.is_some() {
            let stored = self.db.stored_bytes(&who.tenant_id).await?.max(0) as u64;
            // Only a check: the open session's size counts as stored from now on.
            drop(self.limits.reserve(&who.tenant_id, stored, Some(req.size))?);
        }
        let upload = self
            .db
            .create_upload(&NewUpload {
                tenant_id: who.tenant_id.clone(),
                object_key: req.key,
                pipeline,
                size: req.size as i64,
                part_size: part_size as i64,
                expected_digest,
                ttl_ms: self.config.upload_ttl.as_millis() as i64,
            })
            .await?;
        let upload = if self.objects.multipart_parts(part_size) {
            match self.start_multipart(&upload).await {
                Ok(u) => u,
                Err(e) => {
                    let _ = self.db.close_upload(&upload.id, UploadState::Aborted).await;
                    return Err(e);
                }
            }
        } else {
            upload
        };
        tracing::info!(upload = %upload.id, tenant = %who.tenant_name, size = upload.size, "resumable upload opened");
        Ok(upload)
    }

    /// Starts the S3 multipart upload a new session's parts will go to.
    async fn start_multipart(&self, upload: &Upload) -> Result<Upload> {
        let whole = Objects::upload_whole_path(&upload.tenant_id, &upload.id);
        let id = self.objects.begin_parts(&whole).await?;
        if let Err(e) = self.db.set_upload_multipart(&upload.id, &id).await {
            let _ = self.objects.abort_parts(&whole, &id).await;
            return Err(e.into());
        }
        Ok(Upload {
            multipart_id: Some(id),
            ..upload.clone()
        })
    }

    /// A session and the parts that arrived.
    pub async fn upload_status(&self, caller: &Caller, id: &str) -> Result<(Upload, Vec<UploadPart>)> {
        let who = caller.require(Scope::Read)?;
        let u = self.db.upload(&who.tenant_id, id).await?;
        let parts = self.db.upload_parts(&u.id).await?;
        Ok((u, parts))
    }

    /// Stores part `number` (0-based; exactly `part_size` bytes, the last
    /// one the rest). Sending a part again is harmless: the newer copy
    /// replaces the older.
    pub async fn put_part(
        &self,
        caller: &Caller,
        id: &str,
        number: &str,
        declared_len: Option<u64>,
        body: Body,
    ) -> Result<UploadPart> {
        let who = caller.require(Scope::Write)?;
        let _transfer = self.transfers.enter(&who.tenant_id, Direction::Upload)?;
        let number: i64 = number
            .parse()
            .map_err(|_| Error::BadRequest("the part number must be a whole number".into()))?;
        let u = self.db.upload(&who.tenant_id, id).await?;
        if u.state != UploadState::Open {
            return Err(closed(&u));
        }
        if number < 0 || number >= u.part_count() {
            return Err(Error::BadRequest(format!(
                "part {number} is out of range: this upload has parts 0 to {}",
                u.part_count() - 1
            )));
        }
        let expected = u.part_len(number) as u64;
        if let Some(n) = declared_len.filter(|n| *n != expected) {
            return Err(wrong_size(number, expected, n));
        }
        self.require_storage()?;
        if let Some(multipart_id) = &u.multipart_id {
            return self.put_multipart_part(&u, multipart_id, number, body).await;
        }
        // Written under a name of its own, then renamed over the part: a
        // broken or wrong-sized resend never destroys a good earlier copy.
        let location = Objects::upload_part_path(&who.tenant_id, &u.id, number);
        let scratch = format!("{location}.{}", new_id()?);
        let limit = BodyLimit::bytes(expected);
        let (received, digest, _) = match write::store_body(self, body, &scratch, &limit, true, None).await {
            Ok(r) => r,
            Err(Error::Job {
                error: JobError::UploadTooLarge(_),
                ..
            }) => return Err(wrong_size(number, expected, expected + 1)),
            Err(e) => return Err(e),
        };
        if received != expected {
            let _ = self.objects.delete(&scratch).await;
            return Err(wrong_size(number, expected, received));
        }
        if let Err(e) = self.objects.rename(&scratch, &location).await {
            let _ = self.objects.delete(&scratch).await;
            return Err(e.into());
        }
        let part = UploadPart {
            number,
            size: received as i64,
            digest: hex::encode(digest.unwrap_or_default()),
            etag: None,
        };
        self.db.record_part(&u.id, &part).await?;
        // Closed meanwhile (aborted or expired): its parts are being removed.
        let now = self.db.upload(&who.tenant_id, &u.id).await?;
        if now.state != UploadState::Open && now.state != UploadState::Completed {
            let _ = self.objects.delete(&location).await;
            return Err(closed(&now));
        }
        Ok(part)
    }

    /// Part `number` of a session whose parts are those of an S3 multipart
    /// upload: held in memory (within `part_buffer_mib` over all requests;
    /// past it, refused) while it arrives and is hashed, then sent as that
    /// part.
    async fn put_multipart_part(&self, u: &Upload, multipart_id: &str, number: i64, body: Body) -> Result<UploadPart> {
        let expected = u.part_len(number) as u64;
        let mib = u32::try_from(expected.div_ceil(1 << 20).max(1)).unwrap_or(u32::MAX);
        let _buffer = Arc::clone(&self.part_buffers)
            .try_acquire_many_owned(mib)
            .map_err(|_| Refusal::Busy {
                what: "too many parts arriving at once",
            })?;
        let limit = BodyLimit::bytes(expected);
        let mut reader = BodyReader::new(body, self.config.idle_body_timeout, &limit);
        let mut chunks = Vec::new();
        let mut hasher = blake3::Hasher::new();
        loop {
            match reader.next().await {
                Ok(Some(data)) => {
                    hasher.update(&data);
                    chunks.push(data);
                }
                Ok(None) => break,
                Err(JobError::UploadTooLarge(_)) => return Err(wrong_size(number, expected, expected + 1)),
                Err(e) => return Err(Error::upload(e)),
            }
        }
        if reader.received != expected {
            return Err(wrong_size(number, expected, reader.received));
        }
        let whole = Objects::upload_whole_path(&u.tenant_id, &u.id);
        let etag = self.objects.put_part(&whole, multipart_id, number, chunks).await?;
        let part = UploadPart {
            number,
            size: expected as i64,
            digest: hasher.finalize().to_hex().to_string(),
            etag: Some(etag),
        };
        self.db.record_part(&u.id, &part).await?;
        let now = self.db.upload(&u.tenant_id, &u.id).await?;
        if now.state != UploadState::Open && now.state != UploadState::Completed {
            return Err(closed(&now));
        }
        Ok(part)
    }

    /// Gives up what a closed session holds in the store: its multipart
    /// upload (S3) and its parts. Aborting and the reaper (expiry, and any
    /// release that failed before) call it; once it succeeds the session
    /// no longer names a multipart upload.
    pub(crate) async fn release_upload(&self, u: &Upload) -> sluice_store::Result<()> {
        if let Some(multipart_id) = &u.multipart_id {
            self.objects
                .abort_parts(&Objects::upload_whole_path(&u.tenant_id, &u.id), multipart_id)
                .await?;
            // At once: a release retried later must not abort it again.
            self.db.clear_upload_multipart(&u.id).await?;
        }
        self.objects
            .delete_staging(&Objects::upload_prefix(&u.tenant_id, &u.id))
            .await?;
        Ok(())
    }

    /// Whether session `id` still needs its files in the store: it is open
    /// (parts are arriving), or it completed into a job that has not
    /// released them yet. A session that is gone, aborted or expired needs
    /// none.
    pub(crate) async fn upload_files_in_use(&self, id: &str) -> sluice_store::Result<bool> {
        let u = match self.db.upload_by_id(id).await {
            Ok(u) => u,
            // The same prefix holds multipart uploads' parts.
            Err(sluice_store::Error::NotFound(_)) => return self.multipart_files_in_use(id).await,
            Err(e) => return Err(e),
        };
        match (u.state, &u.job_id) {
            (UploadState::Open, _) => Ok(true),
            (UploadState::Completed, Some(job_id)) => Ok(self
                .db
                .staging_in_use(job_id, &Objects::upload_prefix(&u.tenant_id, &u.id))
                .await?
                || self
                    .db
                    .staging_in_use(job_id, &Objects::upload_whole_path(&u.tenant_id, &u.id))
                    .await?),
            _ => Ok(false),
        }
    }

    /// Assembles a multipart session's parts into its one staged object;
    /// returns where it is. A completion whose answer was lost (the object
    /// is there, whole) counts as done.
    async fn assemble(&self, u: &Upload, multipart_id: &str, parts: &[UploadPart]) -> Result<String> {
        let whole = Objects::upload_whole_path(&u.tenant_id, &u.id);
        let mut etags = Vec::new();
        for n in 0..u.part_count() {
            match parts.iter().find(|p| p.number == n).and_then(|p| p.etag.clone()) {
                Some(etag) => etags.push(etag),
                None => {
                    return Err(Error::Conflict {
                        kind: Conflict::Incomplete,
                        detail: format!("part {n} must be sent again"),
                    })
                }
            }
        }
        if let Err(e) = self.objects.complete_parts(&whole, multipart_id, etags).await {
            if self.objects.size_of(&whole).await? != Some(u.size as u64) {
                return Err(e.into());
            }
        }
        Ok(whole)
    }

    /// Completes a session whose parts all arrived into a queued job.
    /// Completing again answers the same job.
    pub async fn complete_upload(&self, caller: &Caller, id: &str) -> Result<Completed> {
        let who = caller.require(Scope::Write)?;
        let u = self.db.upload(&who.tenant_id, id).await?;
        if let (UploadState::Completed, Some(job_id)) = (u.state, &u.job_id) {
            return Ok(Completed::Before(self.db.job(&who.tenant_id, job_id).await?));
        }
        if u.state != UploadState::Open {
            return Err(closed(&u));
        }
        let parts = self.db.upload_parts(&u.id).await?;
        let missing: Vec<i64> = (0..u.part_count())
            .filter(|n| !parts.iter().any(|p| p.number == *n && p.size == u.part_len(*n)))
            .collect();
        if !missing.is_empty() {
            let shown: Vec<String> = missing.iter().take(20).map(i64::to_string).collect();
            return Err(Error::Conflict {
                kind: Conflict::Incomplete,
                detail: format!(
                    "{} of {} parts are missing: {}{}",
                    missing.len(),
                    u.part_count(),
                    shown.join(", "),
                    if missing.len() > 20 { ", …" } else { "" }
                ),
            });
        }
        let mut job = self.new_job(&who.tenant_id, JobKind::Process, &u.object_key, &u.pipeline)?;
        job.expected_digest = u.expected_digest.clone();
        job.staged_bytes = u.size;
        let mut admitted = self.admit(job)?;
        admitted.job.staging = Some(match &u.multipart_id {
            Some(multipart_id) => self.assemble(&u, multipart_id, &parts).await?,
            None => Objects::upload_prefix(&who.tenant_id, &u.id),
        });
        let db = self.db.clone();
        let session = u.clone();
        let recorded = admitted
            .record(|job| async move { db.complete_upload(&session, &job).await })
            .await;
        match recorded {
            Ok(job) => {
                tracing::info!(upload = %u.id, job = %job.id, tenant = %who.tenant_name, "resumable upload complete");
                Ok(Completed::Queued(job))
            }
            Err(Error::AlreadyExists(_)) => {
                // Completed by a concurrent request: answer its job.
                let now = self.db.upload(&who.tenant_id, id).await?;
                let Some(job_id) = now.job_id else {
                    return Err(closed(&now));
                };
                Ok(Completed::Before(self.db.job(&who.tenant_id, &job_id).await?))
            }
            Err(e) => Err(e),
        }
    }

    /// Gives a session up and deletes its parts.
    pub async fn abort_upload(&self, caller: &Caller, id: &str) -> Result<()> {
        let who = caller.require(Scope::Write)?;
        let u = self.db.upload(&who.tenant_id, id).await?;
        if !self.db.close_upload(&u.id, UploadState::Aborted).await? {
            let now = self.db.upload(&who.tenant_id, id).await?;
            return Err(closed(&now));
        }
        // If this fails (the store is down), the reaper releases it later.
        self.release_upload(&u).await?;
        tracing::info!(upload = %u.id, tenant = %who.tenant_name, "resumable upload aborted");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use sluice_store::Scope;

    use super::*;
    use crate::testing::TestService;
    use crate::Settings;

    fn body(data: Vec<u8>) -> Body {
        Box::pin(futures_util::stream::iter([Ok(Bytes::from(data))]))
    }

    /// Found by the nemesis (`scripts/nemesis.sh --backend postgres --seed
    /// 11 --seconds 300 --fault-gap 3`): a session closed without its parts
    /// released (the node killed between the two, or the store down during
    /// the release) kept them for ever, since only multipart sessions were
    /// released again. The reaper now deletes the files of every session
    /// that is closed and that no job still reads, and keeps the others.
    #[tokio::test]
    async fn the_reaper_reclaims_the_files_of_closed_sessions_only() {
        let t = TestService::start(Settings::default()).await;
        let caller = t.caller(&t.tenant("acme", Scope::Write).await).await;
        let session = |key: &str| NewSession {
            key: key.into(),
            size: 10,
            part_size: Some(MIN_PART_SIZE),
            ..NewSession::default()
        };
        let mut uploads = Vec::new();
        for key in ["open", "aborted", "completed"] {
            let u = t.service.open_upload(&caller, session(key)).await.unwrap();
            t.service
                .put_part(&caller, &u.id, "0", Some(10), body(vec![7; 10]))
                .await
                .unwrap();
            uploads.push(u);
        }
        let part = |u: &Upload| Objects::upload_part_path(&u.tenant_id, &u.id, 0);
        // Closed, but its parts never released (as after a kill between the two).
        assert!(t
            .service
            .db
            .close_upload(&uploads[1].id, UploadState::Aborted)
            .await
            .unwrap());
        // Completed into a job that has not run yet: it still needs its parts.
        let slots = t.hold_job_slots();
        assert!(matches!(
            t.service.complete_upload(&caller, &uploads[2].id).await.unwrap(),
            Completed::Queued(_)
        ));

        crate::jobs::reaper::reap(&t.service, Duration::ZERO).await.unwrap();
        assert_eq!(t.service.objects.size_of(&part(&uploads[0])).await.unwrap(), Some(10));
        assert_eq!(t.service.objects.size_of(&part(&uploads[1])).await.unwrap(), None);
        assert_eq!(t.service.objects.size_of(&part(&uploads[2])).await.unwrap(), Some(10));

        // Once the job has run, its parts are released too.
        drop(slots);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while t.service.object(&caller, "completed").await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the completed upload's job did not run"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        crate::jobs::reaper::reap(&t.service, Duration::ZERO).await.unwrap();
        assert_eq!(t.service.objects.size_of(&part(&uploads[2])).await.unwrap(), None);
        t.stop().await;
    }
}
