//! [`Resilient`]: an object store wrapper that gives every call a timeout,
//! bounded retries with exponential backoff and jitter (`backon`), and one
//! circuit breaker per backend (`failsafe`).
//!
//! A failing or stalled backend then costs little: calls fail over after
//! the timeout, the breaker opens after consecutive failures and refuses
//! further calls at once (uploads answer 503 quickly, the worker stops
//! claiming jobs), and after a cool-down it lets calls through again to
//! probe the backend (half-open); one success closes it, one failure opens
//! it again. Answers that prove the backend works (not found, already
//! exists, precondition failed) count as successes and are not retried.
//!
//! What is retried: single requests (put, get, head, list pages, copy,
//! rename, delete). Not retried: the parts of a multipart upload (a part
//! sent again would be a new part; the job or client retries the whole
//! upload) and bytes of a body already streaming.

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use failsafe::failure_policy::{consecutive_failures, ConsecutiveFailures};
use failsafe::{backoff, Config, StateMachine};
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult, RenameOptions, UploadPart,
};

/// How calls to a backend are protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Resilience {
    /// Longest one call may take.
    pub timeout: Duration,
    /// Retries after the first attempt of a failed request.
    pub retries: usize,
    /// Consecutive failures that open the breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open before it probes: failsafe's
    /// equal-jittered backoff from this (whole seconds, at least 1 s),
    /// doubling up to 8 times it while the probes keep failing.
    pub breaker_open: Duration,
}

// The service's settings hold the real defaults; these are for this
// crate's own tests.
#[cfg(test)]
impl Default for Resilience {
    fn default() -> Self {
        Resilience {
            timeout: Duration::from_secs(30),
            retries: 3,
            breaker_failures: 5,
            breaker_open: Duration::from_secs(5),
        }
    }
}

/// The breaker's state, as exported: closed, half-open or open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls go through to probe a backend that was failing.
    HalfOpen,
    /// Calls are refused at once.
    Open,
}

impl BreakerState {
    /// `closed`, `half_open` or `open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::HalfOpen => "half_open",
            BreakerState::Open => "open",
        }
    }
}

/// Records the breaker's transitions (for `state()` and the log).
#[derive(Debug, Clone)]
struct Recorder {
    name: &'static str,
    state: Arc<AtomicU8>,
}

impl failsafe::Instrument for Recorder {
    fn on_call_rejected(&self) {}

    fn on_open(&self) {
        self.state.store(2, Ordering::Relaxed);
        tracing::warn!(store = self.name, "object store failing: circuit breaker open");
    }

    fn on_half_open(&self) {
        self.state.store(1, Ordering::Relaxed);
        tracing::info!(store = self.name, "object store breaker half-open: probing");
    }

    fn on_closed(&self) {
        self.state.store(0, Ordering::Relaxed);
        tracing::info!(store = self.name, "object store answers again: circuit breaker closed");
    }
}

type Breaker = StateMachine<ConsecutiveFailures<backoff::EqualJittered>, Recorder>;

/// An object store whose calls time out, retry and trip a breaker.
pub struct Resilient {
    inner: Arc<dyn ObjectStore>,
    breaker: Arc<Breaker>,
    state: Arc<AtomicU8>,
    settings: Resilience,
}

impl fmt::Debug for Resilient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resilient")
            .field("inner", &self.inner.to_string())
            .field("breaker", &self.state().as_str())
            .finish()
    }
}

impl fmt::Display for Resilient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Resilient({})", self.inner)
    }
}

/// The error of a call the breaker refused.
#[derive(Debug, thiserror::Error)]
#[error("the object store is failing (circuit breaker open); retry later")]
pub struct BreakerOpen;

/// The error of a call that took longer than the timeout.
#[derive(Debug, thiserror::Error)]
#[error("the object store did not answer within {0:?}")]
pub struct TimedOut(Duration);

const STORE: &str = "sluice";

fn generic(e: impl std::error::Error + Send + Sync + 'static) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE,
        source: Box::new(e),
    }
}

