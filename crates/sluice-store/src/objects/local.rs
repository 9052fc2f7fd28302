//! [`LocalDir`]: the default backend, a local directory. Each call is one
//! short blocking file operation on the blocking pool, through the
//! backend's [`Guard`]; what it writes is synced (file and directory)
//! before the call returns, so a completed write survives a power cut.

use std::fs::{self, File};
use std::io::{self, Write};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::UNIX_EPOCH;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt, TryStreamExt};
use tokio::io::AsyncWrite;

use super::blob::{BlobError, BlobResult, BlobStore, ByteStream, Listed, ObjectReader, ObjectWrite, ObjectWriter};
use super::guard::Guard;
use super::STREAM_BUFFER;

/// Directories this deep or deeper (`uploads/{tenant}/{upload}`) are
/// removed when their last file is deleted; shallower ones stay, so a
/// writer creating a file in a tenant's directory never races a cleanup.
const CLEANUP_DEPTH: usize = 3;

/// A backend in a local directory.
#[derive(Debug)]
pub struct LocalDir {
    root: PathBuf,
    guard: Arc<Guard>,
}

impl LocalDir {
    /// The directory `root` (created if missing), its calls guarded by
    /// `guard`.
    pub fn new(root: &Path, guard: Arc<Guard>) -> io::Result<LocalDir> {
        fs::create_dir_all(root)?;
        Ok(LocalDir {
            root: root.to_path_buf(),
            guard,
        })
    }

    /// The file behind `location` (a relative name without `..`).
    fn path(&self, location: &str) -> BlobResult<PathBuf> {
        let relative = Path::new(location.trim_end_matches('/'));
        let plain = relative.components().all(|c| matches!(c, Component::Normal(_)));
        if !plain {
            return Err(BlobError::rejected(format!(
                "{location:?} is not a plain relative name"
            )));
        }
        Ok(self.root.join(relative))
    }
}

/// Runs a short file operation on the blocking pool.
async fn blocking<T: Send + 'static>(
    location: String,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> BlobResult<T> {
    match crate::blocking::spawn(f).await {
        Ok(result) => result.map_err(|e| BlobError::io(&location, e)),
        Err(e) => Err(BlobError::failing(e)),
    }
}

/// Syncs the directory holding `path` (makes a create or rename in it durable).
fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// Puts the synced file `temp` in place as `dest` for good: renames it over
/// `dest`, then syncs their directory so that the rename survives a power
/// cut. Every durable write to a local directory ends with this.
pub fn commit_file(temp: &Path, dest: &Path) -> io::Result<()> {
    fs::rename(temp, dest)?;
    sync_parent(dest)
}

