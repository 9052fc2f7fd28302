//! Multipart uploads (S3's): an object sent as numbered parts of any size,
//! in any order and in parallel, then completed with the parts wanted.
//! Each part is compressed and sealed as it arrives, into a durable
//! container of its own, its MD5 (its ETag) computed on the CPU pool on
//! the way (`parts.rs`); completing checks the list, leaves only the listed
//! parts under the upload's prefix, and queues one job that assembles the
//! object's container from them (`assemble.rs`): the answer comes once the
//! object is stored. The object's ETag is S3's multipart form, the MD5 of
//! the parts' MD5s and their count.

mod assemble;
pub(crate) mod parts;

use md5::{Digest, Md5};
use sluice_engine::{Control, EncodeOptions};
use sluice_store::{JobKind, Multipart, MultipartPart, Objects, Scope};

use self::parts::SealedPart;
use crate::auth::Caller;
use crate::body::{Body, BodyReader};
use crate::jobs::JobError;
use crate::objects::check_key;
use crate::objects::encode::{encode_stream, Also, EncodeStop};
use crate::objects::meta::{Carried, ObjectMeta};
use crate::tenants::limits::{BodyLimit, Refusal};
use crate::transfers::Direction;
use crate::ObjectInfo;
use crate::{Error, Result, Service};

/// Smallest part but the last, as S3 requires.
pub const MIN_PART: i64 = 5 << 20;
/// Highest part number.
pub const MAX_PART_NUMBER: i64 = 10_000;

/// Why a completion's part list was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartsProblem {
    /// A listed part was not uploaded, or its ETag differs.
    InvalidPart,
    /// The list is not in ascending order of part numbers.
    InvalidPartOrder,
    /// A part but the last is smaller than [`MIN_PART`].
    EntityTooSmall,
}

impl PartsProblem {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            PartsProblem::InvalidPart => "invalid_part",
            PartsProblem::InvalidPartOrder => "invalid_part_order",
            PartsProblem::EntityTooSmall => "entity_too_small",
        }
    }
}

/// A part as the client names it when completing.
#[derive(Debug, Clone)]
pub struct ListedPart {
    /// Its number.
    pub number: i64,
    /// The ETag it was given (quotes allowed).
    pub etag: String,
}

impl Service {
    /// Starts a multipart upload of `key`, stored through `pipeline`
    /// (`default` if none) with `meta`.
    pub async fn create_multipart(
        &self,
        caller: &Caller,
        key: &str,
        pipeline: Option<&str>,
        meta: ObjectMeta,
    ) -> Result<Multipart> {
        let who = caller.require(Scope::Write)?;
        check_key(key)?;
        meta.check()?;
        let pipeline = pipeline.unwrap_or("default");
        self.db.pipeline(&who.tenant_id, pipeline).await?;
        let carried = Carried {
            meta,
            ..Carried::default()
        };
        let u = self
            .db
            .create_multipart(&who.tenant_id, key, pipeline, carried.to_row().as_deref())
            .await?;
        tracing::info!(upload = %u.id, tenant = %who.tenant_name, "multipart upload started");
        Ok(u)
    }

    /// The caller's open multipart upload `id` of `key`.
    pub async fn open_multipart(&self, caller: &Caller, key: &str, id: &str) -> Result<Multipart> {
        let who = caller.require(Scope::Read)?;
        match self.db.multipart(&who.tenant_id, id).await {
            Ok(u) if u.object_key == key && u.state == "open" => Ok(u),
            Ok(_) | Err(sluice_store::Error::NotFound(_)) => Err(Error::NotFound(format!("multipart upload {id:?}"))),
            Err(e) => Err(e.into()),
        }
    }