/// Whether an error means the backend may be failing (worth a retry, and
/// counted by the breaker). Definite answers are not.
fn failing(e: &object_store::Error) -> bool {
    matches!(
        e,
        object_store::Error::Generic { .. } | object_store::Error::JoinError { .. }
    )
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
    /// Wraps `inner`; `name` labels the backend in the log.
    pub fn new(inner: Arc<dyn ObjectStore>, name: &'static str, settings: Resilience) -> Resilient {
        let state = Arc::new(AtomicU8::new(0));
        // failsafe's backoffs count whole seconds, from 1 s.
        let open = settings.breaker_open.max(Duration::from_secs(1));
        let policy = consecutive_failures(
            settings.breaker_failures.max(1),
            backoff::equal_jittered(open, open.saturating_mul(8)),
        );
        let breaker = Config::new()
            .failure_policy(policy)
            .instrument(Recorder {
                name,
                state: Arc::clone(&state),
            })
            .build();
        Resilient {
            inner,
            breaker: Arc::new(breaker),
            state,
            settings,
        }
    }

    /// The breaker's state.
    pub fn state(&self) -> BreakerState {
        match self.state.load(Ordering::Relaxed) {
            0 => BreakerState::Closed,
            1 => BreakerState::HalfOpen,
            _ => BreakerState::Open,
        }
    }

    /// Whether a call would be let through now (an open breaker whose
    /// cool-down is over turns half-open).
    pub fn permits_calls(&self) -> bool {
        self.breaker.is_call_permitted()
    }

    /// One attempt: breaker check, timeout, outcome recorded.
    async fn attempt<T, Fut>(&self, op: &'static str, fut: Fut) -> object_store::Result<T>
    where
        Fut: Future<Output = object_store::Result<T>>,
    {
        guarded(&self.breaker, self.settings.timeout, op, fut).await
    }

    /// A request with retries: `make` starts one attempt.
    pub(crate) async fn call<T, F, Fut>(&self, op: &'static str, make: F) -> object_store::Result<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = object_store::Result<T>>,
    {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(50))
            .with_max_delay(Duration::from_secs(2))
            .with_max_times(self.settings.retries)
            .with_jitter();
        (|| self.attempt(op, make()))
            .retry(backoff)
            .when(|e| failing(e) && !is_breaker_open(e))
            .notify(|_, _| metrics::counter!("sluice_store_retries_total", "op" => op).increment(1))
            .await
    }
}

/// One call through the breaker and the timeout, counted and timed as
/// `sluice_store_requests_total{op, outcome}` and
/// `sluice_store_request_duration_seconds{op}`.
async fn guarded<T, Fut>(breaker: &Breaker, timeout: Duration, op: &'static str, fut: Fut) -> object_store::Result<T>
where
    Fut: Future<Output = object_store::Result<T>>,
{
    let count = |outcome: &'static str| {
        metrics::counter!("sluice_store_requests_total", "op" => op, "outcome" => outcome).increment(1)
    };
    if !breaker.is_call_permitted() {
        count("refused");
        return Err(generic(BreakerOpen));
    }
    let started = std::time::Instant::now();
    let result = match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => {
            breaker.on_success();
            count("ok");
            Ok(v)
        }
        Ok(Err(e)) if failing(&e) => {
            breaker.on_error();
            count("error");
            Err(e)
        }
        Ok(Err(e)) => {
            // A definite answer (not found, precondition): the store works.
            breaker.on_success();
            count("ok");
            Err(e)
        }
        Err(_) => {
            breaker.on_error();
            count("timeout");
            Err(generic(TimedOut(timeout)))
        }
    };
    metrics::histogram!("sluice_store_request_duration_seconds", "op" => op).record(started.elapsed().as_secs_f64());
    result
}

/// A multipart upload whose parts and completion go through the breaker
/// and the timeout (not retried: see the module docs).
struct GuardedUpload {
    inner: Box<dyn MultipartUpload>,
    breaker: Arc<Breaker>,
    timeout: Duration,
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
        let breaker = Arc::clone(&self.breaker);
        let timeout = self.timeout;
        async move { guarded(&breaker, timeout, "put_part", part).await }.boxed()
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        guarded(&self.breaker, self.timeout, "complete_multipart", self.inner.complete()).await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        // Cleaning up is worth trying even while the breaker is open.
        tokio::time::timeout(self.timeout, self.inner.abort())
            .await
            .map_err(|_| generic(TimedOut(self.timeout)))?
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
            breaker: Arc::clone(&self.breaker),
            timeout: self.settings.timeout,
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
        if !self.breaker.is_call_permitted() {
            return refused();
        }
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        if !self.breaker.is_call_permitted() {
            return refused();
        }
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        if !self.breaker.is_call_permitted() {
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
    use object_store::memory::InMemory;
    use object_store::ObjectStoreExt;
    use std::sync::atomic::AtomicUsize;

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
        let store = Resilient::new(faulty.clone(), "test", settings());
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
        assert_eq!(store.state(), BreakerState::Closed, "3 failures < 4");
        assert!(store.get(&path).await.is_err());
        assert_eq!(store.state(), BreakerState::Open);
        // Open: refused at once, the backend is not called.
        let before = faulty.calls.load(Ordering::SeqCst);
        let started = std::time::Instant::now();
        let err = store.get(&path).await.unwrap_err();
        assert!(is_breaker_open(&err), "{err}");
        assert!(started.elapsed() < Duration::from_millis(50));
        assert_eq!(faulty.calls.load(Ordering::SeqCst), before);
        assert!(!store.permits_calls());
        // The backend recovers; after the cool-down (jittered, whole
        // seconds, longer if a retry met the half-open breaker) a probe is
        // let through and closes the breaker.
        faulty.mode.store(OK, Ordering::SeqCst);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !store.permits_calls() {
            assert!(std::time::Instant::now() < deadline, "the breaker never half-opened");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(store.state(), BreakerState::HalfOpen);
        let got = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(&got[..], b"x");
        assert_eq!(store.state(), BreakerState::Closed);
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
        assert_eq!(store.state(), BreakerState::Closed);
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
        assert_eq!(store.state(), BreakerState::Open);
        let err = store.put_multipart(&Path::from("n")).await.unwrap_err();
        assert!(is_breaker_open(&err));
    }
}
