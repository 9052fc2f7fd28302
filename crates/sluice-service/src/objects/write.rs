//! Writing objects: a job's container from the engine's blocking thread
//! ([`encode_into_container`]), and an upload's body as it arrives
//! (`store_body`, for staged uploads and resumable parts).
//!
//! On a local store the container is written straight to a temporary file
//! beside its final name through the engine's [`OutputFile`] (write-back
//! overlapped with the work, as `sluice process` does), synced, and renamed
//! into place; the final sync then waits only for the tail. Other stores get
//! the object store's multipart writer through a sync bridge.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use sluice_engine::{Control, EncodeOptions, EncodeSummary, Engine, OutputFile};
use sluice_store::Objects;
use tokio::runtime::Handle;
use tokio_util::io::SyncIoBridge;

use crate::body::{Body, BodyReader};
use crate::bridge;
use crate::tenants::limits::{BodyLimit, Refusal};
use crate::{Error, Result, Service};

/// Encodes `input` into a new container at `location` (call from a blocking
/// thread): durable and under its name on success, removed on failure.
pub fn encode_into_container(
    engine: &Engine,
    objects: &Objects,
    location: &str,
    input: impl io::Read + Send,
    opts: &EncodeOptions,
    ctl: &Control,
    rt: Handle,
) -> sluice_engine::Result<EncodeSummary> {
    let mut output = ContainerSink::open(objects, location, rt.clone()).map_err(sluice_engine::Error::Write)?;
    match engine.encode(input, &mut output, opts, ctl) {
        Ok(summary) => output.finish().map(|()| summary).map_err(sluice_engine::Error::Write),
        Err(e) => {
            output.abort(&rt);
            Err(e)
        }
    }
}

/// A container being written.
pub enum ContainerSink {
    /// A local file, renamed into place by [`ContainerSink::finish`].
    Local {
        /// The temporary file.
        out: BufWriter<OutputFile>,
        /// Its path.
        temp: PathBuf,
        /// The final path.
        dest: PathBuf,
    },
    /// An object store's multipart writer.
    Remote(SyncIoBridge<sluice_store::ObjectWriter>),
}

impl ContainerSink {
    /// Opens a sink for `location` (call from the blocking thread).
    pub fn open(objects: &Objects, location: &str, rt: Handle) -> io::Result<ContainerSink> {
        match objects.local_path(location) {
            Some(dest) => {
                let dir = dest
                    .parent()
                    .ok_or_else(|| io::Error::other("container path has no directory"))?;
                std::fs::create_dir_all(dir)?;
                let mut temp = dest.clone().into_os_string();
                temp.push(".partial");
                let temp = PathBuf::from(temp);
                let file = File::create(&temp)?;
                Ok(ContainerSink::Local {
                    out: BufWriter::with_capacity(1 << 20, OutputFile::new(file, true)),
                    temp,
                    dest,
                })
            }
            None => Ok(ContainerSink::Remote(SyncIoBridge::new_with_handle(
                objects.writer(location),
                rt,
            ))),
        }
    }

    /// Completes the container: durable and under its name.
    pub fn finish(self) -> io::Result<()> {
        match self {
            ContainerSink::Local { out, temp, dest } => {
                let mut file = out.into_inner().map_err(|e| e.into_error())?;
                file.sync()?;
                drop(file);
                sluice_store::commit_file(&temp, &dest)
            }
            ContainerSink::Remote(mut w) => w.shutdown(),
        }
    }

    /// Abandons the container.
    pub fn abort(self, rt: &Handle) {
        match self {
            ContainerSink::Local { temp, .. } => {
                let _ = std::fs::remove_file(temp);
            }
            ContainerSink::Remote(w) => {
                let mut w = w.into_inner();
                let _ = rt.block_on(w.abort());
            }
        }
    }
}

impl Write for ContainerSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ContainerSink::Local { out, .. } => out.write(buf),
            ContainerSink::Remote(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            ContainerSink::Local { out, .. } => out.flush(),
            ContainerSink::Remote(w) => w.flush(),
        }
    }
}

/// Streams an upload's body to `location`, durably, through a blocking
/// writer: on a local store a temporary file with overlapped write-back,
/// synced and renamed (so the final fsync is short and does not stall
/// other requests' commits); elsewhere the object store's multipart writer.
/// Returns the bytes received and, if `hash`, their BLAKE3 (small parts
/// only: hashing runs on the async worker). On any failure nothing is left
/// at `location` (a partial write is deleted or left to the reaper).
pub(crate) async fn store_body(
    st: &Service,
    body: Body,
    location: &str,
    limit: &BodyLimit,
    hash: bool,
) -> Result<(u64, Option<[u8; 32]>)> {
    let (tx, input) = bridge::reader_channel();
    let objects = st.objects.clone();
    let target = location.to_string();
    let rt = Handle::current();
    let writing = sluice_store::blocking::spawn(move || -> io::Result<()> {
        let mut input = input;
        let mut sink = ContainerSink::open(&objects, &target, rt.clone())?;
        match io::copy(&mut input, &mut sink) {
            Ok(_) => sink.finish(),
            Err(e) => {
                sink.abort(&rt);
                Err(e)
            }
        }
    });
    let mut reader = BodyReader::new(body, st.config.idle_body_timeout, limit);
    let mut hasher = blake3::Hasher::new();
    let fed: std::result::Result<(), crate::JobError> = async {
        while let Some(data) = reader.next().await? {
            if hash {
                hasher.update(&data);
            }
            // Fails only once the writer stopped: its error is reported below.
            if tx.send(bridge::Msg::Data(data)).await.is_err() {
                break;
            }
        }
        Ok(())
    }
    .await;
    let _ = match &fed {
        Ok(()) => tx.send(bridge::Msg::End).await,
        Err(e) => tx.send(bridge::Msg::Fail(e.detail().to_string())).await,
    };
    drop(tx);
    let written = writing.await.map_err(Error::internal)?;
    // Accepted means durable: the stored copy was synced before this.
    let stored = match (fed, written) {
        (Err(e), _) => Err(Error::upload(e)),
        (Ok(()), Err(e)) => {
            // The store is failing, not the request.
            tracing::warn!(error = %e, "storing an upload failed");
            Err(Refusal::StorageUnavailable {
                retry_after: st.config.store.breaker_open,
            }
            .into())
        }
        (Ok(()), Ok(())) => Ok(()),
    };
    if let Err(e) = stored {
        // Whatever was written (a partial file, parts) is the reaper's.
        let _ = st.objects.delete(location).await;
        return Err(e);
    }
    Ok((reader.received, hash.then(|| *hasher.finalize().as_bytes())))
}
