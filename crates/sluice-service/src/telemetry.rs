//! What operators see of the service: Prometheus metrics. (Each face
//! counts its own requests; the native API's are in `sluice-server`.)
//!
//! - [`recorder`] installs the process's `metrics` recorder (once).
//! - [`Telemetry::job_finished`] records a job attempt's outcome, duration,
//!   bytes and ratio.
//! - the sampler refreshes, every few seconds, what is read rather
//!   than counted: jobs by tenant and state, queue age, bytes per tenant,
//!   the database pool, and the Tokio runtime's own metrics.
//! - [`Telemetry::render`] sets the gauges that are cheap to read exactly
//!   (in-flight requests, the CPU pool, the breaker) and renders the text.
//!
//! Metric names are listed in the README ("Observability"); the alert rules
//! in `deploy/prometheus/alerts.yml` and the Grafana dashboard use them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sluice_store::{BreakerState, JobProgress};

use crate::Service;

/// Request and store latency buckets, seconds: P50/P95/P99 stay meaningful
/// from 1 ms to 60 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Job duration buckets, seconds (a 4 KiB upload to a many-GiB one).
const JOB_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];
/// Compression ratio buckets (container bytes / original bytes).
const RATIO_BUCKETS: &[f64] = &[0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1];

/// Group commit sizes (successes per database commit).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];

/// How often the sampler reads the database and the runtime.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// The process's Prometheus recorder, installed on first use. The
/// recorder is global to the process (the `metrics` facade's design).
pub fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                (Matcher::Suffix("request_duration_seconds".into()), LATENCY_BUCKETS),
                (Matcher::Full("sluice_db_pool_acquire_seconds".into()), LATENCY_BUCKETS),
                (Matcher::Full("sluice_job_duration_seconds".into()), JOB_BUCKETS),
                (Matcher::Full("sluice_job_compression_ratio".into()), RATIO_BUCKETS),
                (Matcher::Full("sluice_commit_batch_size".into()), BATCH_BUCKETS),
                (Matcher::Full("sluice_commit_duration_seconds".into()), LATENCY_BUCKETS),
            ];
            let mut builder = PrometheusBuilder::new();
            for (matcher, values) in buckets {
                // Fails only for an empty bucket list, which these are not.
                builder = match builder.set_buckets_for_metric(matcher, values) {
                    Ok(b) => b,
                    Err(_) => PrometheusBuilder::new(),
                };
            }
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            handle
        })
        .clone()
}

/// Metrics state shared by the server.
pub struct Telemetry {
    handle: PrometheusHandle,
    /// Tenant names by id (labels use names; refreshed by the sampler).
    names: RwLock<HashMap<String, String>>,
    /// `(tenant, state)` job gauges set last time, so vanished ones go to 0.
    job_series: std::sync::Mutex<HashSet<(String, String)>>,
    /// `(tenant, direction)` transfer gauges and CPU-pool lane gauges set
    /// last time, likewise.
    scrape_series: std::sync::Mutex<HashSet<(&'static str, String, &'static str)>>,
    /// The token `/metrics` requires, if any.
    token: Option<zeroize::Zeroizing<String>>,
    /// Original bytes and jobs each tenant (by id) had processed on this
    /// node since it started: the dashboard's throughput.
    processed: std::sync::Mutex<HashMap<String, (u64, u64)>>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("protected", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

/// How one job attempt ended, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEnd {
    /// Stored or verified.
    Succeeded,
    /// Failed for good.
    Failed,
    /// Put back for another attempt.
    Retried,
    /// Stopped (cancelled, lease lost, shutdown).
    Stopped,
}

impl JobEnd {
    fn as_str(self) -> &'static str {
        match self {
            JobEnd::Succeeded => "succeeded",
            JobEnd::Failed => "failed",
            JobEnd::Retried => "retried",
            JobEnd::Stopped => "stopped",
        }
    }
}

