//! How things stand: one tenant's overview (the dashboard's first page) and
//! whether this node is ready to serve.

use std::collections::BTreeMap;

use sluice_store::{BreakerState, Scope};

use crate::auth::Caller;
use crate::{Result, Service};

/// One tenant's summary: its jobs by state, what it stores, what this node
/// processed for it, and the node's health. Nothing about other tenants.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Overview {
    /// Tenant name.
    pub tenant: String,
    /// The caller's scope.
    pub scope: &'static str,
    /// Now, unix milliseconds.
    pub now_ms: i64,
    /// Jobs by state (every state, 0 included).
    pub jobs: BTreeMap<String, i64>,
    /// Stored objects.
    pub objects: ObjectsSummary,
    /// What this node processed for the tenant since it started.
    pub processed: Processed,
    /// This node.
    pub node: Node,
}

/// A tenant's stored objects.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ObjectsSummary {
    /// How many.
    pub count: i64,
    /// Container bytes.
    pub stored_bytes: i64,
    /// Original bytes.
    pub original_bytes: i64,
}

/// What a node processed for a tenant.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Processed {
    /// Original bytes.
    pub bytes_in: u64,
    /// Jobs.
    pub jobs: u64,
}

/// A node's health.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Node {
    /// The engine's CPU pool.
    pub cpu_pool: CpuPool,
    /// The async runtime.
    pub runtime: Runtime,
    /// Requests being handled.
    pub requests_in_flight: usize,
    /// Jobs running here.
    pub jobs_running: usize,
    /// Jobs that may run here at once.
    pub job_slots: usize,
    /// The object store's breaker: `closed`, `half_open` or `open`.
    pub storage: &'static str,
}

/// The CPU pool's state.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CpuPool {
    /// Threads.
    pub threads: usize,
    /// Threads working.
    pub busy: usize,
    /// Chunks waiting.
    pub queued: usize,
}

/// The async runtime's state.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Runtime {
    /// Worker threads.
    pub workers: usize,
    /// Tasks alive.
    pub alive_tasks: usize,
    /// Tasks in the global queue.
    pub global_queue: usize,
}

/// Why a node is not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    /// The database does not answer.
    #[error("database unreachable")]
    Database,
    /// The object store's breaker is open.
    #[error("object store failing (circuit breaker open)")]
    StorageFailing,
    /// The object store does not take writes.
    #[error("storage not writable")]
    StorageNotWritable,
    /// Shutdown began.
    #[error("shutting down")]
    ShuttingDown,
    /// A bounded resource is full: new work would be refused or wait.
    #[error("saturated: {0}")]
    Saturated(&'static str),
}

impl Service {
    /// The caller's tenant at a glance.
    pub async fn overview(&self, caller: &Caller) -> Result<Overview> {
        let who = caller.require(Scope::Read)?;
        let mut jobs: BTreeMap<String, i64> = ["queued", "running", "succeeded", "failed", "cancelled"]
            .iter()
            .map(|s| (s.to_string(), 0))
            .collect();
        for (state, n) in self.db.tenant_job_counts(&who.tenant_id).await? {
            jobs.insert(state, n);
        }
        let (count, stored_bytes, original_bytes) = self.db.tenant_objects_summary(&who.tenant_id).await?;
        let (bytes_in, processed_jobs) = self.telemetry.processed(&who.tenant_id);
        let pool = self.engine.pool();
        let rt = tokio::runtime::Handle::current().metrics();
        Ok(Overview {
            tenant: who.tenant_name.clone(),
            scope: who.scope.as_str(),
            now_ms: sluice_store::now_ms(),
            jobs,
            objects: ObjectsSummary {
                count,
                stored_bytes,
                original_bytes,
            },
            processed: Processed {
                bytes_in,
                jobs: processed_jobs,
            },
            node: Node {
                cpu_pool: CpuPool {
                    threads: pool.threads(),
                    busy: pool.busy(),
                    queued: pool.queued(),
                },
                runtime: Runtime {
                    workers: rt.num_workers(),
                    alive_tasks: rt.num_alive_tasks(),
                    global_queue: rt.global_queue_depth(),
                },
                requests_in_flight: self.requests_in_flight(),
                jobs_running: self.running.len(),
                job_slots: self.config.max_running_jobs,
                storage: match self.objects.breaker_state() {
                    BreakerState::Closed => "closed",
                    BreakerState::HalfOpen => "half_open",
                    BreakerState::Open => "open",
                },
            },
        })
    }

    /// Whether this node can serve: its database answers, its object store
    /// takes writes, and it is not shutting down.
    pub async fn readiness(&self) -> std::result::Result<(), NotReady> {
        if let Err(e) = self.db.ping().await {
            tracing::warn!(error = %e, "not ready: database");
            return Err(NotReady::Database);
        }
        if !self.objects.available() {
            return Err(NotReady::StorageFailing);
        }
        if let Err(e) = self.objects.check_writable().await {
            tracing::warn!(error = %e, "not ready: object store");
            return Err(NotReady::StorageNotWritable);
        }
        if self.is_shutting_down() {
            return Err(NotReady::ShuttingDown);
        }
        if let Some(what) = self.saturated() {
            return Err(NotReady::Saturated(what));
        }
        Ok(())
    }

    /// The bounded resource that is full now, if any: transfers at their
    /// cap, requests at theirs, every blocking thread busy with more
    /// waiting. A load balancer then sends new clients elsewhere.
    pub fn saturated(&self) -> Option<&'static str> {
        let c = &self.config;
        if self.transfers.total() >= self.transfers.max_total() {
            Some("transfers at their cap (max_transfers)")
        } else if self.requests_in_flight.load(std::sync::atomic::Ordering::Relaxed) >= c.max_in_flight {
            Some("requests at their cap (max_in_flight)")
        } else if sluice_store::blocking::queued() > 0 && sluice_store::blocking::running() >= c.max_blocking_threads {
            Some("every blocking thread busy (max_blocking_threads)")
        } else {
            None
        }
    }
}
