//! Per-tenant limits: request rates (GCRA, per token), stored-bytes and
//! queued-jobs quotas, and the global queue depth cap. What they refuse is
//! a [`Refusal`], which each face answers in its own terms.
//!
//! Each tenant's own settings (from `sluice admin tenant set` or the admin
//! API) override the server's defaults. They live in the database; a
//! running node reloads them whenever the database's auth revision changes
//! (see `refresh.rs`), so a change takes effect within a poll interval, on
//! every node.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Serialize;
use sluice_store::{LimitsUpdate, TenantLimits};

use crate::jobs::JobError;

/// What a limit refused; each carries when trying again may succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// The token sent more requests than its tenant's rate allows.
    #[error("this token is limited to {rate_per_sec} requests per second (burst {burst}); retry later")]
    RateLimited {
        /// The rate.
        rate_per_sec: f64,
        /// The burst.
        burst: u32,
        /// When the next request fits.
        retry_after: Duration,
    },
    /// The upload would not fit the tenant's stored-bytes quota.
    #[error("the tenant's storage quota is {quota} bytes and {used} are used or being uploaded")]
    QuotaBytes {
        /// The quota.
        quota: u64,
        /// Bytes stored or being uploaded.
        used: u64,
    },
    /// The tenant has as many queued jobs as it may.
    #[error("the tenant has {queued} queued jobs, its limit of {max}; retry later")]
    QuotaQueued {
        /// Queued now.
        queued: u64,
        /// The limit.
        max: u64,
    },
    /// The whole queue is full.
    #[error("the job queue holds {depth} jobs, its limit; retry later")]
    QueueFull {
        /// Jobs queued and running.
        depth: u64,
    },
    /// The object store is failing (its circuit breaker is open).
    #[error("the object store is failing; retry later")]
    StorageUnavailable {
        /// How long the breaker stays open.
        retry_after: Duration,
    },
    /// The tenant has as many uploads and downloads in flight as it may.
    #[error("the tenant has {max} uploads and downloads in flight, its limit; retry later")]
    TenantTransfers {
        /// The limit.
        max: usize,
    },
    /// The tenant's transfers hold all the memory one tenant may.
    #[error("the tenant's uploads and downloads hold all the memory one tenant may; retry later")]
    TenantMemory,
    /// This node has as many uploads and downloads in flight as it may.
    #[error("this node has {max} uploads and downloads in flight, its limit; retry later")]
    Transfers {
        /// The limit.
        max: usize,
    },
    /// Too much is in memory at once (parts on their way to S3).
    #[error("{what}; send it again shortly")]
    Busy {
        /// What is full.
        what: &'static str,
    },
}

impl Refusal {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::RateLimited { .. } => "rate_limited",
            Refusal::QuotaBytes { .. } => "quota_bytes",
            Refusal::QuotaQueued { .. } => "quota_queued",
            Refusal::QueueFull { .. } => "queue_full",
            Refusal::StorageUnavailable { .. } => "storage_unavailable",
            Refusal::Busy { .. } => "overloaded",
            Refusal::TenantTransfers { .. } | Refusal::TenantMemory => "too_many_transfers",
            Refusal::Transfers { .. } => "transfers_full",
        }
    }

    /// When trying again may succeed (at least a second).
    pub fn retry_after(&self) -> Duration {
        let wait = match self {
            Refusal::RateLimited { retry_after, .. } | Refusal::StorageUnavailable { retry_after } => *retry_after,
            Refusal::QuotaQueued { .. } | Refusal::QueueFull { .. } => QUEUE_RETRY,
            Refusal::QuotaBytes { .. }
            | Refusal::Busy { .. }
            | Refusal::TenantTransfers { .. }
            | Refusal::TenantMemory
            | Refusal::Transfers { .. } => Duration::from_secs(1),
        };
        wait.max(Duration::from_secs(1))
    }
}

/// The server's defaults for tenants that set nothing.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Defaults {
    /// Requests per second per token (0: unlimited).
    pub rate_per_sec: f64,
    /// Burst above the rate.
    pub burst: u32,
    /// Stored bytes per tenant (None: unlimited).
    pub quota_bytes: Option<u64>,
    /// Queued jobs per tenant.
    pub max_queued: u64,
    /// Queued and running jobs over all tenants.
    pub max_queue_depth: u64,
}

