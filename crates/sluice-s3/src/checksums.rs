//! `x-amz-checksum-*`: a checksum of an upload's body (CRC32, CRC32C,
//! CRC64NVME, SHA-1 or SHA-256), sent in a header or in the trailer of an
//! `aws-chunked` body, is checked as the body streams in and kept with the
//! object; a mismatch fails the upload (`BadDigest`) before anything is
//! stored. The hashing runs on the service's CPU pool, a batch at a time.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use s3s::checksum::ChecksumHasher;
use s3s::dto::{Checksum, ChecksumAlgorithm, ChecksumType};
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

    /// Sets this algorithm's field of `c`.
    pub(crate) fn put(self, c: &mut Checksum, value: String) {
        let v = Some(value);
        match self {
            Algo::Crc32 => c.checksum_crc32 = v,
            Algo::Crc32c => c.checksum_crc32c = v,
            Algo::Crc64Nvme => c.checksum_crc64nvme = v,
            Algo::Sha1 => c.checksum_sha1 = v,
            Algo::Sha256 => c.checksum_sha256 = v,
        }
    }

    /// This algorithm's value among the five a request may carry, in the
    /// order crc32, crc32c, crc64nvme, sha1, sha256.
    pub(crate) fn pick<T>(self, values: [Option<T>; 5]) -> Option<T> {
        let [crc32, crc32c, crc64nvme, sha1, sha256] = values;
        match self {
            Algo::Crc32 => crc32,
            Algo::Crc32c => crc32c,
            Algo::Crc64Nvme => crc64nvme,
            Algo::Sha1 => sha1,
            Algo::Sha256 => sha256,
        }
    }

    /// The CRC it is, if it is one (those can be combined over parts).
    fn crc(self) -> Option<(crc_fast::CrcAlgorithm, usize)> {
        match self {
            Algo::Crc32 => Some((crc_fast::CrcAlgorithm::Crc32IsoHdlc, 4)),
            Algo::Crc32c => Some((crc_fast::CrcAlgorithm::Crc32Iscsi, 4)),
            Algo::Crc64Nvme => Some((crc_fast::CrcAlgorithm::Crc64Nvme, 8)),
            Algo::Sha1 | Algo::Sha256 => None,
        }
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

/// How a multipart object's checksum covers it (S3's `ChecksumType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The checksum of the whole object's bytes (CRCs only: they combine).
    FullObject,
    /// The checksum of the parts' checksums, with `-N` (N parts) after it.
    Composite,
}

impl Kind {
    /// From its name (`FULL_OBJECT`, `COMPOSITE`).
    pub(crate) fn parse(name: &str) -> Option<Kind> {
        match name {
            ChecksumType::FULL_OBJECT => Some(Kind::FullObject),
            ChecksumType::COMPOSITE => Some(Kind::Composite),
            _ => None,
        }
    }

    /// Its name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::FullObject => ChecksumType::FULL_OBJECT,
            Kind::Composite => ChecksumType::COMPOSITE,
        }
    }

    /// What S3 makes for `algo` when none is asked for.
    pub(crate) fn default_for(algo: Algo) -> Kind {
        match algo {
            Algo::Crc64Nvme => Kind::FullObject,
            _ => Kind::Composite,
        }
    }

    /// Whether `algo` can make this kind (S3: a full-object checksum
    /// needs a CRC; CRC64NVME makes only full-object ones).
    pub(crate) fn allows(self, algo: Algo) -> bool {
        match self {
            Kind::FullObject => algo.crc().is_some(),
            Kind::Composite => algo != Algo::Crc64Nvme,
        }
    }
}

/// The checksum of an object made of `parts`, each given as its checksum
/// (base64, of `algo`) and its size; `None` if a checksum is malformed.
pub(crate) fn of_parts(algo: Algo, kind: Kind, parts: &[(&str, u64)]) -> Option<String> {
    let raw: Vec<Vec<u8>> = parts
        .iter()
        .map(|(v, _)| base64_simd::STANDARD.decode_to_vec(v.as_bytes()).ok())
        .collect::<Option<_>>()?;
    match kind {
        Kind::Composite => {
            let mut h = algo.hasher();
            for r in &raw {
                h.update(r);
            }
            Some(format!("{}-{}", algo.value(&h.finalize())?, parts.len()))
        }
        Kind::FullObject => {
            let (crc, width) = algo.crc()?;
            let mut whole: Option<u64> = None;
            for (r, (_, len)) in raw.iter().zip(parts) {
                let bytes: [u8; 8] = match width {
                    4 => {
                        let b: [u8; 4] = r.as_slice().try_into().ok()?;
                        let mut x = [0; 8];
                        x[4..].copy_from_slice(&b);
                        x
                    }
                    _ => r.as_slice().try_into().ok()?,
                };
                let value = u64::from_be_bytes(bytes);
                whole = Some(match whole {
                    None => value,
                    Some(w) => crc_fast::checksum_combine(crc, w, value, *len),
                });
            }
            let whole = whole?.to_be_bytes();
            Some(base64_simd::STANDARD.encode_to_string(&whole[8 - width..]))
        }
    }
}

/// Whether two checksums are the same, a composite's `-N` aside.
pub(crate) fn same(a: &str, b: &str) -> bool {
    let bare = |v: &str| v.trim().split_once('-').map_or(v.trim(), |(x, _)| x).to_string();
    bare(a) == bare(b)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(algo: Algo, data: &[u8]) -> String {
        let mut h = algo.hasher();
        h.update(data);
        algo.value(&h.finalize()).unwrap()
    }

    #[test]
    fn full_object_crcs_combine_to_the_whole_ones() {
        let parts: [&[u8]; 3] = [b"hello ", b"multipart ", b"world"];
        for algo in [Algo::Crc32, Algo::Crc32c, Algo::Crc64Nvme] {
            let sums: Vec<String> = parts.iter().map(|p| sum(algo, p)).collect();
            let given: Vec<(&str, u64)> = sums
                .iter()
                .zip(parts)
                .map(|(s, p)| (s.as_str(), p.len() as u64))
                .collect();
            assert_eq!(
                of_parts(algo, Kind::FullObject, &given).as_deref(),
                Some(sum(algo, b"hello multipart world").as_str()),
                "{algo:?}"
            );
        }
    }

    #[test]
    fn composites_hash_the_parts_checksums() {
        // The suite's known answer: one 1 KiB part of 'A's, SHA-256.
        let part = sum(Algo::Sha256, &[b'A'; 1024]);
        assert_eq!(part, "arcu6553sHVAiX4MjW0j7I7vD4w6R+Gz9Ok0Q9lTa+0=");
        assert_eq!(
            of_parts(Algo::Sha256, Kind::Composite, &[(&part, 1024)]).as_deref(),
            Some("Ok6Cs5b96ux6+MWQkJO7UBT5sKPBeXBLwvj/hK89smg=-1")
        );
        assert_eq!(of_parts(Algo::Sha256, Kind::Composite, &[("not base64!", 1)]), None);
        assert!(same("abc=-3", "abc="));
        assert!(!same("abc=-3", "abd=-3"));
        assert!(!Kind::FullObject.allows(Algo::Sha1));
        assert!(!Kind::Composite.allows(Algo::Crc64Nvme));
    }
}
