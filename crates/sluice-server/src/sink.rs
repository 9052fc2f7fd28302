//! Where a job's engine run writes its container, from its blocking thread.
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
    Remote(SyncIoBridge<object_store::buffered::BufWriter>),
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
                std::fs::rename(&temp, &dest)?;
                if let Some(dir) = dest.parent() {
                    File::open(dir)?.sync_all()?;
                }
                Ok(())
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
