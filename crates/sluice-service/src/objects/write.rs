//! Writing an upload's body as it arrives (`store_body`, for staged
//! uploads and resumable parts). Containers are written by the encoder in
//! `encode`; both go through a `Sink`.

use std::io;

use super::md5::Md5Chain;
use super::sink::Sink;
use crate::body::{Body, BodyReader};
use crate::tenants::limits::{BodyLimit, Refusal};
use crate::{Error, Result, Service};

/// Streams an upload's body to `location`, durably, holding no thread
/// while the client sends: a `Sink` (on a local store a temporary file
/// with overlapped write-back, written in short blocking calls, synced and
/// renamed; elsewhere the object store's multipart writer). Returns the
/// bytes received and, if `hash`, their BLAKE3 (small parts only: hashing
/// runs on the async worker), and with `md5_for` (a tenant id) their MD5,
/// computed on the CPU pool in that tenant's lane as they arrive. On any
/// failure nothing is left at `location` (a partial write is deleted or
/// left to the reaper).
pub(crate) async fn store_body(
    st: &Service,
    body: Body,
    location: &str,
    limit: &BodyLimit,
    hash: bool,
    md5_for: Option<&str>,
) -> Result<(u64, Option<[u8; 32]>, Option<[u8; 16]>)> {
    let pool = st.engine.pool();
    let lane = md5_for.map(|tenant| st.lanes.of(tenant, pool));
    let mut md5 = lane.map(|_| Md5Chain::new());
    let md5_failed = |e: sluice_engine::Error| Error::internal(format!("computing an MD5 failed: {e}"));
    let storage_failed = |e: io::Error| -> Error {
        // The store is failing, not the request.
        tracing::warn!(error = %e, "storing an upload failed");
        Refusal::StorageUnavailable {
            retry_after: st.config.store.breaker_open,
        }
        .into()
    };
    let mut reader = BodyReader::new(body, st.config.idle_body_timeout, limit);
    let mut hasher = blake3::Hasher::new();
    let stored = match Sink::open(&st.objects, location).await {
        Err(e) => Err(storage_failed(e)),
        Ok(mut sink) => {
            let fed: Result<()> = async {
                while let Some(data) = reader.next().await.map_err(Error::upload)? {
                    if hash {
                        hasher.update(&data);
                    }
                    sink.write(&data).await.map_err(storage_failed)?;
                    if let (Some(chain), Some(lane)) = (&mut md5, lane) {
                        chain.feed(pool, lane, data).await.map_err(md5_failed)?;
                    }
                }
                Ok(())
            }
            .await;
            // Accepted means durable: the stored copy is synced before this returns.
            match fed {
                Ok(()) => sink.finish().await.map_err(storage_failed),
                Err(e) => {
                    sink.abort().await;
                    Err(e)
                }
            }
        }
    };
    if let Err(e) = stored {
        // Whatever was written (a partial file, parts) is the reaper's.
        // (Through the store's guard: a store that fails this opens its
        // breaker, and the next uploads are refused at once.)
        let _ = st.objects.delete(location).await;
        return Err(e);
    }
    let md5 = match (md5, lane) {
        (Some(chain), Some(lane)) => Some(chain.finish(pool, lane).await.map_err(md5_failed)?),
        _ => None,
    };
    Ok((reader.received, hash.then(|| *hasher.finalize().as_bytes()), md5))
}
