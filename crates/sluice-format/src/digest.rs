//! The whole-file BLAKE3 digest, computed in parallel from per-chunk subtree
//! chaining values. The result equals `blake3::hash` of the whole plaintext
//! (what `b3sum` prints), because every chunk is a power-of-two number of
//! BLAKE3 chunks long and so an aligned subtree of BLAKE3's tree.

use blake3::hazmat::{merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode};

/// Length of a BLAKE3 digest.
pub const DIGEST_LEN: usize = 32;

/// The hash of one chunk, computed by a worker.
#[derive(Debug, Clone, Copy)]
pub struct ChunkHash {
    /// The chunk's subtree chaining value.
    cv: ChainingValue,
    /// For chunk 0 only: the root hash, used when the file is a single chunk.
    root: Option<[u8; DIGEST_LEN]>,
}

impl ChunkHash {
    /// The stored form: the chaining value, then the root hash if it has
    /// one (chunk 0).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = self.cv.to_vec();
        if let Some(root) = &self.root {
            b.extend_from_slice(root);
        }
        b
    }

    /// Reads [`ChunkHash::to_bytes`]'s form back; `None` if it is not one.
    pub fn from_bytes(b: &[u8]) -> Option<ChunkHash> {
        let cv: ChainingValue = b.get(..DIGEST_LEN)?.try_into().ok()?;
        let root = match b.len() {
            DIGEST_LEN => None,
            n if n == 2 * DIGEST_LEN => Some(b.get(DIGEST_LEN..)?.try_into().ok()?),
            _ => return None,
        };
        Some(ChunkHash { cv, root })
    }
}

/// Hashes chunk `index` of a file cut into `chunk_size`-byte chunks.
pub fn hash_chunk(index: u64, chunk_size: usize, data: &[u8]) -> ChunkHash {
    let mut h = blake3::Hasher::new();
    if index > 0 {
        h.set_input_offset(index.saturating_mul(chunk_size as u64));
    }
    h.update(data);
    // Only chunk 0 can be the whole file; the extra finalisation is cheap.
    let root = (index == 0).then(|| *h.finalize().as_bytes());
    ChunkHash {
        cv: h.finalize_non_root(),
        root,
    }
}

/// Merges chunk hashes, pushed in order, into the whole-file digest.
///
/// Merging is lazy, as in BLAKE3's own incremental hasher: a subtree is only
/// merged once it is known not to be the right edge of the tree, because the
/// root must be finalised differently.
#[derive(Debug, Default)]
pub struct DigestBuilder {
    stack: Vec<ChainingValue>,
    count: u64,
    first_root: Option<[u8; DIGEST_LEN]>,
}

impl DigestBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the hash of the next chunk.
    pub fn push(&mut self, h: ChunkHash) {
        while self.stack.len() as u32 > self.count.count_ones() {
            self.merge_top();
        }
        if self.count == 0 {
            self.first_root = h.root;
        }
        self.stack.push(h.cv);
        self.count += 1;
    }

    fn merge_top(&mut self) {
        if let (Some(right), Some(left)) = (self.stack.pop(), self.stack.pop()) {
            self.stack.push(merge_subtrees_non_root(&left, &right, Mode::Hash));
        }
    }

    /// The digest of everything pushed.
    pub fn finish(mut self) -> [u8; DIGEST_LEN] {
        match self.count {
            0 => *blake3::hash(b"").as_bytes(),
            1 => self.first_root.unwrap_or([0; DIGEST_LEN]),
            _ => {
                while self.stack.len() > 2 {
                    self.merge_top();
                }
                match (self.stack.first(), self.stack.get(1)) {
                    (Some(l), Some(r)) => *merge_subtrees_root(l, r, Mode::Hash).as_bytes(),
                    _ => [0; DIGEST_LEN],
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn chunk_hashes_keep_their_value_when_stored() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let mut direct = DigestBuilder::new();
        let mut stored = DigestBuilder::new();
        for (i, c) in data.chunks(4096).enumerate() {
            let h = hash_chunk(i as u64, 4096, c);
            direct.push(h);
            let b = h.to_bytes();
            assert_eq!(b.len(), if i == 0 { 64 } else { 32 });
            stored.push(ChunkHash::from_bytes(&b).unwrap());
        }
        assert_eq!(stored.finish(), direct.finish());
        assert!(ChunkHash::from_bytes(&[0; 33]).is_none());
        assert!(ChunkHash::from_bytes(&[]).is_none());
    }

    fn digest_by_chunks(data: &[u8], chunk: usize) -> [u8; 32] {
        let mut b = DigestBuilder::new();
        for (i, c) in data.chunks(chunk).enumerate() {
            b.push(hash_chunk(i as u64, chunk, c));
        }
        b.finish()
    }

    #[test]
    fn equals_plain_blake3_at_edges() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 253) as u8).collect();
        for chunk in [1024usize, 4096, 65536] {
            for len in [
                0,
                1,
                chunk - 1,
                chunk,
                chunk + 1,
                2 * chunk,
                3 * chunk + 7,
                7 * chunk,
                8 * chunk,
                9 * chunk - 1,
            ] {
                let len = len.min(data.len());
                assert_eq!(
                    digest_by_chunks(&data[..len], chunk),
                    *blake3::hash(&data[..len]).as_bytes(),
                    "chunk {chunk} len {len}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn equals_plain_blake3(len in 0usize..300_000, log2 in 10u32..16) {
            let data: Vec<u8> = (0..len).map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[1]).collect();
            prop_assert_eq!(digest_by_chunks(&data, 1 << log2), *blake3::hash(&data).as_bytes());
        }
    }
}
