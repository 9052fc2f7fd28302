//! `x-amz-checksum-*`: a checksum of an upload's body (CRC32, CRC32C,
//! CRC64NVME, SHA-1 or SHA-256), sent in a header or in the trailer of an
//! `aws-chunked` body, is checked as the body streams in and kept with the
//! object; a mismatch fails the upload (`BadDigest`) before anything is
//! stored. The hashing runs on the service's CPU pool, a batch at a time.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use s3s::checksum::ChecksumHasher;
use s3s::dto::{Checksum, ChecksumAlgorithm};
use sluice_service::{Caller, Service};

/// Bytes hashed in one task on the pool.
const BATCH: usize = 1 << 20;

/// A checksum algorithm, by its name in headers (`crc32`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Algo {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl Algo {
    pub(crate) fn parse(name: &str) -> Option<Algo> {
        Some(match name.to_ascii_uppercase().as_str() {
            ChecksumAlgorithm::CRC32 => Algo::Crc32,
            ChecksumAlgorithm::CRC32C => Algo::Crc32c,
            ChecksumAlgorithm::CRC64NVME => Algo::Crc64Nvme,
            ChecksumAlgorithm::SHA1 => Algo::Sha1,
            ChecksumAlgorithm::SHA256 => Algo::Sha256,
            _ => return None,
        })
    }

    /// Its name as stored (and in `x-amz-checksum-NAME`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Algo::Crc32 => "crc32",
            Algo::Crc32c => "crc32c",
            Algo::Crc64Nvme => "crc64nvme",
            Algo::Sha1 => "sha1",
            Algo::Sha256 => "sha256",
        }
    }

    fn hasher(self) -> ChecksumHasher {
        let mut h = ChecksumHasher::default();
        match self {
            Algo::Crc32 => h.crc32 = Some(Default::default()),
            Algo::Crc32c => h.crc32c = Some(Default::default()),
            Algo::Crc64Nvme => h.crc64nvme = Some(Default::default()),
            Algo::Sha1 => h.sha1 = Some(Default::default()),
            Algo::Sha256 => h.sha256 = Some(Default::default()),
        }
        h
    }

    fn value(self, c: &Checksum) -> Option<String> {
        match self {
            Algo::Crc32 => c.checksum_crc32.clone(),
            Algo::Crc32c => c.checksum_crc32c.clone(),
            Algo::Crc64Nvme => c.checksum_crc64nvme.clone(),
            Algo::Sha1 => c.checksum_sha1.clone(),
            Algo::Sha256 => c.checksum_sha256.clone(),
        }
    }
}

/// Where the value to check against comes from.
pub(crate) enum Expected {
    /// A request header.
    Header(String),
    /// The body's trailer (known once the body ended).
    Trailer(s3s::TrailingHeaders),
    /// Nowhere: computed and kept only.
    None,
}

/// How checking went, once the body ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Not finished.
    #[default]
    Pending,
    /// The value (base64), checked if there was one to check.
    Ok(String),
    /// It differs from what the client sent.
    Mismatch,
}

/// `body`, hashed with `algo` as it passes; the outcome is in the slot.
pub(crate) fn checked(
    service: Service,
    who: Caller,
    body: sluice_service::Body,
    algo: Algo,
    expected: Expected,
) -> (sluice_service::Body, Arc<Mutex<Outcome>>) {
    let outcome = Arc::new(Mutex::new(Outcome::Pending));
    let slot = Arc::clone(&outcome);
    struct State {
        body: sluice_service::Body,
        hasher: Option<ChecksumHasher>,
        batch: Vec<Bytes>,
        batched: usize,
        done: bool,
    }
    let state = State {
        body,
        hasher: Some(algo.hasher()),
        batch: Vec::new(),
        batched: 0,
        done: false,
    };
    let hash = move |service: Service, who: Caller, mut h: ChecksumHasher, batch: Vec<Bytes>, cost: usize| async move {
        service
            .compute(&who, cost as u64, move || {
                for piece in &batch {
                    h.update(piece);
                }
                h
            })
            .await
            .map_err(std::io::Error::other)
    };
    let stream = futures_util::stream::unfold(state, move |mut st| {
        let service = service.clone();
        let who = who.clone();
        let slot = Arc::clone(&slot);
        let expected = match &expected {
            Expected::Header(v) => Expected::Header(v.clone()),
            Expected::Trailer(t) => Expected::Trailer(t.clone()),
            Expected::None => Expected::None,
        };
        async move {
            if st.done {
                return None;
            }
            match st.body.next().await {
                Some(Ok(piece)) => {
                    st.batched += piece.len();
                    st.batch.push(piece.clone());
                    if st.batched >= BATCH {
                        let h = st.hasher.take().unwrap_or_else(|| algo.hasher());
                        let batch = std::mem::take(&mut st.batch);
                        match hash(service, who, h, batch, std::mem::take(&mut st.batched)).await {
                            Ok(h) => st.hasher = Some(h),
                            Err(e) => {
                                st.done = true;
                                return Some((Err(e), st));
                            }
                        }
                    }
                    Some((Ok(piece), st))
                }
                Some(Err(e)) => {
                    st.done = true;
                    Some((Err(e), st))
                }
                None => {
                    st.done = true;
                    let h = st.hasher.take().unwrap_or_else(|| algo.hasher());
                    let batch = std::mem::take(&mut st.batch);
                    let h = match hash(service.clone(), who.clone(), h, batch, st.batched).await {
                        Ok(h) => h,
                        Err(e) => return Some((Err(e), st)),
                    };
                    let got = algo.value(&h.finalize()).unwrap_or_default();
                    let want = match expected {
                        Expected::Header(v) => Some(v),
                        Expected::Trailer(t) => t
                            .read(|h| {
                                h.get(format!("x-amz-checksum-{}", algo.name()))
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_string)
                            })
                            .flatten(),
                        Expected::None => None,
                    };
                    let ok = want.as_ref().is_none_or(|w| w.trim() == got);
                    if let Ok(mut o) = slot.lock() {
                        *o = if ok { Outcome::Ok(got) } else { Outcome::Mismatch };
                    }
                    if ok {
                        None
                    } else {
                        Some((
                            Err(std::io::Error::other(format!(
                                "the body's {} is not the one its client sent",
                                algo.name()
                            ))),
                            st,
                        ))
                    }
                }
            }
        }
    });
    (Box::pin(stream), outcome)
}
