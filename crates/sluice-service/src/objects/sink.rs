//! [`Sink`]: an object being written from async code, durable and under its
//! name only once [`Sink::finish`] returned.
//!
//! On a local store the bytes go to a temporary file beside the final name
//! through the engine's [`OutputFile`] (write-back overlapped with the
//! upload, so the final sync waits only for the tail), in short blocking
//! calls of about a MiB each; the sync and the rename are one more. No
//! call waits for the client: the bytes are already here. Other stores
//! get the object store's multipart writer, which is async.
//!
//! A sink dropped unfinished (the client went away mid-upload) removes its
//! temporary file, or aborts its multipart upload, in the background.

use std::io::{self, Write};
use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use sluice_engine::OutputFile;
use sluice_store::{ObjectWriter, Objects};
use tokio::io::AsyncWriteExt;

/// Bytes gathered before one blocking write call.
const WRITE_CALL: usize = 1 << 20;

/// An object being written.
pub(crate) struct Sink {
    inner: Option<Inner>,
}

enum Inner {
    Local {
        /// `None` only while a blocking call holds it.
        file: Option<OutputFile>,
        pending: BytesMut,
        temp: PathBuf,
        dest: PathBuf,
    },
    Remote(ObjectWriter),
}

impl Sink {
    /// Starts writing `location`.
    pub(crate) async fn open(objects: &Objects, location: &str) -> io::Result<Sink> {
        let inner = match objects.local_path(location) {
            Some(dest) => {
                let mut temp = dest.clone().into_os_string();
                temp.push(".partial");
                let temp = PathBuf::from(temp);
                let (d, t) = (dest.clone(), temp.clone());
                let file = sluice_store::blocking::spawn(move || -> io::Result<OutputFile> {
                    let dir = d
                        .parent()
                        .ok_or_else(|| io::Error::other("the object's path has no directory"))?;
                    std::fs::create_dir_all(dir)?;
                    Ok(OutputFile::new(std::fs::File::create(&t)?, true))
                })
                .await
                .map_err(io::Error::other)??;
                Inner::Local {
                    file: Some(file),
                    pending: BytesMut::new(),
                    temp,
                    dest,
                }
            }
            None => Inner::Remote(objects.writer(location)),
        };
        Ok(Sink { inner: Some(inner) })
    }

    /// Appends `data`.
    pub(crate) async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match &mut self.inner {
            Some(Inner::Local { file, pending, .. }) => {
                pending.extend_from_slice(data);
                if pending.len() >= WRITE_CALL {
                    let bytes = pending.split().freeze();
                    write_local(file, bytes).await?;
                }
                Ok(())
            }
            Some(Inner::Remote(w)) => w.write_all(data).await,
            None => Err(io::Error::other("the object is already finished")),
        }
    }

    /// Appends `head` then `body`, without copying `body` when it is large
    /// (a sealed chunk).
    pub(crate) async fn write_parts(&mut self, head: &[u8], body: Vec<u8>) -> io::Result<()> {
        match &mut self.inner {
            Some(Inner::Local { file, pending, .. }) if pending.len() + head.len() + body.len() >= WRITE_CALL => {
                pending.extend_from_slice(head);
                let first = pending.split().freeze();
                let mut f = file.take().ok_or_else(|| io::Error::other("a write failed before"))?;
                let (f, result) = sluice_store::blocking::spawn(move || {
                    let r = f.write_all(&first).and_then(|()| f.write_all(&body));
                    (f, r)
                })
                .await
                .map_err(io::Error::other)?;
                *file = Some(f);
                result
            }
            Some(Inner::Local { pending, .. }) => {
                pending.extend_from_slice(head);
                pending.extend_from_slice(&body);
                Ok(())
            }
            Some(Inner::Remote(w)) => {
                w.write_all(head).await?;
                w.write_all(&body).await
            }
            None => Err(io::Error::other("the object is already finished")),
        }
    }

    /// Makes the object durable and puts it under its name.
    pub(crate) async fn finish(mut self) -> io::Result<()> {
        match self.inner.take() {
            Some(Inner::Local {
                mut file,
                mut pending,
                temp,
                dest,
            }) => {
                let rest = pending.split().freeze();
                let result = async {
                    write_local(&mut file, rest).await?;
                    let mut f = file.take().ok_or_else(|| io::Error::other("a write failed before"))?;
                    let (t, d) = (temp.clone(), dest);
                    sluice_store::blocking::spawn(move || {
                        f.sync()?;
                        drop(f);
                        sluice_store::commit_file(&t, &d)
                    })
                    .await
                    .map_err(io::Error::other)?
                }
                .await;
                if result.is_err() {
                    remove_later(temp);
                }
                result
            }
            Some(Inner::Remote(mut w)) => w.shutdown().await,
            None => Err(io::Error::other("the object is already finished")),
        }
    }

    /// Abandons the object.
    pub(crate) async fn abort(mut self) {
        match self.inner.take() {
            Some(Inner::Local { temp, .. }) => remove_later(temp),
            Some(Inner::Remote(mut w)) => {
                let _ = w.abort().await;
            }
            None => {}
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        match self.inner.take() {
            Some(Inner::Local { temp, .. }) => remove_later(temp),
            // The writer aborts its own multipart upload when dropped.
            Some(Inner::Remote(_)) | None => {}
        }
    }
}

/// One blocking write of `bytes` to the file (taken out for the call and
/// put back after it).
async fn write_local(file: &mut Option<OutputFile>, bytes: Bytes) -> io::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut f = file.take().ok_or_else(|| io::Error::other("a write failed before"))?;
    let (f, result) = sluice_store::blocking::spawn(move || {
        let r = f.write_all(&bytes);
        (f, r)
    })
    .await
    .map_err(io::Error::other)?;
    *file = Some(f);
    result
}

fn remove_later(temp: PathBuf) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        let _enter = rt.enter();
        drop(sluice_store::blocking::spawn(move || std::fs::remove_file(temp)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_object_appears_only_when_finished_and_an_abandoned_one_never() {
        let dir = tempfile::tempdir().unwrap();
        let objects = Objects::local(dir.path(), crate::Config::defaults().unwrap().store).unwrap();
        let mut sink = Sink::open(&objects, "objects/t/a").await.unwrap();
        let big = vec![7u8; WRITE_CALL + 5];
        sink.write(&big).await.unwrap();
        sink.write(b"tail").await.unwrap();
        assert!(objects.size_of("objects/t/a").await.unwrap().is_none());
        sink.finish().await.unwrap();
        let (_, size) = objects.reader("objects/t/a").await.unwrap();
        assert_eq!(size, big.len() as u64 + 4);

        let mut dropped = Sink::open(&objects, "objects/t/b").await.unwrap();
        dropped.write(b"half").await.unwrap();
        drop(dropped);
        let partial = dir.path().join("objects/t/b.partial");
        for _ in 0..100 {
            if !partial.exists() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(!partial.exists(), "the temporary file is removed");
        assert!(objects.size_of("objects/t/b").await.unwrap().is_none());
    }
}
