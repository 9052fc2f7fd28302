//! [`Resilient`]: an `object_store` store whose every call goes through a
//! [`Guard`] (timeout, retries, circuit breaker): how a remote backend is
//! protected. See [`guard`](super::guard) for what is retried.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions, UploadPart,
};

#[cfg(test)]
use super::guard::Resilience;
use super::guard::{BreakerOpen, Classify, Guard, TimedOut};

/// An object store whose calls time out, retry and trip a breaker.
pub struct Resilient {
    inner: Arc<dyn ObjectStore>,
    guard: Arc<Guard>,
}

impl fmt::Debug for Resilient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resilient")
            .field("inner", &self.inner.to_string())
            .field("guard", &self.guard)
            .finish()
    }
}

impl fmt::Display for Resilient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Resilient({})", self.inner)
    }
}

const STORE: &str = "sluice";

fn generic(e: impl std::error::Error + Send + Sync + 'static) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE,
        source: Box::new(e),
    }
}

impl Classify for object_store::Error {
    fn is_failing(&self) -> bool {
        matches!(
            self,
            object_store::Error::Generic { .. } | object_store::Error::JoinError { .. }
        )
    }

    fn is_breaker_open(&self) -> bool {
        is_breaker_open(self)
    }

    fn breaker_open() -> Self {
        generic(BreakerOpen)
    }

    fn timed_out(limit: Duration) -> Self {
        generic(TimedOut(limit))
    }
}

/// A stream call the breaker refused: one error.
fn refused<T: Send + 'static>() -> BoxStream<'static, object_store::Result<T>> {
    futures_util::stream::once(async { Err(generic(BreakerOpen)) }).boxed()
}

/// Whether an error is the breaker's own refusal.
pub fn is_breaker_open(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::Generic { source, .. } if source.is::<BreakerOpen>())
}

impl Resilient {
    /// Wraps `inner`, its calls guarded by `guard`.
    pub fn new(inner: Arc<dyn ObjectStore>, guard: Arc<Guard>) -> Resilient {
        Resilient { inner, guard }
    }

    /// A request with retries: `make` starts one attempt.
    pub(crate) async fn call<T, F, Fut>(&self, op: &'static str, make: F) -> object_store::Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = object_store::Result<T>>,
    {
        self.guard.call(op, make).await
    }
}

/// A multipart upload whose parts and completion go through the breaker
/// and the timeout (not retried: see the module docs).
struct GuardedUpload {
    inner: Box<dyn MultipartUpload>,
    guard: Arc<Guard>,
}

impl fmt::Debug for GuardedUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GuardedUpload")
    }
}

#[async_trait]
impl MultipartUpload for GuardedUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let part = self.inner.put_part(data);
        let guard = Arc::clone(&self.guard);
        async move { guard.once("put_part", part).await }.boxed()
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.guard.once("complete_multipart", self.inner.complete()).await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        // Cleaning up is worth trying even while the breaker is open.
        let timeout = self.guard.timeout();
        tokio::time::timeout(timeout, self.inner.abort())
            .await
            .map_err(|_| generic(TimedOut(timeout)))?
    }
}