/// A tenant's effective limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Effective {
    /// Requests per second per token (0: unlimited).
    pub rate_per_sec: f64,
    /// Burst.
    pub burst: u32,
    /// Stored bytes.
    pub quota_bytes: Option<u64>,
    /// Queued jobs.
    pub max_queued: u64,
}

/// When a client refused for a full queue should try again.
const QUEUE_RETRY: Duration = Duration::from_secs(5);

/// One tenant's rate limiter: a GCRA state per token, built for one rate.
struct TenantLimiter {
    rate: (u64, u32),
    by_token: DefaultKeyedRateLimiter<String>,
}

/// Limits of every tenant, and their live state.
pub struct Limits {
    defaults: Defaults,
    own: RwLock<HashMap<String, TenantLimits>>,
    limiters: RwLock<HashMap<String, Arc<TenantLimiter>>>,
    /// Bytes of uploads in progress per tenant (counted against the quota
    /// before they are stored).
    reserved: Mutex<HashMap<String, u64>>,
    /// Queued and running jobs over all tenants, as last read (plus what
    /// this node queued since): admission reads no table per request.
    depth: std::sync::atomic::AtomicU64,
    /// Queued jobs per tenant, likewise.
    queued: RwLock<HashMap<String, u64>>,
    clock: DefaultClock,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits").field("defaults", &self.defaults).finish()
    }
}

impl Limits {
    /// Limits with `defaults` and no tenant settings yet.
    pub fn new(defaults: Defaults) -> Limits {
        Limits {
            defaults,
            own: RwLock::new(HashMap::new()),
            limiters: RwLock::new(HashMap::new()),
            reserved: Mutex::new(HashMap::new()),
            depth: std::sync::atomic::AtomicU64::new(0),
            queued: RwLock::new(HashMap::new()),
            clock: DefaultClock::default(),
        }
    }

    /// The defaults.
    pub fn defaults(&self) -> &Defaults {
        &self.defaults
    }

    /// Replaces every tenant's own settings (a reload after a change).
    /// Limiters whose rate changed start afresh.
    pub fn apply(&self, all: Vec<(String, TenantLimits)>) {
        let own: HashMap<String, TenantLimits> = all.into_iter().collect();
        if let Ok(mut limiters) = self.limiters.write() {
            limiters.retain(|tenant, l| {
                let e = effective(&self.defaults, own.get(tenant));
                l.rate == rate_key(&e)
            });
        }
        if let Ok(mut o) = self.own.write() {
            *o = own;
        }
    }

    /// Forgets idle per-token states (keeps memory bounded by the tokens
    /// active lately).
    pub fn prune(&self) {
        if let Ok(limiters) = self.limiters.read() {
            for l in limiters.values() {
                l.by_token.retain_recent();
                l.by_token.shrink_to_fit();
            }
        }
    }

    /// Replaces the queue counts with fresh ones from the database.
    pub fn set_counts(&self, depth: u64, queued: HashMap<String, u64>) {
        self.depth.store(depth, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut q) = self.queued.write() {
            *q = queued;
        }
    }

    /// The queue depth and `tenant_id`'s queued jobs, as last counted.
    pub fn counts(&self, tenant_id: &str) -> (u64, u64) {
        let queued = self
            .queued
            .read()
            .ok()
            .and_then(|q| q.get(tenant_id).copied())
            .unwrap_or(0);
        (self.depth.load(std::sync::atomic::Ordering::Relaxed), queued)
    }

    /// Counts a job this node just added (`queued`: it waits in the queue;
    /// otherwise it runs at once) until the next fresh count.
    pub fn note_job(&self, tenant_id: &str, queued: bool) {
        self.depth.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if queued {
            if let Ok(mut q) = self.queued.write() {
                *q.entry(tenant_id.to_string()).or_insert(0) += 1;
            }
        }
    }

    /// Refuses a new queued job when the queue is full (503 `queue_full`)
    /// or the tenant has its most queued jobs (429 `quota_queued`), both
    /// with `Retry-After`.
    pub fn admit_queued(&self, tenant_id: &str, depth: u64, tenant_queued: u64) -> Result<(), Refusal> {
        if depth >= self.defaults.max_queue_depth {
            return Err(Refusal::QueueFull { depth });
        }
        let max = self.of(tenant_id).max_queued;
        if tenant_queued >= max {
            return Err(Refusal::QuotaQueued {
                queued: tenant_queued,
                max,
            });
        }
        Ok(())
    }