    /// Stores part `number` of upload `id` as it arrives, compressed and
    /// sealed on the CPU pool into a container of its own (see
    /// `parts.rs`); a part sent again replaces the earlier one. Returns it
    /// with its MD5 ETag and the checksum `checksum` gives once the body
    /// has ended (`ALGO:BASE64`, from a body the caller had checked on its
    /// way in).
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_multipart_part(
        &self,
        caller: &Caller,
        key: &str,
        id: &str,
        number: i64,
        declared_len: Option<u64>,
        body: Body,
        checksum: impl FnOnce() -> Option<String> + Send,
    ) -> Result<MultipartPart> {
        let who = caller.require(Scope::Write)?;
        if !(1..=MAX_PART_NUMBER).contains(&number) {
            return Err(Error::BadRequest(format!(
                "part number {number}: parts are numbered 1 to {MAX_PART_NUMBER}"
            )));
        }
        let u = self.open_multipart(caller, key, id).await?;
        self.require_storage()?;
        let _transfer = self.transfers.enter(&who.tenant_id, Direction::Upload)?;
        let max = self.config.max_upload_bytes;
        if declared_len.is_some_and(|n| n > max) {
            return Err(Error::upload(BodyLimit::bytes(max).exceeded()));
        }
        let stored = match self.limits.of(&who.tenant_id).quota_bytes {
            Some(_) => self.db.stored_bytes(&who.tenant_id).await?.max(0) as u64,
            None => 0,
        };
        let reservation = self.limits.reserve(&who.tenant_id, stored, declared_len)?;
        let limit = BodyLimit::new(max, &reservation);
        let opts = self.part_options(&who.tenant_id, &u.pipeline).await?;
        let chunk_size = opts.params.chunk_size.bytes() as u64;
        let first_chunk = match declared_len.is_some_and(|n| n > 0 && n.is_multiple_of(chunk_size)) {
            true => parts::expected_first_chunk(number, declared_len, [], chunk_size),
            // A last part: its place follows from the other parts' size.
            false => {
                let others = self.db.multipart_parts(&u.id).await?;
                parts::expected_first_chunk(
                    number,
                    declared_len,
                    others.iter().map(|p| p.size.max(0) as u64),
                    chunk_size,
                )
            }
        };
        // A name of its own: a broken resend never destroys a good earlier
        // copy, and a row always describes the file it names.
        let mut sealed = SealedPart {
            suffix: sluice_store::new_id()?,
            expected: None,
        };
        let location = sealed.location(&who.tenant_id, &u.id, number);
        let reader = BodyReader::new(body, self.config.idle_body_timeout, &limit);
        let lanes = self.encode_lanes(&who.tenant_id, &opts);
        let also = Also {
            md5: true,
            hashes_from: first_chunk,
        };
        let encoded = encode_stream(
            &self.objects,
            &location,
            lanes,
            Box::pin(reader.into_stream()),
            opts,
            also,
            &Control::new(),
        )
        .await
        .map_err(|stop| self.part_failed(stop))?;
        sealed.expected = first_chunk.map(|first| (first, encoded.hashes));
        let part = MultipartPart {
            number,
            size: encoded.summary.plaintext_len as i64,
            etag: hex::encode(encoded.md5.unwrap_or_default()),
            checksum: checksum(),
            sealed: Some(sealed.to_text()),
            created_at: sluice_store::now_ms(),
        };
        match self.db.put_multipart_part(&u.id, &part).await {
            Ok(()) => {}
            Err(sluice_store::Error::NotFound(_)) => {
                // Completed or aborted meanwhile: this part is not part of it.
                let _ = self.objects.delete(&location).await;
                return Err(Error::NotFound(format!("multipart upload {id:?}")));
            }
            Err(e) => {
                let _ = self.objects.delete(&location).await;
                return Err(e.into());
            }
        }
        Ok(part)
    }

    /// How a tenant's parts are sealed: the pipeline's codec, cipher and
    /// chunk size, opened by the tenant's own key only (the pipeline's
    /// recipients get the object's container, not its staged parts).
    async fn part_options(&self, tenant_id: &str, pipeline: &str) -> Result<EncodeOptions> {
        let mut opts = self.encode_options(tenant_id, pipeline).await.map_err(Error::upload)?;
        // The tenant's own recipient comes first.
        opts.slots.truncate(1);
        Ok(opts)
    }

    /// The answer to a part that could not be stored.
    fn part_failed(&self, stop: EncodeStop) -> Error {
        match stop {
            EncodeStop::Store(e) => {
                // The store is failing, not the request.
                tracing::warn!(error = %e, "storing a part failed");
                Refusal::StorageUnavailable {
                    retry_after: self.config.store.breaker_open,
                }
                .into()
            }
            EncodeStop::Refused(r) => r.into(),
            EncodeStop::Source(e) => Error::upload(e),
            EncodeStop::Engine(e) => match JobError::of_engine(&e) {
                Some(e) => Error::upload(e),
                None => Error::internal(e),
            },
            EncodeStop::Cancelled => Error::internal("a part's encode was cancelled"),
        }
    }