impl Telemetry {
    /// Metrics on the process recorder; `/metrics` requires `token` if set.
    pub fn new(token: Option<String>) -> Telemetry {
        let t = Telemetry {
            handle: recorder(),
            names: RwLock::new(HashMap::new()),
            job_series: std::sync::Mutex::new(HashSet::new()),
            scrape_series: std::sync::Mutex::new(HashSet::new()),
            token: token.map(zeroize::Zeroizing::new),
            processed: std::sync::Mutex::new(HashMap::new()),
        };
        gauge!("sluice_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        t
    }

    /// Whether `header` (the request's `Authorization`) may read `/metrics`.
    pub fn allows(&self, header: Option<&str>) -> bool {
        match &self.token {
            None => true,
            Some(t) => header
                .and_then(|h| h.strip_prefix("Bearer "))
                .is_some_and(|given| constant_time_eq(given.trim().as_bytes(), t.as_bytes())),
        }
    }

    /// The tenant name for `tenant_id` (its id until the sampler knows it).
    pub fn tenant_name(&self, tenant_id: &str) -> String {
        self.names
            .read()
            .ok()
            .and_then(|m| m.get(tenant_id).cloned())
            .unwrap_or_else(|| tenant_id.to_string())
    }

    /// Records a job attempt's end: counts, duration, and for a stored
    /// upload its bytes, chunks and compression ratio.
    pub fn job_finished(
        &self,
        tenant_id: &str,
        kind: &'static str,
        end: JobEnd,
        error_code: Option<&str>,
        took: Duration,
        done: &JobProgress,
    ) {
        let outcome = end.as_str();
        counter!("sluice_jobs_finished_total", "kind" => kind, "outcome" => outcome).increment(1);
        histogram!("sluice_job_duration_seconds", "kind" => kind, "outcome" => outcome).record(took.as_secs_f64());
        let tenant = self.tenant_name(tenant_id);
        match end {
            JobEnd::Succeeded => {
                if let Ok(mut m) = self.processed.lock() {
                    let e = m.entry(tenant_id.to_string()).or_default();
                    e.0 += done.bytes_in.max(0) as u64;
                    e.1 += 1;
                }
                gauge!("sluice_tenant_last_success_timestamp_seconds", "tenant" => tenant.clone())
                    .set(sluice_store::now_ms() as f64 / 1000.0);
                if kind == "process" {
                    counter!("sluice_bytes_in_total", "tenant" => tenant.clone())
                        .increment(done.bytes_in.max(0) as u64);
                    counter!("sluice_bytes_out_total", "tenant" => tenant).increment(done.bytes_out.max(0) as u64);
                    counter!("sluice_chunks_processed_total").increment(done.chunks.max(0) as u64);
                    if done.bytes_in > 0 {
                        histogram!("sluice_job_compression_ratio").record(done.bytes_out as f64 / done.bytes_in as f64);
                    }
                }
            }
            JobEnd::Failed => {
                counter!("sluice_job_failures_total", "class" => error_code.unwrap_or("unknown").to_string())
                    .increment(1);
            }
            JobEnd::Retried => counter!("sluice_job_retries_total").increment(1),
            JobEnd::Stopped => {}
        }
    }

    /// Original bytes and jobs `tenant_id` had processed on this node since
    /// it started.
    pub fn processed(&self, tenant_id: &str) -> (u64, u64) {
        self.processed
            .lock()
            .ok()
            .and_then(|m| m.get(tenant_id).copied())
            .unwrap_or_default()
    }

    /// Sets the gauges read exactly at scrape time and renders the text
    /// exposition.
    pub fn render(&self, st: &Service) -> String {
        gauge!("sluice_http_requests_in_flight").set(st.requests_in_flight.load(Ordering::Relaxed) as f64);
        let pool = st.engine.pool();
        gauge!("sluice_cpu_pool_threads").set(pool.threads() as f64);
        gauge!("sluice_cpu_pool_busy_threads").set(pool.busy() as f64);
        gauge!("sluice_cpu_pool_queued_tasks").set(pool.queued() as f64);
        gauge!("sluice_jobs_running_here").set(st.running.len() as f64);
        gauge!("sluice_job_slots").set(st.config.max_running_jobs as f64);
        gauge!("sluice_job_slots_free").set(st.job_slots.available_permits() as f64);
        let breaker = match st.objects.breaker_state() {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        };
        gauge!("sluice_store_breaker_state").set(breaker);
        self.render_saturation(st);
        self.handle.render()
    }

    /// What can fill up: blocking threads, the CPU pool's lanes, buffers,
    /// transfers, the process's memory.
    fn render_saturation(&self, st: &Service) {
        gauge!("sluice_blocking_tasks", "state" => "queued").set(sluice_store::blocking::queued() as f64);
        gauge!("sluice_blocking_tasks", "state" => "running").set(sluice_store::blocking::running() as f64);
        gauge!("sluice_blocking_threads_max").set(st.config.max_blocking_threads as f64);
        counter!("sluice_db_acquires_total").absolute(sluice_store::db_acquires());
        let buffers = st.engine.buffers();
        gauge!("sluice_engine_buffer_bytes", "state" => "lent").set(buffers.lent() as f64);
        gauge!("sluice_engine_buffer_budget_bytes").set(buffers.budget() as f64);
        gauge!("sluice_transfer_memory_bytes").set(st.memory.lent() as f64);
        gauge!("sluice_transfer_memory_budget_bytes").set(st.memory.budget() as f64);
        if let Some(rss) = resident_bytes() {
            gauge!("sluice_process_resident_bytes").set(rss as f64);
        }
        gauge!("sluice_transfers_max").set(st.transfers.max_total() as f64);
        gauge!("sluice_transfers_per_tenant_max").set(st.config.max_transfers_per_tenant as f64);
        gauge!("sluice_transfers_in_flight").set(st.transfers.total() as f64);
        let mut now: HashMap<(&'static str, String, &'static str), f64> = HashMap::new();
        for (tenant_id, direction, n) in st.transfers.by_tenant() {
            now.insert(
                ("transfers", self.tenant_name(&tenant_id), direction.as_str()),
                n as f64,
            );
        }
        // Lanes: each tenant's transfers by name; every other lane (one per
        // job run by the engine's blocking pipeline) counted as "jobs".
        let tenants = st.lanes.tenants();
        for (lane, depth) in st.engine.pool().lane_depths() {
            let name = match tenants.get(&lane) {
                Some(t) => format!("tenant:{}", self.tenant_name(t)),
                None => "jobs".to_string(),
            };
            *now.entry(("lane", name, "")).or_default() += depth as f64;
        }
        let Ok(mut seen) = self.scrape_series.lock() else {
            return;
        };
        for key in seen.iter() {
            if !now.contains_key(key) {
                set_scrape_series(key, 0.0);
            }
        }
        seen.clear();
        for (key, v) in now {
            set_scrape_series(&key, v);
            seen.insert(key);
        }
    }

    /// One sampler pass: what the database and the runtime say now.
    async fn sample(&self, st: &Service) -> sluice_store::Result<()> {
        if let Ok(names) = st.db.tenant_names().await {
            if let Ok(mut m) = self.names.write() {
                *m = names.into_iter().collect();
            }
        }
        let counts = st.db.jobs_by_tenant_and_state().await?;
        let mut queued = 0;
        let mut now = HashSet::new();
        for (tenant, state, n) in counts {
            if state == "queued" {
                queued += n;
            }
            gauge!("sluice_jobs", "tenant" => tenant.clone(), "state" => state.clone()).set(n as f64);
            now.insert((tenant, state));
        }
        if let Ok(mut before) = self.job_series.lock() {
            for (tenant, state) in before.difference(&now) {
                gauge!("sluice_jobs", "tenant" => tenant.clone(), "state" => state.clone()).set(0.0);
            }
            *before = now;
        }
        gauge!("sluice_queue_depth").set(queued as f64);
        gauge!("sluice_queue_oldest_age_seconds").set(st.db.oldest_queued_age().await?.as_secs_f64());
        for (tenant, bytes, objects) in st.db.stored_by_tenant().await? {
            gauge!("sluice_tenant_stored_bytes", "tenant" => tenant.clone()).set(bytes as f64);
            gauge!("sluice_tenant_objects", "tenant" => tenant).set(objects as f64);
        }
        let p = st.db.pool_stats();
        gauge!("sluice_db_pool_max_connections").set(f64::from(p.max));
        gauge!("sluice_db_pool_connections", "state" => "idle").set(f64::from(p.idle));
        gauge!("sluice_db_pool_connections", "state" => "in_use").set(f64::from(p.size.saturating_sub(p.idle)));
        histogram!("sluice_db_pool_acquire_seconds").record(st.db.probe_acquire().await?.as_secs_f64());
        Ok(())
    }
}

/// Compares without stopping at the first difference.
fn set_scrape_series(key: &(&'static str, String, &'static str), v: f64) {
    match key.0 {
        "transfers" => gauge!("sluice_transfers", "tenant" => key.1.clone(), "direction" => key.2).set(v),
        _ => gauge!("sluice_cpu_pool_lane_queued_tasks", "lane" => key.1.clone()).set(v),
    }
}

/// The process's resident memory, from `/proc/self/statm` (Linux).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages.saturating_mul(4096))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Starts the sampler: database aggregates and runtime metrics every few
/// seconds (also drives the recorder's upkeep).
pub(crate) fn start_sampler(st: &Service) -> tokio::task::JoinHandle<()> {
    let st = st.clone();
    tokio::spawn(async move {
        let monitor = tokio_metrics::RuntimeMonitor::new(&tokio::runtime::Handle::current());
        let mut intervals = monitor.intervals();
        loop {
            if let Err(e) = st.telemetry.sample(&st).await {
                tracing::debug!(error = %e, "metrics sample from the database failed");
            }
            if let Some(rt) = intervals.next() {
                record_runtime(&rt);
            }
            st.telemetry.handle.run_upkeep();
            tokio::time::sleep(SAMPLE_EVERY).await;
        }
    })
}

/// The Tokio runtime's own metrics over the last interval (the ones
/// available without `--cfg tokio_unstable`).
fn record_runtime(rt: &tokio_metrics::RuntimeMetrics) {
    let workers = rt.workers_count.max(1) as f64;
    gauge!("sluice_tokio_workers").set(rt.workers_count as f64);
    gauge!("sluice_tokio_live_tasks").set(rt.live_tasks_count as f64);
    gauge!("sluice_tokio_global_queue_depth").set(rt.global_queue_depth as f64);
    let elapsed = rt.elapsed.as_secs_f64();
    if elapsed > 0.0 {
        gauge!("sluice_tokio_busy_ratio").set(rt.total_busy_duration.as_secs_f64() / (elapsed * workers));
    }
    counter!("sluice_tokio_park_total").increment(rt.total_park_count);
    gauge!("sluice_tokio_max_busy_ratio").set(if elapsed > 0.0 {
        rt.max_busy_duration.as_secs_f64() / elapsed
    } else {
        0.0
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_token_is_checked_when_set() {
        let open = Telemetry::new(None);
        assert!(open.allows(None));
        let closed = Telemetry::new(Some("s3cret".into()));
        assert!(!closed.allows(None));
        assert!(!closed.allows(Some("Bearer wrong")));
        assert!(!closed.allows(Some("s3cret")));
        assert!(closed.allows(Some("Bearer s3cret")));
        assert!(!format!("{closed:?}").contains("s3cret"));
    }

    /// The value of one series in rendered text (0 when absent).
    fn series(text: &str, name: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    }

    #[test]
    fn job_metrics_are_rendered() {
        // The recorder is global and other tests finish jobs too: compare
        // each series with its value before.
        let t = Telemetry::new(None);
        let watched = [
            "sluice_jobs_finished_total{kind=\"process\",outcome=\"succeeded\"}",
            "sluice_job_failures_total{class=\"integrity\"}",
            "sluice_bytes_in_total{tenant=\"t1\"}",
            "sluice_job_compression_ratio_bucket{le=\"0.3\"}",
        ];
        let before = t.handle.render();
        let done = JobProgress {
            bytes_in: 1000,
            bytes_out: 250,
            chunks: 1,
        };
        t.job_finished(
            "t1",
            "process",
            JobEnd::Succeeded,
            None,
            Duration::from_millis(30),
            &done,
        );
        t.job_finished(
            "t1",
            "process",
            JobEnd::Failed,
            Some("integrity"),
            Duration::from_millis(5),
            &done,
        );
        let text = t.handle.render();
        let grew = |name: &str| series(&text, name) - series(&before, name);
        assert!(grew(watched[0]) >= 1.0, "{text}");
        assert!(grew(watched[1]) >= 1.0, "{text}");
        assert!(grew(watched[2]) == 1000.0, "{text}");
        assert!(grew(watched[3]) >= 1.0, "{text}");
        assert!(text.contains("sluice_job_duration_seconds_bucket"), "{text}");
    }
}