    /// A tenant's effective limits.
    pub fn of(&self, tenant_id: &str) -> Effective {
        let own = self.own.read().ok().and_then(|o| o.get(tenant_id).copied());
        effective(&self.defaults, own.as_ref())
    }

    /// Counts one request of `token_id` against its tenant's rate; 429 with
    /// `Retry-After` when over it.
    pub fn check_rate(&self, tenant_id: &str, token_id: &str) -> Result<(), Refusal> {
        let e = self.of(tenant_id);
        let Some(quota) = quota_of(&e) else {
            return Ok(());
        };
        let limiter = self.limiter(tenant_id, &e, quota);
        match limiter.by_token.check_key(&token_id.to_string()) {
            Ok(()) => Ok(()),
            Err(not_until) => Err(Refusal::RateLimited {
                rate_per_sec: e.rate_per_sec,
                burst: e.burst,
                retry_after: not_until.wait_time_from(self.clock.now()),
            }),
        }
    }

    fn limiter(&self, tenant_id: &str, e: &Effective, quota: Quota) -> Arc<TenantLimiter> {
        let key = rate_key(e);
        if let Some(l) = self.limiters.read().ok().and_then(|m| m.get(tenant_id).cloned()) {
            if l.rate == key {
                return l;
            }
        }
        let fresh = Arc::new(TenantLimiter {
            rate: key,
            by_token: RateLimiter::keyed(quota),
        });
        match self.limiters.write() {
            Ok(mut m) => {
                let entry = m.entry(tenant_id.to_string()).or_insert_with(|| Arc::clone(&fresh));
                if entry.rate != key {
                    *entry = Arc::clone(&fresh);
                }
                Arc::clone(entry)
            }
            Err(_) => fresh,
        }
    }

    /// Admits an upload of `declared` bytes (if the client said) for a
    /// tenant that stores `stored` bytes: 413 `quota_bytes` if it cannot
    /// fit. The reservation counts against the quota until dropped; its
    /// [`Reservation::allowance`] caps a body of unknown length.
    pub fn reserve(
        self: &Arc<Self>,
        tenant_id: &str,
        stored: u64,
        declared: Option<u64>,
    ) -> Result<Reservation, Refusal> {
        let Some(quota) = self.of(tenant_id).quota_bytes else {
            return Ok(Reservation {
                limits: Arc::clone(self),
                tenant_id: tenant_id.to_string(),
                bytes: 0,
                allowance: None,
                quota: None,
            });
        };
        let mut reserved = match self.reserved.lock() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        let pending = reserved.get(tenant_id).copied().unwrap_or(0);
        let used = stored.saturating_add(pending);
        let room = quota.saturating_sub(used);
        let over = match declared {
            Some(n) => n > room,
            None => room == 0,
        };
        if over {
            return Err(Refusal::QuotaBytes { quota, used });
        }
        // A body of unknown length may take all the room left.
        let bytes = declared.unwrap_or(room);
        *reserved.entry(tenant_id.to_string()).or_insert(0) += bytes;
        Ok(Reservation {
            limits: Arc::clone(self),
            tenant_id: tenant_id.to_string(),
            bytes,
            allowance: Some(room),
            quota: Some(quota),
        })
    }
}

/// How many bytes an upload's body may have, and what to answer past it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit {
    /// Most bytes.
    pub bytes: u64,
    /// The tenant's quota when it, not the upload size limit, is what binds.
    pub quota: Option<u64>,
}

impl BodyLimit {
    /// The smaller of the server's upload limit and what the quota leaves.
    pub fn new(max_upload: u64, reservation: &Reservation) -> BodyLimit {
        match reservation.allowance() {
            Some(room) if room < max_upload => BodyLimit {
                bytes: room,
                quota: reservation.quota,
            },
            _ => BodyLimit {
                bytes: max_upload,
                quota: None,
            },
        }
    }

    /// An upload limited to `bytes` by the server alone.
    pub fn bytes(bytes: u64) -> BodyLimit {
        BodyLimit { bytes, quota: None }
    }