    /// The parts of open upload `id` that arrived, by number.
    pub async fn multipart_parts(&self, caller: &Caller, key: &str, id: &str) -> Result<Vec<MultipartPart>> {
        let u = self.open_multipart(caller, key, id).await?;
        Ok(self.db.multipart_parts(&u.id).await?)
    }

    /// The caller's open uploads of keys starting with `prefix`, by key
    /// then id, after `(key, id)`.
    pub async fn multipart_uploads(
        &self,
        caller: &Caller,
        prefix: &str,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<Multipart>> {
        let who = caller.require(Scope::Read)?;
        Ok(self.db.open_multiparts(&who.tenant_id, prefix, after, limit).await?)
    }

    /// Gives upload `id` up and deletes its parts.
    pub async fn abort_multipart(&self, caller: &Caller, key: &str, id: &str) -> Result<()> {
        caller.require(Scope::Write)?;
        let u = self.open_multipart(caller, key, id).await?;
        if !self.db.abort_multipart(&u.id).await? {
            return Err(Error::NotFound(format!("multipart upload {id:?}")));
        }
        // If this fails, the reaper deletes them (no open upload needs them).
        let _ = self
            .objects
            .delete_staging(&Objects::upload_prefix(&u.tenant_id, &u.id))
            .await;
        tracing::info!(upload = %u.id, "multipart upload aborted");
        Ok(())
    }

    /// Completes upload `id` into its object from the parts `listed`:
    /// checks them and queues the job that stores the object; its end is
    /// [`Service::completed`]'s (a caller may keep its client's connection
    /// alive meanwhile, as S3 does). `finish` sees the chosen parts
    /// and the object's metadata first (to add what is made of the parts,
    /// such as a checksum of their checksums); an error from it leaves the
    /// upload open and untouched.
    pub async fn complete_multipart(
        &self,
        caller: &Caller,
        key: &str,
        id: &str,
        listed: &[ListedPart],
        finish: impl FnOnce(&[MultipartPart], &mut ObjectMeta) -> Result<()> + Send,
    ) -> Result<Completing> {
        let who = caller.require(Scope::Write)?;
        // Completing again answers as the first completion did.
        if let Ok(done) = self.db.multipart(&who.tenant_id, id).await {
            if let (true, "completed", Some(job_id)) = (done.object_key == key, done.state.as_str(), &done.job_id) {
                return Ok(Completing {
                    job_id: job_id.clone(),
                    key: key.to_string(),
                });
            }
        }
        let u = self.open_multipart(caller, key, id).await?;
        let parts = self.db.multipart_parts(&u.id).await?;
        let chosen = choose_parts(&parts, listed)?;
        let mut carried = Carried::from_row(u.meta.as_deref());
        carried.meta.parts = chosen.iter().map(|p| p.size).collect();
        finish(&chosen, &mut carried.meta)?;
        // Only the listed parts' files stay under the prefix the job reads
        // (not the parts left out, nor copies replaced by a resend).
        let keep: Vec<String> = chosen.iter().map(|p| part_location(&u, p)).collect();
        for (file, _) in self
            .objects
            .listed(&Objects::upload_prefix(&u.tenant_id, &u.id))
            .await?
        {
            if !keep.contains(&file) {
                self.objects.delete(&file).await?;
            }
        }
        carried.multipart = Some(u.id.clone());
        carried.part_numbers = chosen.iter().map(|p| p.number).collect();
        let mut md5s = Md5::new();
        for p in &chosen {
            let bytes = hex::decode(&p.etag).map_err(|_| Error::internal("a part's ETag is not hex"))?;
            md5s.update(&bytes);
        }
        carried.etag = Some(format!("{}-{}", hex::encode(md5s.finalize()), chosen.len()));
        let mut job = self.new_job(&who.tenant_id, JobKind::Process, &u.object_key, &u.pipeline)?;
        job.staged_bytes = chosen.iter().map(|p| p.size).sum();
        job.meta = carried.to_row();
        let mut admitted = self.admit(job)?;
        admitted.job.staging = Some(Objects::upload_prefix(&u.tenant_id, &u.id));
        let db = self.db.clone();
        let upload_id = u.id.clone();
        let job = admitted
            .record(|job| async move { db.complete_multipart(&upload_id, &job).await })
            .await
            .map_err(|e| match e {
                Error::AlreadyExists(_) => Error::NotFound(format!("multipart upload {id:?}")),
                e => e,
            })?;
        tracing::info!(upload = %u.id, job = %job.id, parts = chosen.len(), "multipart upload completed");
        Ok(Completing {
            job_id: job.id,
            key: u.object_key,
        })
    }

    /// The object a completion stores, once it is stored (or why not).
    pub async fn completed(&self, caller: &Caller, c: Completing) -> Result<ObjectInfo> {
        let who = caller.require(Scope::Write)?;
        self.wait_for_job(&who.tenant_id, &c.job_id).await?;
        self.object(caller, &c.key).await
    }
}

/// A multipart completion whose object a job is storing.
#[derive(Debug, Clone)]
pub struct Completing {
    job_id: String,
    key: String,
}

/// Where part `p` of upload `u` is staged.
pub(crate) fn part_location(u: &Multipart, p: &MultipartPart) -> String {
    match p.sealed.as_deref().and_then(SealedPart::from_text) {
        Some(sealed) => sealed.location(&u.tenant_id, &u.id, p.number),
        // Staged as plaintext, by an earlier version.
        None => Objects::upload_part_path(&u.tenant_id, &u.id, p.number),
    }
}

/// The metadata an open upload's object will have (and the checksum
/// algorithm its parts are checked with).
pub fn upload_meta(u: &Multipart) -> ObjectMeta {
    Carried::from_row(u.meta.as_deref()).meta
}

impl Service {
    /// Whether multipart upload `id`'s staged parts are still needed: it
    /// is open, or the job completing it has not used them yet.
    pub(crate) async fn multipart_files_in_use(&self, id: &str) -> sluice_store::Result<bool> {
        let u = match self.db.multipart_by_id(id).await {
            Ok(u) => u,
            Err(sluice_store::Error::NotFound(_)) => return Ok(false),
            Err(e) => return Err(e),
        };
        match (u.state.as_str(), &u.job_id) {
            ("open", _) => Ok(true),
            ("completed", Some(job_id)) => {
                self.db
                    .staging_in_use(job_id, &Objects::upload_prefix(&u.tenant_id, &u.id))
                    .await
            }
            _ => Ok(false),
        }
    }

