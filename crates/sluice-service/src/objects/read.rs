//! Reading objects: stored containers as the engine's [`ReadAt`] sources,
//! and the cache of opened ones.
//!
//! A range request reads only the chunks it needs, one read per chunk: on
//! the local store a `pread` of the container file, elsewhere one ranged GET
//! (called from a blocking thread, driven by the runtime's handle). Opening
//! a container (header, key unwrap, index) is done once and cached by
//! location; a location names one attempt's container and is never
//! rewritten, so a cached entry cannot go stale, and it is only reached
//! after the caller's tenant was checked against the object.

use std::fs::File;
use std::io;
use std::time::Duration;

use sluice_engine::{Archive, ReadAt};
use sluice_store::Objects;
use tokio::runtime::Handle;

/// A stored container read by offset.
pub enum ContainerSource {
    /// A file of the local store.
    Local(File),
    /// An object in a remote store.
    Remote {
        /// The store.
        objects: Objects,
        /// The object.
        location: String,
        /// Its size.
        size: u64,
        /// The runtime that drives the requests.
        rt: Handle,
    },
}

impl ContainerSource {
    /// Opens `location`; blocking (call it off the async workers).
    pub fn open(objects: &Objects, location: &str, rt: Handle) -> io::Result<ContainerSource> {
        if let Some(path) = objects.local_path(location) {
            return File::open(path).map(ContainerSource::Local);
        }
        let size = rt
            .block_on(objects.size_of(location))
            .map_err(to_io)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{location} not found")))?;
        Ok(ContainerSource::Remote {
            objects: objects.clone(),
            location: location.to_string(),
            size,
            rt,
        })
    }
}

fn to_io(e: sluice_store::Error) -> io::Error {
    match e {
        sluice_store::Error::Objects(sluice_store::BlobError::NotFound(_)) | sluice_store::Error::NotFound(_) => {
            io::Error::new(io::ErrorKind::NotFound, e)
        }
        other => io::Error::other(other),
    }
}

impl ReadAt for ContainerSource {
    fn size(&self) -> io::Result<u64> {
        match self {
            ContainerSource::Local(f) => f.size(),
            ContainerSource::Remote { size, .. } => Ok(*size),
        }
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        match self {
            ContainerSource::Local(f) => ReadAt::read_exact_at(f, buf, offset),
            ContainerSource::Remote {
                objects,
                location,
                size,
                rt,
            } => {
                let end = offset
                    .checked_add(buf.len() as u64)
                    .filter(|end| end <= size)
                    .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
                let bytes = rt.block_on(objects.read_range(location, offset..end)).map_err(to_io)?;
                if bytes.len() != buf.len() {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                buf.copy_from_slice(&bytes);
                Ok(())
            }
        }
    }
}

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
    use object_store::memory::InMemory;
    use object_store::path::Path;
    use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
    use sluice_engine::format::{KeyRing, RawKey, SlotSpec};
    use sluice_engine::{Control, EncodeOptions, Engine, EngineConfig};

    #[test]
    fn remote_containers_serve_ranges_through_ranged_gets_and_the_cache() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let engine = Engine::new(EngineConfig {
            threads: Some(2),
            ..Default::default()
        })
        .unwrap();
        let key = RawKey::generate().unwrap();
        let opts = EncodeOptions {
            slots: vec![SlotSpec::RawKey(key.clone())],
            params: sluice_engine::format::FileParams {
                chunk_size: sluice_engine::format::ChunkSize::from_log2(16).unwrap(),
                ..Default::default()
            },
            ..EncodeOptions::default()
        };
        let original: Vec<u8> = (0..1_000_003u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut container = Vec::new();
        engine
            .encode(&original[..], &mut container, &opts, &Control::new())
            .unwrap();
        let store: std::sync::Arc<dyn ObjectStore> = std::sync::Arc::new(InMemory::new());
        let objects = Objects::new(std::sync::Arc::clone(&store), crate::Config::defaults().unwrap().store);
        rt.block_on(store.put(&Path::from("objects/t/c.sluice"), PutPayload::from(container)))
            .unwrap();

        let source = ContainerSource::open(&objects, "objects/t/c.sluice", rt.handle().clone()).unwrap();
        assert!(matches!(source, ContainerSource::Remote { .. }));
        let keys = KeyRing::new().with_raw_key(key);
        let archive = Archive::open(source, &keys).unwrap();
        let cache = OpenedCache::new(1 << 20);
        cache.insert("objects/t/c.sluice", &archive);
        let again = cache.get("objects/t/c.sluice").unwrap();
        let source = ContainerSource::open(&objects, "objects/t/c.sluice", rt.handle().clone()).unwrap();
        let mut out = Vec::new();
        again
            .with_source(source)
            .read_range(&engine, 70_000..300_001, &mut out, &Control::new())
            .unwrap();
        assert_eq!(out, &original[70_000..300_001]);
        cache.remove("objects/t/c.sluice");
        assert!(cache.get("objects/t/c.sluice").is_none());
        assert!(ContainerSource::open(&objects, "objects/t/missing", rt.handle().clone()).is_err());
    }
}
