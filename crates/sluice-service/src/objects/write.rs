//! Writing an upload's body as it arrives (`store_body`, for staged
//! uploads and resumable parts). Containers are written by the encoder in
//! `encode`; both go through a `Sink`.

use std::io;

use super::sink::Sink;
use crate::body::{Body, BodyReader};
use crate::tenants::limits::{BodyLimit, Refusal};
use crate::{Error, Result, Service};

/// Streams an upload's body to `location`, durably, holding no thread
/// while the client sends: a `Sink` (on a local store a temporary file
/// with overlapped write-back, written in short blocking calls, synced and
/// renamed; elsewhere the object store's multipart writer). Returns the
/// bytes received and, if `hash`, their BLAKE3 (small parts only: hashing
/// runs on the async worker). On any failure nothing is left at
/// `location` (a partial write is deleted or left to the reaper).
pub(crate) async fn store_body(
    st: &Service,
    body: Body,
    location: &str,
    limit: &BodyLimit,
    hash: bool,
) -> Result<(u64, Option<[u8; 32]>)> {
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
    Ok((reader.received, hash.then(|| *hasher.finalize().as_bytes())))
}
