//! What an object is stored with besides its bytes: the content headers
//! and user metadata a client gave (S3's `Content-Type`, `x-amz-meta-*`,
//! …), kept as JSON in its row and given back on every read; and what the
//! upload asked to be computed or checked on the way in (the MD5 for an
//! ETag, a `Content-MD5`), which its job carries until the object is
//! recorded.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Most bytes of user metadata (names and values), as S3 allows.
pub const MAX_USER_META_BYTES: usize = 2048;

/// An object's content headers and user metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// `Content-Type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `Content-Encoding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// `Content-Disposition`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    /// `Content-Language`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    /// `Cache-Control`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// `Expires`, as the client sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// User metadata (`x-amz-meta-NAME`), names in lower case.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user: BTreeMap<String, String>,
    /// Tags (S3's object tagging).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Checksums of the plaintext a client had checked on the way in, by
    /// algorithm (`crc32`, `crc32c`, `crc64nvme`, `sha1`, `sha256`), in
    /// S3's base64 form.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checksums: BTreeMap<String, String>,
    /// How its checksum covers it: `FULL_OBJECT` (the default) or
    /// `COMPOSITE` (a checksum of its parts' checksums, S3's multipart form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_type: Option<String>,
    /// For a multipart upload: the algorithm its parts are checked with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_algorithm: Option<String>,
    /// The sizes of the parts it was uploaded in (a multipart upload's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<i64>,
    /// The parts' checksums (base64, of the algorithm in `checksums`), in
    /// the order of `parts`, when they had them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub part_checksums: Vec<String>,
}

impl ObjectMeta {
    /// Bytes `start..end` of part `number` (from 1) of an object of `len`
    /// bytes: an object not uploaded in parts is its one part.
    pub fn part_range(&self, number: i64, len: u64) -> Option<std::ops::Range<u64>> {
        if self.parts.is_empty() {
            return (number == 1).then_some(0..len);
        }
        let index = usize::try_from(number.checked_sub(1)?).ok()?;
        let size = u64::try_from(*self.parts.get(index)?).ok()?;
        let start: u64 = self.parts[..index].iter().map(|&p| p.max(0) as u64).sum();
        Some(start..start + size)
    }
}

impl ObjectMeta {
    /// Refuses user metadata larger than S3 allows.
    pub fn check(&self) -> Result<()> {
        let bytes: usize = self.user.iter().map(|(k, v)| k.len() + v.len()).sum();
        if bytes > MAX_USER_META_BYTES {
            return Err(Error::BadRequest(format!(
                "user metadata is {bytes} bytes; at most {MAX_USER_META_BYTES} are allowed"
            )));
        }
        Ok(())
    }

    /// The form stored in a row (`None` when there is nothing).
    pub fn to_row(&self) -> Option<String> {
        (*self != ObjectMeta::default())
            .then(|| serde_json::to_string(self).ok())
            .flatten()
    }

    /// What a row holds (nothing, for rows written before metadata was kept).
    pub fn from_row(row: Option<&str>) -> ObjectMeta {
        row.and_then(|r| serde_json::from_str(r).ok()).unwrap_or_default()
    }
}

/// What a job carries for the object it stores.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Carried {
    /// The object's metadata.
    #[serde(default)]
    pub meta: ObjectMeta,
    /// Compute the plaintext's MD5 (for the ETag).
    #[serde(default)]
    pub md5: bool,
    /// The MD5 (hex) the plaintext must have (`Content-MD5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_md5: Option<String>,
    /// The ETag, already known (a multipart upload's is made of its parts').
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The multipart upload whose staged parts the job assembles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multipart: Option<String>,
    /// Which of its parts, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub part_numbers: Vec<i64>,
}

impl Carried {
    /// The form stored in the job's row (`None`: nothing to carry).
    pub(crate) fn to_row(&self) -> Option<String> {
        (*self != Carried::default())
            .then(|| serde_json::to_string(self).ok())
            .flatten()
    }

    /// What a job's row carries.
    pub(crate) fn from_row(row: Option<&str>) -> Carried {
        row.and_then(|r| serde_json::from_str(r).ok()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_and_is_bounded() {
        let mut m = ObjectMeta {
            content_type: Some("image/jpeg".into()),
            ..ObjectMeta::default()
        };
        m.user.insert("camera".into(), "x100".into());
        assert_eq!(ObjectMeta::from_row(m.to_row().as_deref()), m);
        assert_eq!(ObjectMeta::default().to_row(), None);
        assert_eq!(ObjectMeta::from_row(None), ObjectMeta::default());
        assert!(m.check().is_ok());
        m.user.insert("big".into(), "x".repeat(MAX_USER_META_BYTES));
        assert!(m.check().is_err());
        let c = Carried {
            md5: true,
            expected_md5: Some("00".repeat(16)),
            ..Carried::default()
        };
        assert_eq!(Carried::from_row(c.to_row().as_deref()), c);
    }
}

#[cfg(test)]
mod part_tests {
    use super::ObjectMeta;

    #[test]
    fn parts_are_ranges_of_the_object() {
        let one = ObjectMeta::default();
        assert_eq!(one.part_range(1, 10), Some(0..10));
        assert_eq!(one.part_range(2, 10), None);
        let three = ObjectMeta {
            parts: vec![5, 5, 2],
            ..ObjectMeta::default()
        };
        assert_eq!(three.part_range(2, 12), Some(5..10));
        assert_eq!(three.part_range(3, 12), Some(10..12));
        assert_eq!(three.part_range(4, 12), None);
        assert_eq!(three.part_range(0, 12), None);
    }
}
