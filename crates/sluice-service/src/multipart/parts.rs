//! How a multipart upload's part is staged: as a container of its own,
//! compressed and sealed with the tenant's key while it arrives (never as
//! plaintext), under a name of its own, so that a part sent again never
//! overwrites the copy a row describes.
//!
//! When the part arrives, its place in the object is usually known
//! already: clients send parts of one size, so part `n` of parts of `L`
//! bytes starts at byte `(n − 1)·L`. The part's chunks are then also
//! hashed (BLAKE3) as chunks of the object at that place. A completion
//! whose parts are where they were expected moves their chunks into the
//! object's container still compressed, with those hashes giving the
//! object's digest; a part elsewhere is hashed again at completion.

use sluice_engine::format::ChunkHash;
use sluice_store::Objects;

/// What the row of a sealed part keeps (its `sealed` column).
#[derive(Debug, Clone)]
pub(crate) struct SealedPart {
    /// The suffix of its file's name (new for each copy sent).
    pub suffix: String,
    /// The object's chunk at which the part was expected to start, with
    /// its chunks' BLAKE3 subtrees as chunks of the object from there.
    pub expected: Option<(u64, Vec<ChunkHash>)>,
}

impl SealedPart {
    /// The stored form: `SUFFIX`, or `SUFFIX:FIRST:HASH,HASH,…` (hex).
    pub(crate) fn to_text(&self) -> String {
        match &self.expected {
            None => self.suffix.clone(),
            Some((first, hashes)) => {
                let hashes: Vec<String> = hashes.iter().map(|h| hex::encode(h.to_bytes())).collect();
                format!("{}:{first}:{}", self.suffix, hashes.join(","))
            }
        }
    }

    /// Reads [`SealedPart::to_text`]'s form; `None` if it is not one.
    pub(crate) fn from_text(text: &str) -> Option<SealedPart> {
        let mut fields = text.splitn(3, ':');
        let suffix = fields.next().filter(|s| is_suffix(s))?.to_string();
        let expected = match (fields.next(), fields.next()) {
            (None, _) => None,
            (Some(first), Some(hashes)) => {
                let first = first.parse().ok()?;
                let hashes = match hashes.is_empty() {
                    true => Vec::new(),
                    false => hashes
                        .split(',')
                        .map(|h| ChunkHash::from_bytes(&hex::decode(h).ok()?))
                        .collect::<Option<Vec<_>>>()?,
                };
                Some((first, hashes))
            }
            (Some(_), None) => return None,
        };
        Some(SealedPart { suffix, expected })
    }

    /// Where its file is.
    pub(crate) fn location(&self, tenant_id: &str, upload_id: &str, number: i64) -> String {
        format!(
            "{}.{}",
            Objects::upload_part_path(tenant_id, upload_id, number),
            self.suffix
        )
    }
}

/// A suffix is a store id: letters and digits only, so it never holds the
/// separators of the stored form.
fn is_suffix(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The object's chunk at which part `number` most likely starts, for
/// chunks of `chunk_size` bytes: from its own length when that is a whole
/// number of chunks (every part but the last, for the usual clients),
/// else (a last part) from the length of another part that is; the first
/// part starts at chunk 0 whatever its length. `None` when nothing tells.
pub(crate) fn expected_first_chunk(
    number: i64,
    declared_len: Option<u64>,
    other_sizes: impl IntoIterator<Item = u64>,
    chunk_size: u64,
) -> Option<u64> {
    let before = u64::try_from(number.checked_sub(1)?).ok()?;
    if before == 0 {
        return Some(0);
    }
    let whole = |len: u64| (len > 0 && len.is_multiple_of(chunk_size)).then(|| len / chunk_size);
    let per_part = match declared_len.and_then(whole) {
        Some(chunks) => chunks,
        None => other_sizes.into_iter().find_map(whole)?,
    };
    before.checked_mul(per_part)
}

#[cfg(test)]
mod tests {
    use sluice_engine::format::hash_chunk;

    use super::*;

    #[test]
    fn the_stored_form_round_trips() {
        let hashes = vec![hash_chunk(0, 4096, b"a"), hash_chunk(1, 4096, b"b")];
        let p = SealedPart {
            suffix: "abc123".into(),
            expected: Some((0, hashes.clone())),
        };
        let back = SealedPart::from_text(&p.to_text()).unwrap();
        assert_eq!(back.suffix, "abc123");
        let (first, got) = back.expected.unwrap();
        assert_eq!(first, 0);
        assert_eq!(
            got.iter().map(ChunkHash::to_bytes).collect::<Vec<_>>(),
            hashes.iter().map(ChunkHash::to_bytes).collect::<Vec<_>>()
        );
        let plain = SealedPart {
            suffix: "x1".into(),
            expected: None,
        };
        assert!(SealedPart::from_text(&plain.to_text()).unwrap().expected.is_none());
        let none = SealedPart {
            suffix: "x1".into(),
            expected: Some((5, Vec::new())),
        };
        assert_eq!(SealedPart::from_text(&none.to_text()).unwrap().expected.unwrap().0, 5);
        for bad in ["", "a/b", "x:1", "x:q:", "x:1:zz", "x:1:00"] {
            assert!(SealedPart::from_text(bad).is_none(), "{bad:?}");
        }
        assert_eq!(
            plain.location("t", "u", 3),
            format!("{}.x1", Objects::upload_part_path("t", "u", 3))
        );
    }

    #[test]
    fn a_parts_place_is_guessed_from_the_part_sizes() {
        let mib = 1 << 20;
        // 8 MiB parts, 8 MiB chunks: part 3 starts at chunk 2.
        assert_eq!(expected_first_chunk(3, Some(8 * mib), [], 8 * mib), Some(2));
        // 16 MiB parts, 8 MiB chunks.
        assert_eq!(expected_first_chunk(3, Some(16 * mib), [], 8 * mib), Some(4));
        // A short last part: from the others.
        assert_eq!(expected_first_chunk(5, Some(mib), [8 * mib], 8 * mib), Some(4));
        assert_eq!(expected_first_chunk(5, None, [3, 16 * mib], 8 * mib), Some(8));
        // Nothing tells: 5 MiB parts with 8 MiB chunks.
        assert_eq!(expected_first_chunk(2, Some(5 * mib), [5 * mib], 8 * mib), None);
        assert_eq!(
            expected_first_chunk(1, Some(5 * mib), [], 8 * mib),
            Some(0),
            "the first part starts the object"
        );
        assert_eq!(expected_first_chunk(1, Some(8 * mib), [], 8 * mib), Some(0));
    }
}