    /// The failure of a body longer than [`Self::bytes`].
    pub fn exceeded(&self) -> JobError {
        match self.quota {
            Some(q) => JobError::QuotaBytes(format!(
                "the upload does not fit the tenant's storage quota of {q} bytes"
            )),
            None => JobError::UploadTooLarge(format!("uploads are limited to {} bytes", self.bytes)),
        }
    }
}

/// Bytes of an upload counted against its tenant's quota while it runs.
#[derive(Debug)]
pub struct Reservation {
    limits: Arc<Limits>,
    tenant_id: String,
    bytes: u64,
    allowance: Option<u64>,
    quota: Option<u64>,
}

impl Reservation {
    /// Most bytes the upload may bring under the quota (None: no quota).
    pub fn allowance(&self) -> Option<u64> {
        self.allowance
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes == 0 {
            return;
        }
        let mut reserved = match self.limits.reserved.lock() {
            Ok(r) => r,
            Err(p) => p.into_inner(),
        };
        if let Some(n) = reserved.get_mut(&self.tenant_id) {
            *n = n.saturating_sub(self.bytes);
            if *n == 0 {
                reserved.remove(&self.tenant_id);
            }
        }
    }
}

fn effective(d: &Defaults, own: Option<&TenantLimits>) -> Effective {
    let own = own.copied().unwrap_or_default();
    Effective {
        rate_per_sec: own.rate_per_sec.unwrap_or(d.rate_per_sec),
        burst: own.burst.and_then(|b| u32::try_from(b).ok()).unwrap_or(d.burst),
        quota_bytes: own.quota_bytes.map(|q| q.max(0) as u64).or(d.quota_bytes),
        max_queued: own.max_queued.map(|q| q.max(0) as u64).unwrap_or(d.max_queued),
    }
}

/// What a limiter was built for: the rate's period in nanoseconds and the burst.
fn rate_key(e: &Effective) -> (u64, u32) {
    let period = if e.rate_per_sec > 0.0 {
        (1e9 / e.rate_per_sec) as u64
    } else {
        0
    };
    (period, e.burst)
}

fn quota_of(e: &Effective) -> Option<Quota> {
    if e.rate_per_sec.is_nan() || e.rate_per_sec <= 0.0 || !e.rate_per_sec.is_finite() {
        return None;
    }
    let period = Duration::from_secs_f64(1.0 / e.rate_per_sec).max(Duration::from_nanos(1));
    let burst = NonZeroU32::new(e.burst.max(1))?;
    Some(Quota::with_period(period)?.allow_burst(burst))
}

/// Parses a rate: `20/s`, `20`, `600/min`, `3600/h` → requests per second.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (n, unit) = t.split_once('/').unwrap_or((t, "s"));
    let n: f64 = n
        .trim()
        .parse()
        .map_err(|_| "expected e.g. 20/s or 600/min".to_string())?;
    let per = match unit.trim() {
        "s" | "sec" | "second" => 1.0,
        "m" | "min" | "minute" => 60.0,
        "h" | "hour" => 3600.0,
        other => return Err(format!("unknown unit {other:?} (s, min or h)")),
    };
    if !n.is_finite() || n < 0.0 {
        return Err("must be 0 (unlimited) or more".into());
    }
    Ok(n / per)
}

/// A limit given as text that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{limit} {value:?}: {problem}")]
pub struct LimitValueError {
    /// Which limit: `rate`, `burst`, `quota` or `max_queued`.
    pub limit: &'static str,
    /// The value given.
    pub value: String,
    /// What is wrong with it.
    pub problem: String,
}