#[async_trait]
impl ObjectStore for Resilient {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.call("put", || self.inner.put_opts(location, payload.clone(), opts.clone()))
            .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let inner = self
            .call("create_multipart", || {
                self.inner.put_multipart_opts(location, opts.clone())
            })
            .await?;
        Ok(Box::new(GuardedUpload {
            inner,
            guard: Arc::clone(&self.guard),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        self.call("get", || self.inner.get_opts(location, options.clone()))
            .await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        self.call("get_ranges", || self.inner.get_ranges(location, ranges))
            .await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        if !self.guard.permits_calls() {
            return refused();
        }
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        if !self.guard.permits_calls() {
            return refused();
        }
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        if !self.guard.permits_calls() {
            return refused();
        }
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.call("list", || self.inner.list_with_delimiter(prefix)).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.call("copy", || self.inner.copy_opts(from, to, options.clone()))
            .await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> object_store::Result<()> {
        self.call("rename", || self.inner.rename_opts(from, to, options.clone()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::guard::BreakerState;
    use object_store::memory::InMemory;
    use object_store::ObjectStoreExt;
    use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

    /// What the faulty store does to each call.
    const OK: u8 = 0;
    const FAIL: u8 = 1;
    const HANG: u8 = 2;
    const SLOW: u8 = 3;

    /// An in-memory store that fails, hangs or lags on demand, and counts
    /// the calls that reach it.
    #[derive(Debug, Default)]
    struct Faulty {
        inner: InMemory,
        mode: AtomicU8,
        calls: AtomicUsize,
    }

    impl fmt::Display for Faulty {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Faulty")
        }
    }

    impl Faulty {
        async fn fault(&self) -> object_store::Result<()> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            match self.mode.load(Ordering::SeqCst) {
                FAIL => Err(generic(std::io::Error::other("injected failure"))),
                HANG => std::future::pending().await,
                SLOW => {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    Ok(())
                }
                _ => Ok(()),
            }
        }
    }

    #[async_trait]
    impl ObjectStore for Faulty {
        async fn put_opts(&self, l: &Path, p: PutPayload, o: PutOptions) -> object_store::Result<PutResult> {
            self.fault().await?;
            self.inner.put_opts(l, p, o).await
        }
        async fn put_multipart_opts(
            &self,
            l: &Path,
            o: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.fault().await?;
            self.inner.put_multipart_opts(l, o).await
        }
        async fn get_opts(&self, l: &Path, o: GetOptions) -> object_store::Result<GetResult> {
            self.fault().await?;
            self.inner.get_opts(l, o).await
        }
        fn delete_stream(
            &self,
            l: BoxStream<'static, object_store::Result<Path>>,
        ) -> BoxStream<'static, object_store::Result<Path>> {
            self.inner.delete_stream(l)
        }
        fn list(&self, p: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.inner.list(p)
        }
        async fn list_with_delimiter(&self, p: Option<&Path>) -> object_store::Result<ListResult> {
            self.fault().await?;
            self.inner.list_with_delimiter(p).await
        }
        async fn copy_opts(&self, f: &Path, t: &Path, o: CopyOptions) -> object_store::Result<()> {
            self.fault().await?;
            self.inner.copy_opts(f, t, o).await
        }
    }

    fn settings() -> Resilience {
        Resilience {
            timeout: Duration::from_millis(200),
            retries: 2,
            breaker_failures: 4,
            breaker_open: Duration::from_secs(1),
        }
    }

    fn wrap() -> (Arc<Faulty>, Resilient) {
        let faulty = Arc::new(Faulty::default());
        let store = Resilient::new(faulty.clone(), Arc::new(Guard::new("test", settings())));
        (faulty, store)
    }

    #[tokio::test]
    async fn failures_are_retried_then_open_the_breaker_which_probes_and_closes() {
        let (faulty, store) = wrap();
        let path = Path::from("a");
        store.put(&path, PutPayload::from("x")).await.unwrap();
        faulty.mode.store(FAIL, Ordering::SeqCst);
        let before = faulty.calls.load(Ordering::SeqCst);
        assert!(store.put(&path, PutPayload::from("y")).await.is_err());
        assert_eq!(faulty.calls.load(Ordering::SeqCst) - before, 3, "first try + 2 retries");
        assert_eq!(store.guard.state(), BreakerState::Closed, "3 failures < 4");
        assert!(store.get(&path).await.is_err());
        assert_eq!(store.guard.state(), BreakerState::Open);
        // Open: refused at once, the backend is not called.
        let before = faulty.calls.load(Ordering::SeqCst);
        let started = std::time::Instant::now();
        let err = store.get(&path).await.unwrap_err();
        assert!(is_breaker_open(&err), "{err}");
        assert!(started.elapsed() < Duration::from_millis(50));
        assert_eq!(faulty.calls.load(Ordering::SeqCst), before);
        assert!(!store.guard.permits_calls());
        // The backend recovers; after the cool-down (jittered, whole
        // seconds, longer if a retry met the half-open breaker) a probe is
        // let through and closes the breaker.
        faulty.mode.store(OK, Ordering::SeqCst);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !store.guard.permits_calls() {
            assert!(std::time::Instant::now() < deadline, "the breaker never half-opened");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(store.guard.state(), BreakerState::HalfOpen);
        let got = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(&got[..], b"x");
        assert_eq!(store.guard.state(), BreakerState::Closed);
    }

    #[tokio::test]
    async fn a_hanging_backend_times_out_and_latency_under_the_timeout_is_fine() {
        let (faulty, store) = wrap();
        let path = Path::from("b");
        faulty.mode.store(SLOW, Ordering::SeqCst);
        store.put(&path, PutPayload::from("slow")).await.unwrap();
        faulty.mode.store(HANG, Ordering::SeqCst);
        let started = std::time::Instant::now();
        let err = store.get(&path).await.unwrap_err();
        assert!(err.to_string().contains("did not answer"), "{err}");
        // Three attempts of 200 ms plus short backoffs: bounded, not hung.
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn definite_answers_are_neither_retried_nor_counted_as_failures() {
        let (faulty, store) = wrap();
        for _ in 0..10 {
            let err = store.get(&Path::from("missing")).await.unwrap_err();
            assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
        }
        assert_eq!(faulty.calls.load(Ordering::SeqCst), 10, "one call each");
        assert_eq!(store.guard.state(), BreakerState::Closed);
    }

    #[tokio::test]
    async fn multipart_parts_go_through_the_breaker() {
        let (faulty, store) = wrap();
        let mut up = store.put_multipart(&Path::from("m")).await.unwrap();
        up.put_part(PutPayload::from(vec![1u8; 10])).await.unwrap();
        up.complete().await.unwrap();
        faulty.mode.store(FAIL, Ordering::SeqCst);
        for _ in 0..4 {
            assert!(store.list_with_delimiter(None).await.is_err());
        }
        assert_eq!(store.guard.state(), BreakerState::Open);
        let err = store.put_multipart(&Path::from("n")).await.unwrap_err();
        assert!(is_breaker_open(&err));
    }
}