/// A temporary name beside `path`, unique within this process.
fn temporary(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut name = path.as_os_str().to_owned();
    name.push(format!(
        ".{}-{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    PathBuf::from(name)
}

fn write_durably(path: &Path, data: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let temp = temporary(path);
    let written = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(data)?;
        file.sync_all()?;
        drop(file);
        commit_file(&temp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

fn size_of(path: &Path) -> io::Result<u64> {
    let meta = fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::ErrorKind::NotFound.into());
    }
    Ok(meta.len())
}

fn read_range(path: &Path, range: Range<u64>) -> io::Result<Bytes> {
    use std::os::unix::fs::FileExt;
    let file = File::open(path)?;
    let len = usize::try_from(range.end.saturating_sub(range.start)).map_err(io::Error::other)?;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, range.start)?;
    Ok(buf.into())
}

/// Files listed per trip to the blocking pool.
const LIST_BATCH: usize = 256;

/// A walk of the files under a directory, depth first, a batch at a time:
/// it holds only the directories open on the way down, so listing a store
/// of millions of files costs the memory of one batch.
struct Walk {
    root: PathBuf,
    /// The directory to start from, until the first batch opens it.
    start: Option<PathBuf>,
    open: Vec<fs::ReadDir>,
}

impl Walk {
    fn new(root: PathBuf, dir: PathBuf) -> Walk {
        Walk {
            root,
            start: Some(dir),
            open: Vec::new(),
        }
    }

    /// The next files, up to `max`; fewer only at the end of the walk.
    fn next_batch(&mut self, max: usize) -> io::Result<Vec<Listed>> {
        if let Some(dir) = self.start.take() {
            self.descend(&dir)?;
        }
        let mut out = Vec::new();
        while out.len() < max {
            let Some(dir) = self.open.last_mut() else { break };
            let Some(entry) = dir.next() else {
                self.open.pop();
                continue;
            };
            if let Some(listed) = self.visit(entry?)? {
                out.push(listed);
            }
        }
        Ok(out)
    }

    /// Opens `dir` to walk next (gone meanwhile: nothing to walk).
    fn descend(&mut self, dir: &Path) -> io::Result<()> {
        match fs::read_dir(dir) {
            Ok(entries) => {
                self.open.push(entries);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The file `entry` names, if it is one that is still there; a
    /// directory is descended into.
    fn visit(&mut self, entry: fs::DirEntry) -> io::Result<Option<Listed>> {
        let path = entry.path();
        let kind = match entry.file_type() {
            Ok(kind) => kind,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if kind.is_dir() {
            self.descend(&path)?;
            return Ok(None);
        }
        if !kind.is_file() {
            return Ok(None);
        }
        // Deleted meanwhile: not listed.
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(location) = path
            .strip_prefix(&self.root)
            .ok()
            .and_then(|p| p.to_str())
            .map(|p| p.replace(std::path::MAIN_SEPARATOR, "/"))
        else {
            return Ok(None); // not a name the service made
        };
        let modified_ms = meta
            .modified()?
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Ok(Some(Listed {
            location,
            size: meta.len(),
            modified_ms,
        }))
    }
}

/// Removes the empty directories above a deleted file, up to
/// [`CLEANUP_DEPTH`] below `root`.
fn remove_empty_parents(root: &Path, path: &Path) {
    let mut dir = path.parent();
    while let Some(d) = dir {
        let depth = d.strip_prefix(root).map(|r| r.components().count()).unwrap_or(0);
        if depth < CLEANUP_DEPTH || fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

#[async_trait]
impl BlobStore for LocalDir {
    async fn put(&self, location: &str, data: Bytes) -> BlobResult<()> {
        let path = self.path(location)?;
        self.guard
            .call("put", || {
                let (path, data) = (path.clone(), data.clone());
                blocking(location.to_string(), move || write_durably(&path, &data))
            })
            .await
    }

    async fn size(&self, location: &str) -> BlobResult<u64> {
        let path = self.path(location)?;
        self.guard
            .call("head", || {
                let path = path.clone();
                blocking(location.to_string(), move || size_of(&path))
            })
            .await
    }

    async fn read(&self, location: &str) -> BlobResult<(ObjectReader, u64)> {
        let (file, size) = self.open(location).await?;
        let reader = tokio::io::BufReader::with_capacity(STREAM_BUFFER, file);
        Ok((Box::pin(reader), size))
    }

    async fn stream(&self, location: &str) -> BlobResult<(ByteStream, u64)> {
        let (file, size) = self.open(location).await?;
        let stream = tokio_util::io::ReaderStream::with_capacity(file, STREAM_BUFFER);
        Ok((stream.boxed(), size))
    }

    async fn read_range(&self, location: &str, range: Range<u64>) -> BlobResult<Bytes> {
        let path = self.path(location)?;
        let got = self
            .guard
            .call("get_range", || {
                let (path, range) = (path.clone(), range.clone());
                blocking(location.to_string(), move || read_range(&path, range))
            })
            .await;
        match got {
            // Past the end: a definite answer, not a failing disk.
            Err(BlobError::Failing(e))
                if e.downcast_ref::<io::Error>()
                    .is_some_and(|e| e.kind() == io::ErrorKind::UnexpectedEof) =>
            {
                Err(BlobError::Rejected(e))
            }
            other => other,
        }
    }

    fn list(&self, prefix: &str) -> BoxStream<'static, BlobResult<Listed>> {
        let dir = if prefix.trim_matches('/').is_empty() {
            self.root.clone()
        } else {
            match self.path(prefix) {
                Ok(dir) => dir,
                Err(e) => return futures_util::stream::once(async { Err(e) }).boxed(),
            }
        };
        let guard = Arc::clone(&self.guard);
        let prefix = prefix.to_string();
        let walk = Walk::new(self.root.clone(), dir);
        // Each batch is one guarded call (a walk cannot be retried from the
        // middle, so not retried).
        futures_util::stream::try_unfold(Some(walk), move |walk| {
            let (guard, prefix) = (Arc::clone(&guard), prefix.clone());
            async move {
                let Some(mut walk) = walk else { return Ok(None) };
                let (walk, batch) = guard
                    .once(
                        "list",
                        blocking(prefix, move || {
                            let batch = walk.next_batch(LIST_BATCH)?;
                            Ok((walk, batch))
                        }),
                    )
                    .await?;
                let rest = (batch.len() == LIST_BATCH).then_some(walk);
                Ok(Some((futures_util::stream::iter(batch.into_iter().map(Ok)), rest)))
            }
        })
        .try_flatten()
        .boxed()
    }

    async fn delete(&self, location: &str) -> BlobResult<()> {
        let path = self.path(location)?;
        let root = self.root.clone();
        self.guard
            .call("delete", || {
                let (root, path) = (root.clone(), path.clone());
                blocking(location.to_string(), move || {
                    fs::remove_file(&path)?;
                    remove_empty_parents(&root, &path);
                    Ok(())
                })
            })
            .await
    }

    async fn rename(&self, from: &str, to: &str) -> BlobResult<()> {
        let (source, dest) = (self.path(from)?, self.path(to)?);
        self.guard
            .call("rename", || {
                let (source, dest) = (source.clone(), dest.clone());
                blocking(from.to_string(), move || {
                    if let Some(dir) = dest.parent() {
                        fs::create_dir_all(dir)?;
                    }
                    fs::rename(&source, &dest)?;
                    sync_parent(&dest)
                })
            })
            .await
    }

    fn writer(&self, location: &str) -> ObjectWriter {
        Box::new(match self.path(location) {
            Ok(dest) => LocalWriter::new(dest),
            Err(e) => LocalWriter::failed(e.to_string()),
        })
    }
}

impl LocalDir {
    async fn open(&self, location: &str) -> BlobResult<(tokio::fs::File, u64)> {
        let path = self.path(location)?;
        self.guard
            .call("get", || {
                let path = path.clone();
                async move {
                    let file = tokio::fs::File::open(&path).await?;
                    let meta = file.metadata().await?;
                    if !meta.is_file() {
                        return Err(io::ErrorKind::NotFound.into());
                    }
                    Ok((file, meta.len()))
                }
                .map(|r: io::Result<_>| r.map_err(|e| BlobError::io(location, e)))
            })
            .await
    }
}

/// A new file written beside its name and renamed into place, synced,
/// when shut down.
struct LocalWriter {
    dest: PathBuf,
    temp: PathBuf,
    file: Option<tokio::fs::File>,
    opening: Option<BoxFuture<'static, io::Result<tokio::fs::File>>>,
    finishing: Option<BoxFuture<'static, io::Result<()>>>,
    /// Why this writer cannot write (a bad name).
    broken: Option<String>,
    done: bool,
}

impl LocalWriter {
    fn new(dest: PathBuf) -> LocalWriter {
        let mut temp = dest.clone().into_os_string();
        temp.push(".partial");
        LocalWriter {
            dest,
            temp: PathBuf::from(temp),
            file: None,
            opening: None,
            finishing: None,
            broken: None,
            done: false,
        }
    }

    fn failed(why: String) -> LocalWriter {
        let mut writer = LocalWriter::new(PathBuf::new());
        writer.broken = Some(why);
        writer
    }

    /// The open temporary file (created on first use).
    fn poll_file(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&mut tokio::fs::File>> {
        if let Some(why) = &self.broken {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidInput, why.clone())));
        }
        if self.file.is_none() {
            let opening = self.opening.get_or_insert_with(|| {
                let temp = self.temp.clone();
                async move {
                    if let Some(dir) = temp.parent() {
                        tokio::fs::create_dir_all(dir).await?;
                    }
                    tokio::fs::File::create(&temp).await
                }
                .boxed()
            });
            let file = ready!(opening.as_mut().poll(cx))?;
            self.opening = None;
            self.file = Some(file);
        }
        match self.file.as_mut() {
            Some(file) => Poll::Ready(Ok(file)),
            None => Poll::Ready(Err(io::Error::other("the writer is finished"))),
        }
    }
}

impl AsyncWrite for LocalWriter {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let file = ready!(self.poll_file(cx))?;
        Pin::new(file).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.file.as_mut() {
            Some(file) => Pin::new(file).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        if self.finishing.is_none() {
            let file = ready!(self.poll_file(cx))?;
            ready!(Pin::new(&mut *file).poll_flush(cx))?;
            let Some(file) = self.file.take() else {
                return Poll::Ready(Err(io::Error::other("the writer is finished")));
            };
            let file = file
                .try_into_std()
                .map_err(|_| io::Error::other("a write is still in flight"))?;
            let (temp, dest) = (self.temp.clone(), self.dest.clone());
            self.finishing = Some(
                crate::blocking::spawn(move || {
                    file.sync_all()?;
                    drop(file);
                    commit_file(&temp, &dest)
                })
                .map(|joined| joined.map_err(io::Error::other).and_then(|r| r))
                .boxed(),
            );
        }
        let finishing = self.finishing.as_mut().map(|f| f.as_mut().poll(cx));
        match finishing {
            Some(Poll::Pending) => Poll::Pending,
            Some(Poll::Ready(result)) => {
                self.finishing = None;
                self.done = result.is_ok();
                if result.is_err() {
                    self.discard();
                }
                Poll::Ready(result)
            }
            None => Poll::Ready(Err(io::Error::other("the writer is finished"))),
        }
    }
}

impl LocalWriter {
    /// Removes the temporary file (in the background: a drop cannot wait).
    fn discard(&mut self) {
        self.file = None;
        self.opening = None;
        if self.broken.is_some() {
            return;
        }
        let temp = self.temp.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let _enter = rt.enter();
            crate::blocking::spawn(move || fs::remove_file(temp));
        }
    }
}

#[async_trait]
impl ObjectWrite for LocalWriter {
    async fn abort(&mut self) -> BlobResult<()> {
        self.finishing = None;
        self.file = None;
        self.opening = None;
        self.done = true;
        match tokio::fs::remove_file(&self.temp).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(BlobError::io(&self.temp.to_string_lossy(), e)),
            _ => Ok(()),
        }
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        if !self.done {
            self.discard();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::guard::{BreakerState, Resilience};
    use futures_util::TryStreamExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn dir() -> (tempfile::TempDir, LocalDir) {
        let tmp = tempfile::tempdir().unwrap();
        let settings = Resilience {
            retries: 1,
            breaker_failures: 3,
            ..Resilience::default()
        };
        let local = LocalDir::new(tmp.path(), Arc::new(Guard::new("test", settings))).unwrap();
        (tmp, local)
    }

    #[tokio::test]
    async fn what_is_put_reads_back_whole_by_stream_and_by_range() {
        let (_tmp, local) = dir();
        local.put("a/b/c", Bytes::from_static(b"hello world")).await.unwrap();
        assert_eq!(local.size("a/b/c").await.unwrap(), 11);
        let (mut reader, size) = local.read("a/b/c").await.unwrap();
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.unwrap();
        assert_eq!((got.as_slice(), size), (&b"hello world"[..], 11));
        let (stream, _) = local.stream("a/b/c").await.unwrap();
        let chunks: Vec<Bytes> = stream.try_collect().await.unwrap();
        assert_eq!(chunks.concat(), b"hello world");
        assert_eq!(&local.read_range("a/b/c", 6..11).await.unwrap()[..], b"world");
        assert!(matches!(
            local.read_range("a/b/c", 6..12).await,
            Err(BlobError::Rejected(_))
        ));
        assert!(
            matches!(local.size("a/b").await, Err(BlobError::NotFound(_))),
            "a directory is no object"
        );
        assert!(matches!(local.read("nope").await, Err(BlobError::NotFound(_))));
        assert!(local.put("../escape", Bytes::new()).await.is_err());
        assert!(local.put("/abs", Bytes::new()).await.is_err());
    }

    #[tokio::test]
    async fn listing_finds_every_file_under_a_prefix_with_size_and_age() {
        let (_tmp, local) = dir();
        for name in [
            "objects/t/1.sluice",
            "objects/t/2.sluice",
            "objects/u/3.sluice",
            "staging/t/j",
        ] {
            local.put(name, Bytes::from_static(b"xyz")).await.unwrap();
        }
        let mut listed: Vec<Listed> = local.list("objects").try_collect().await.unwrap();
        listed.sort();
        let names: Vec<&str> = listed.iter().map(|l| l.location.as_str()).collect();
        assert_eq!(
            names,
            ["objects/t/1.sluice", "objects/t/2.sluice", "objects/u/3.sluice"]
        );
        assert!(listed.iter().all(|l| l.size == 3));
        let now = crate::now_ms();
        assert!(listed.iter().all(|l| (now - l.modified_ms).abs() < 60_000));
        assert!(local.list("missing/").try_collect::<Vec<_>>().await.unwrap().is_empty());
        assert_eq!(local.list("").try_collect::<Vec<_>>().await.unwrap().len(), 4);
    }

    #[tokio::test]
    async fn a_listing_longer_than_a_batch_finds_every_file_once() {
        let (_tmp, local) = dir();
        let mut want = Vec::new();
        for i in 0..LIST_BATCH * 2 + 3 {
            let name = format!("objects/t{}/{i}.sluice", i % 3);
            local.put(&name, Bytes::from_static(b"x")).await.unwrap();
            want.push(name);
        }
        let mut got: Vec<String> = local
            .list("objects")
            .map_ok(|l| l.location)
            .try_collect()
            .await
            .unwrap();
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn deletes_and_renames_clean_up_and_replace() {
        let (tmp, local) = dir();
        local
            .put("uploads/t/u/00000000", Bytes::from_static(b"a"))
            .await
            .unwrap();
        local.put("uploads/t/u/x", Bytes::from_static(b"b")).await.unwrap();
        local.rename("uploads/t/u/x", "uploads/t/u/00000000").await.unwrap();
        assert_eq!(&local.read_range("uploads/t/u/00000000", 0..1).await.unwrap()[..], b"b");
        assert!(matches!(
            local.rename("uploads/t/u/x", "y").await,
            Err(BlobError::NotFound(_))
        ));
        local.delete("uploads/t/u/00000000").await.unwrap();
        assert!(
            !tmp.path().join("uploads/t/u").exists(),
            "an upload's empty directory goes"
        );
        assert!(tmp.path().join("uploads/t").exists(), "a tenant's stays");
        assert!(matches!(
            local.delete("uploads/t/u/00000000").await,
            Err(BlobError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn a_writer_shows_its_object_only_once_shut_down_and_leaves_nothing_when_aborted() {
        let (tmp, local) = dir();
        let mut w = local.writer("objects/t/j-1.sluice");
        w.write_all(&vec![7u8; 3 << 20]).await.unwrap();
        assert!(matches!(
            local.size("objects/t/j-1.sluice").await,
            Err(BlobError::NotFound(_))
        ));
        w.shutdown().await.unwrap();
        assert_eq!(local.size("objects/t/j-1.sluice").await.unwrap(), 3 << 20);

        let mut w = local.writer("objects/t/j-2.sluice");
        w.write_all(b"half").await.unwrap();
        w.abort().await.unwrap();
        drop(w);
        let left: Vec<_> = std::fs::read_dir(tmp.path().join("objects/t")).unwrap().collect();
        assert_eq!(left.len(), 1, "{left:?}");

        let mut w = local.writer("objects/t/empty");
        w.shutdown().await.unwrap();
        assert_eq!(
            local.size("objects/t/empty").await.unwrap(),
            0,
            "an empty object is an object"
        );
    }

    #[tokio::test]
    async fn a_broken_directory_fails_calls_and_opens_the_breaker() {
        let (tmp, local) = dir();
        std::fs::write(tmp.path().join("staging"), b"a file where a directory belongs").unwrap();
        for _ in 0..2 {
            let err = local.put("staging/t/j", Bytes::from_static(b"x")).await.unwrap_err();
            assert!(matches!(err, BlobError::Failing(_)), "{err}");
        }
        assert_eq!(local.guard.state(), BreakerState::Open);
        let err = local.size("objects/anything").await.unwrap_err();
        assert!(err.to_string().contains("circuit breaker open"), "{err}");
    }
}
