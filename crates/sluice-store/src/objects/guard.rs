//! [`Guard`]: what protects every call to a backend: a timeout, bounded
//! retries with exponential backoff and jitter (`backon`), and one circuit
//! breaker per backend (`failsafe`).
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

use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use failsafe::failure_policy::{consecutive_failures, ConsecutiveFailures};
use failsafe::{backoff, Config, StateMachine};

use super::blob::BlobError;

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

/// The error of a call the breaker refused.
#[derive(Debug, thiserror::Error)]
#[error("the object store is failing (circuit breaker open); retry later")]
pub struct BreakerOpen;

/// The error of a call that took longer than the timeout.
#[derive(Debug, thiserror::Error)]
#[error("the object store did not answer within {0:?}")]
pub struct TimedOut(pub Duration);

/// How a backend's errors are told apart by the guard.
pub trait Classify: Sized {
    /// Whether the backend may be failing (worth a retry, and counted by
    /// the breaker). Definite answers are not.
    fn is_failing(&self) -> bool;
    /// Whether this is the breaker's own refusal.
    fn is_breaker_open(&self) -> bool;
    /// The breaker's refusal.
    fn breaker_open() -> Self;
    /// A call that took longer than `limit`.
    fn timed_out(limit: Duration) -> Self;
}

impl Classify for BlobError {
    fn is_failing(&self) -> bool {
        matches!(self, BlobError::Failing(_))
    }

    fn is_breaker_open(&self) -> bool {
        matches!(self, BlobError::Failing(e) if e.is::<BreakerOpen>())
    }

    fn breaker_open() -> Self {
        BlobError::Failing(Box::new(BreakerOpen))
    }

    fn timed_out(limit: Duration) -> Self {
        BlobError::Failing(Box::new(TimedOut(limit)))
    }
}

/// One backend's timeout, retries and breaker.
pub struct Guard {
    breaker: Breaker,
    state: Arc<AtomicU8>,
    settings: Resilience,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("breaker", &self.state().as_str())
            .finish()
    }
}

impl Guard {
    /// A guard for the backend `name` (which labels it in the log).
    pub fn new(name: &'static str, settings: Resilience) -> Guard {
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
        Guard {
            breaker,
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

    /// The longest one call may take.
    #[cfg(feature = "remote")]
    pub fn timeout(&self) -> Duration {
        self.settings.timeout
    }

    /// A request with retries: `make` starts one attempt.
    pub async fn call<T, E, F, Fut>(&self, op: &'static str, make: F) -> Result<T, E>
    where
        E: Classify,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(50))
            .with_max_delay(Duration::from_secs(2))
            .with_max_times(self.settings.retries)
            .with_jitter();
        (|| self.once(op, make()))
            .retry(backoff)
            .when(|e: &E| e.is_failing() && !e.is_breaker_open())
            .notify(|_, _| metrics::counter!("sluice_store_retries_total", "op" => op).increment(1))
            .await
    }

    /// One call through the breaker and the timeout, not retried, counted
    /// and timed as `sluice_store_requests_total{op, outcome}` and
    /// `sluice_store_request_duration_seconds{op}`.
    pub async fn once<T, E, Fut>(&self, op: &'static str, fut: Fut) -> Result<T, E>
    where
        E: Classify,
        Fut: Future<Output = Result<T, E>>,
    {
        let count = |outcome: &'static str| {
            metrics::counter!("sluice_store_requests_total", "op" => op, "outcome" => outcome).increment(1)
        };
        if !self.breaker.is_call_permitted() {
            count("refused");
            return Err(E::breaker_open());
        }
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(self.settings.timeout, fut).await {
            Ok(Ok(v)) => {
                self.breaker.on_success();
                count("ok");
                Ok(v)
            }
            Ok(Err(e)) if e.is_failing() => {
                self.breaker.on_error();
                count("error");
                Err(e)
            }
            Ok(Err(e)) => {
                // A definite answer (not found, precondition): the store works.
                self.breaker.on_success();
                count("ok");
                Err(e)
            }
            Err(_) => {
                self.breaker.on_error();
                count("timeout");
                Err(E::timed_out(self.settings.timeout))
            }
        };
        metrics::histogram!("sluice_store_request_duration_seconds", "op" => op)
            .record(started.elapsed().as_secs_f64());
        result
    }
}
