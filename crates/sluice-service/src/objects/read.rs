//! The cache of opened containers.
//!
//! Opening a container (header, key unwrap, index) is done once and cached
//! by location; a location names one attempt's container and is never
//! rewritten, so a cached entry cannot go stale, and it is only reached
//! after the caller's tenant was checked against the object. Reads
//! themselves are in `download`: one ranged read per chunk they need.

use std::time::Duration;

use sluice_engine::Archive;

/// Opened containers by location (their header, unlocked cipher and
/// index; no open file), bounded by bytes and dropped when idle.
#[derive(Clone)]
pub struct OpenedCache {
    cache: moka::sync::Cache<String, Archive<()>>,
}

impl std::fmt::Debug for OpenedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedCache")
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

/// Idle entries are dropped after this.
const IDLE: Duration = Duration::from_secs(600);

impl OpenedCache {
    /// A cache of about `bytes` (0: nothing is kept).
    pub fn new(bytes: usize) -> OpenedCache {
        let cache = moka::sync::Cache::builder()
            .max_capacity(bytes as u64)
            .weigher(|_key: &String, a: &Archive<()>| {
                // Per chunk: a body length and an offset; plus the header.
                let chunks = a.index().body_lens.len().saturating_mul(12);
                u32::try_from(chunks.saturating_add(a.header().len() + 512)).unwrap_or(u32::MAX)
            })
            .time_to_idle(IDLE)
            .build();
        OpenedCache { cache }
    }

    /// The opened container at `location`, if cached.
    pub fn get(&self, location: &str) -> Option<Archive<()>> {
        self.cache.get(location)
    }

    /// Keeps `archive` (its source is not kept).
    pub fn insert<S>(&self, location: &str, archive: &Archive<S>) {
        self.cache.insert(location.to_string(), archive.with_source(()));
    }

    /// Forgets `location` (its object was deleted).
    pub fn remove(&self, location: &str) {
        self.cache.invalidate(location);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_engine::format::{KeyRing, RawKey, SlotSpec};
    use sluice_engine::{Control, EncodeOptions, Engine};

    #[test]
    fn the_cache_keeps_and_forgets_opened_containers() {
        let engine = Engine::new(Default::default()).unwrap();
        let key = RawKey::generate().unwrap();
        let opts = EncodeOptions {
            slots: vec![SlotSpec::RawKey(key.clone())],
            ..EncodeOptions::default()
        };
        let mut container = Vec::new();
        engine
            .encode(&b"abc"[..], &mut container, &opts, &Control::new())
            .unwrap();
        let archive = Archive::open(container, &KeyRing::new().with_raw_key(key)).unwrap();
        let cache = OpenedCache::new(1 << 20);
        cache.insert("objects/t/c.sluice", &archive);
        assert_eq!(cache.get("objects/t/c.sluice").unwrap().plaintext_len(), 3);
        cache.remove("objects/t/c.sluice");
        assert!(cache.get("objects/t/c.sluice").is_none());
    }
}