    /// Aborts multipart uploads left open longer than the upload time to
    /// live (their files are then the reaper's); returns how many.
    pub(crate) async fn expire_multiparts(&self) -> sluice_store::Result<usize> {
        let before = sluice_store::now_ms() - self.config.upload_ttl.as_millis() as i64;
        let mut n = 0;
        for (tenant_id, id) in self.db.stale_multiparts(before, 500).await? {
            if self.db.abort_multipart(&id).await? {
                let _ = self
                    .objects
                    .delete_staging(&Objects::upload_prefix(&tenant_id, &id))
                    .await;
                tracing::info!(upload = %id, "abandoned multipart upload aborted");
                n += 1;
            }
        }
        Ok(n)
    }
}

/// The uploaded parts a completion lists, checked as S3 checks them.
fn choose_parts(parts: &[MultipartPart], listed: &[ListedPart]) -> Result<Vec<MultipartPart>> {
    let problem = |kind, detail: String| Error::Parts { kind, detail };
    if listed.is_empty() {
        return Err(problem(
            PartsProblem::InvalidPart,
            "the completion lists no parts".into(),
        ));
    }
    let mut chosen: Vec<MultipartPart> = Vec::with_capacity(listed.len());
    for l in listed {
        if chosen.last().is_some_and(|c| c.number >= l.number) {
            return Err(problem(
                PartsProblem::InvalidPartOrder,
                format!(
                    "part {} is listed after part {}",
                    l.number,
                    chosen.last().map_or(0, |c| c.number)
                ),
            ));
        }
        let etag = l.etag.trim().trim_matches('"');
        match parts.iter().find(|p| p.number == l.number) {
            Some(p) if p.etag.eq_ignore_ascii_case(etag) => chosen.push(p.clone()),
            _ => {
                return Err(problem(
                    PartsProblem::InvalidPart,
                    format!("part {} was not uploaded with ETag {etag:?}", l.number),
                ))
            }
        }
    }
    if let Some(small) = chosen[..chosen.len() - 1].iter().find(|p| p.size < MIN_PART) {
        return Err(problem(
            PartsProblem::EntityTooSmall,
            format!(
                "part {} is {} bytes; every part but the last must be at least 5 MiB",
                small.number, small.size
            ),
        ));
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::pipelines::PipelineChange;
    use crate::testing::TestService;
    use crate::Settings;

    fn body(data: &[u8]) -> Body {
        // In pieces, as a client sends it.
        let pieces: Vec<std::io::Result<Bytes>> = data.chunks(100_000).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
        Box::pin(futures_util::stream::iter(pieces))
    }

    fn data(len: usize, seed: u32) -> Vec<u8> {
        (0..len as u32)
            .map(|i| ((i / 7) ^ seed).wrapping_mul(31) as u8 % 61)
            .collect()
    }

    /// Uploads `parts` (number, bytes) of a new upload of `key`, completes
    /// it with `listed` and reads the object back whole.
    async fn round_trip(
        t: &TestService,
        caller: &Caller,
        key: &str,
        parts: &[(i64, Vec<u8>)],
        listed: &[i64],
    ) -> (ObjectInfo, Vec<u8>) {
        let u = t
            .service
            .create_multipart(caller, key, Some("small"), ObjectMeta::default())
            .await
            .unwrap();
        let mut etags = std::collections::HashMap::new();
        for (n, bytes) in parts {
            let p = t
                .service
                .upload_multipart_part(caller, key, &u.id, *n, Some(bytes.len() as u64), body(bytes), || None)
                .await
                .unwrap();
            assert_eq!(p.etag, hex::encode(Md5::digest(bytes)));
            // Staged sealed: a container, not the plaintext.
            let row = t.service.db.multipart_parts(&u.id).await.unwrap();
            let row = row.iter().find(|r| r.number == *n).unwrap();
            let staged = t
                .service
                .objects
                .read_range(&part_location(&u, row), 0..8)
                .await
                .unwrap();
            assert_eq!(&staged[..], b"\x89SLUICE\n");
            etags.insert(*n, p.etag);
        }
        let listed: Vec<ListedPart> = listed
            .iter()
            .map(|n| ListedPart {
                number: *n,
                etag: etags[n].clone(),
            })
            .collect();
        let c = t
            .service
            .complete_multipart(caller, key, &u.id, &listed, |_, _| Ok(()))
            .await
            .unwrap();
        let o = t.service.completed(caller, c).await.unwrap();
        let mut content = t.service.content(caller, key, None).await.unwrap();
        let mut all = Vec::new();
        while let Some(piece) = futures_util::StreamExt::next(&mut content.body).await {
            all.extend_from_slice(&piece.expect("the whole object reads back, its digest checked"));
        }
        // Only what the object needs stays: no staged part is left behind.
        crate::jobs::reaper::reap(&t.service, std::time::Duration::ZERO)
            .await
            .unwrap();
        let left = t
            .service
            .objects
            .listed(&Objects::upload_prefix(&u.tenant_id, &u.id))
            .await
            .unwrap();
        assert!(left.is_empty(), "{left:?}");
        (o, all)
    }

    /// Parts are sealed as they arrive and the object is made of them:
    /// moved chunk by chunk when they line up with its chunks (hashed when
    /// they arrived, or again when a part is not where it was expected),
    /// encoded afresh when they do not; each way the object reads back
    /// whole, with its digest and S3's multipart ETag.
    #[tokio::test]
    async fn objects_are_made_of_parts_sealed_as_they_arrived() {
        let t = TestService::start(Settings::default()).await;
        let caller = t.caller(&t.tenant("acme", Scope::Write).await).await;
        let change = PipelineChange {
            chunk_size: Some("1MiB".into()),
            ..PipelineChange::default()
        };
        t.service.put_pipeline(&caller, "small", change).await.unwrap();
        let mib = 1 << 20;
        let multipart_etag = |parts: &[&Vec<u8>]| {
            let mut all = Md5::new();
            for p in parts {
                all.update(Md5::digest(p));
            }
            format!("{}-{}", hex::encode(all.finalize()), parts.len())
        };
        type Parts = Vec<(i64, Vec<u8>)>;
        let cases: Vec<(&str, Parts, Vec<i64>)> = vec![
            // Aligned, sent out of order: the last part first.
            (
                "aligned",
                vec![(3, data(mib + 123, 3)), (1, data(5 * mib, 1)), (2, data(5 * mib, 2))],
                vec![1, 2, 3],
            ),
            // Part 2 left out: part 3 is not where it was expected.
            (
                "skipped",
                vec![(1, data(5 * mib, 4)), (2, data(5 * mib, 5)), (3, data(5 * mib, 6))],
                vec![1, 3],
            ),
            // Parts that are no whole number of chunks: encoded afresh.
            (
                "unaligned",
                vec![(1, data(5 * mib + 1, 7)), (2, data(5 * mib + 1, 8)), (3, data(10, 9))],
                vec![1, 2, 3],
            ),
        ];
        for (key, parts, listed) in cases {
            let chosen: Vec<&Vec<u8>> = listed
                .iter()
                .map(|n| &parts.iter().find(|(m, _)| m == n).unwrap().1)
                .collect();
            let whole: Vec<u8> = chosen.iter().flat_map(|p| p.iter().copied()).collect();
            let (o, read) = round_trip(&t, &caller, key, &parts, &listed).await;
            assert!(read == whole, "{key}: the object reads back as its parts");
            assert_eq!(o.digest, hex::encode(blake3::hash(&whole).as_bytes()), "{key}");
            assert_eq!(o.etag.as_deref(), Some(multipart_etag(&chosen).as_str()), "{key}");
            assert_eq!(o.plaintext_len, whole.len() as i64, "{key}");
        }
        // A part sent again replaces the first copy.
        let u = t
            .service
            .create_multipart(&caller, "again", Some("small"), ObjectMeta::default())
            .await
            .unwrap();
        for seed in [10, 11] {
            let bytes = data(mib, seed);
            t.service
                .upload_multipart_part(&caller, "again", &u.id, 1, None, body(&bytes), || None)
                .await
                .unwrap();
        }
        let parts = t.service.multipart_parts(&caller, "again", &u.id).await.unwrap();
        let listed = [ListedPart {
            number: 1,
            etag: parts[0].etag.clone(),
        }];
        let c = t
            .service
            .complete_multipart(&caller, "again", &u.id, &listed, |_, _| Ok(()))
            .await
            .unwrap();
        let o = t.service.completed(&caller, c).await.unwrap();
        assert_eq!(o.digest, hex::encode(blake3::hash(&data(mib, 11)).as_bytes()));
        t.stop().await;
    }

    fn part(number: i64, size: i64, etag: &str) -> MultipartPart {
        MultipartPart {
            number,
            size,
            etag: etag.into(),
            checksum: None,
            sealed: None,
            created_at: 0,
        }
    }

    fn listed(number: i64, etag: &str) -> ListedPart {
        ListedPart {
            number,
            etag: format!("\"{etag}\""),
        }
    }

    #[test]
    fn completions_follow_s3s_part_rules() {
        let parts = [part(1, MIN_PART, "aa"), part(2, 10, "bb"), part(3, 7, "cc")];
        let kind = |r: Result<Vec<MultipartPart>>| match r {
            Err(Error::Parts { kind, .. }) => Some(kind),
            _ => None,
        };
        assert_eq!(
            choose_parts(&parts, &[listed(1, "aa"), listed(3, "cc")]).unwrap().len(),
            2
        );
        assert_eq!(
            kind(choose_parts(&parts, &[listed(3, "cc"), listed(1, "aa")])),
            Some(PartsProblem::InvalidPartOrder)
        );
        assert_eq!(
            kind(choose_parts(&parts, &[listed(1, "ab")])),
            Some(PartsProblem::InvalidPart)
        );
        assert_eq!(
            kind(choose_parts(&parts, &[listed(4, "aa")])),
            Some(PartsProblem::InvalidPart)
        );
        assert_eq!(
            kind(choose_parts(&parts, &[listed(2, "bb"), listed(3, "cc")])),
            Some(PartsProblem::EntityTooSmall)
        );
        assert_eq!(kind(choose_parts(&parts, &[])), Some(PartsProblem::InvalidPart));
    }
}