/// Parses a limits change given as text (`sluice admin tenant set`): each
/// a value, `default`, or absent. An error names the limit; the caller
/// names it as its user wrote it (a flag, say).
pub fn parse_update(
    rate: Option<&str>,
    burst: Option<&str>,
    quota: Option<&str>,
    max_queued: Option<&str>,
) -> Result<LimitsUpdate, LimitValueError> {
    fn field<T>(
        limit: &'static str,
        v: Option<&str>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<Option<T>>, LimitValueError> {
        match v.map(str::trim) {
            None => Ok(None),
            Some("default") => Ok(Some(None)),
            Some(s) => parse(s).map(|x| Some(Some(x))).map_err(|problem| LimitValueError {
                limit,
                value: s.to_string(),
                problem,
            }),
        }
    }
    let count = |s: &str| {
        s.parse::<u32>()
            .map(i64::from)
            .map_err(|_| "expected a whole number".to_string())
    };
    Ok(LimitsUpdate {
        rate_per_sec: field("rate", rate, parse_rate)?,
        burst: field("burst", burst, count)?,
        quota_bytes: field("quota", quota, |s| {
            sluice_engine::format::parse_size(s)
                .map_err(|e| e.to_string())
                .and_then(|n| i64::try_from(n).map_err(|_| "too large".to_string()))
        })?,
        max_queued: field("max_queued", max_queued, count)?,
    })
}

/// A tenant's own limits in words (`default` where it has none).
pub fn describe(l: &TenantLimits) -> String {
    fn or_default<T: std::fmt::Display>(v: Option<T>) -> String {
        v.map_or_else(|| "default".to_string(), |v| v.to_string())
    }
    format!(
        "rate={} burst={} quota={} max_queued={}",
        l.rate_per_sec
            .map_or_else(|| "default".to_string(), |r| format!("{r}/s")),
        or_default(l.burst),
        or_default(l.quota_bytes),
        or_default(l.max_queued)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Defaults {
        Defaults {
            rate_per_sec: 0.0,
            burst: 10,
            quota_bytes: None,
            max_queued: 100,
            max_queue_depth: 1000,
        }
    }

    #[test]
    fn rates_parse_in_any_unit() {
        assert_eq!(parse_rate("20/s").unwrap(), 20.0);
        assert_eq!(parse_rate("20").unwrap(), 20.0);
        assert_eq!(parse_rate("600/min").unwrap(), 10.0);
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("3/fortnight").is_err());
        assert!(parse_rate("-1/s").is_err());
        let u = parse_update(Some("20/s"), Some("40"), Some("1GiB"), Some("default")).unwrap();
        assert_eq!(u.quota_bytes, Some(Some(1 << 30)));
        assert_eq!(u.max_queued, Some(None));
        assert!(parse_update(None, Some("lots"), None, None).is_err());
    }

    #[test]
    fn a_tenants_rate_limits_each_token_with_its_burst_and_reloads() {
        let limits = Limits::new(defaults());
        assert!(
            (0..100).all(|_| limits.check_rate("t", "tok").is_ok()),
            "unlimited by default"
        );
        limits.apply(vec![(
            "t".into(),
            TenantLimits {
                rate_per_sec: Some(1.0),
                burst: Some(3),
                ..Default::default()
            },
        )]);
        for _ in 0..3 {
            limits.check_rate("t", "tok").unwrap();
        }
        let refused = limits.check_rate("t", "tok").unwrap_err();
        assert_eq!(refused.code(), "rate_limited");
        assert!(refused.retry_after() >= Duration::from_secs(1));
        // Another token of the same tenant has its own budget; another
        // tenant is not limited.
        limits.check_rate("t", "other").unwrap();
        limits.check_rate("u", "tok").unwrap();
        // Raised: a fresh limiter.
        limits.apply(vec![(
            "t".into(),
            TenantLimits {
                rate_per_sec: Some(1000.0),
                burst: Some(50),
                ..Default::default()
            },
        )]);
        limits.check_rate("t", "tok").unwrap();
    }

    #[test]
    fn quota_reservations_count_until_dropped() {
        let limits = Arc::new(Limits::new(defaults()));
        limits.apply(vec![(
            "t".into(),
            TenantLimits {
                quota_bytes: Some(1000),
                ..Default::default()
            },
        )]);
        let a = limits.reserve("t", 200, Some(500)).unwrap();
        assert_eq!(a.allowance(), Some(800));
        let refused = limits.reserve("t", 200, Some(400)).unwrap_err();
        assert_eq!(refused.code(), "quota_bytes");
        let b = limits.reserve("t", 200, None).unwrap();
        assert_eq!(b.allowance(), Some(300), "an unknown length gets what is left");
        assert!(limits.reserve("t", 200, None).is_err(), "nothing left");
        drop(a);
        drop(b);
        limits.reserve("t", 200, Some(800)).unwrap();
        assert_eq!(limits.reserve("u", 1 << 40, None).unwrap().allowance(), None);
    }
}
