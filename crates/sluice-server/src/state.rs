//! [`AppState`]: what every handler and worker shares.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize};
use std::sync::{Arc, RwLock};

use sluice_engine::{CancelToken, Engine, Progress};
use sluice_store::{Db, Objects, Principal};
use tokio::sync::Notify;

use crate::config::Config;
use crate::keys::Keys;
use crate::limits::Limits;
use crate::source::OpenedCache;

/// Shared state: cheap to clone (everything behind `Arc`).
#[derive(Clone, Debug)]
pub struct AppState {
    /// Effective configuration.
    pub config: Arc<Config>,
    /// Metadata.
    pub db: Db,
    /// Containers and staging.
    pub objects: Objects,
    /// The engine, on the shared CPU pool.
    pub engine: Engine,
    /// Master key and tenant identities.
    pub keys: Arc<Keys>,
    /// Opened containers, for range reads without unlocking again.
    pub opened: OpenedCache,
    /// Valid tokens by hash (bounded, with a time to live; emptied when
    /// tokens change, see `watch.rs`).
    pub principals: moka::future::Cache<String, Principal>,
    /// Tenant limits and their live state.
    pub limits: Arc<Limits>,
    /// The auth revision the caches were last emptied for.
    pub auth_revision: Arc<AtomicI64>,
    /// Checks JWT bearer tokens, if they are accepted.
    pub jwt: Option<Arc<crate::jwt::JwtVerifier>>,
    /// Jobs running on this node.
    pub running: Arc<Running>,
    /// One permit per job that may run on this node (queued jobs and
    /// uploads processed as they stream in share them).
    pub job_slots: Arc<tokio::sync::Semaphore>,
    /// MiB of resumable-upload parts held in memory on their way into an
    /// S3 multipart upload (one permit per MiB; none left: 503).
    pub part_buffers: Arc<tokio::sync::Semaphore>,
    /// `/v1` requests being handled now (the dispatcher yields to them).
    pub requests_in_flight: Arc<AtomicUsize>,
    /// Wakes idle workers when a job is queued.
    pub job_queued: Arc<Notify>,
    /// Set once shutdown began: no new work is claimed.
    pub shutting_down: Arc<AtomicBool>,
    /// Metrics.
    pub telemetry: Arc<crate::telemetry::Telemetry>,
}

/// A job running on this node: how to stop it and how far it got.
#[derive(Debug, Clone)]
pub struct RunningJob {
    /// Stops the engine within a chunk.
    pub cancel: CancelToken,
    /// Live counters.
    pub progress: Arc<Progress>,
}

/// The jobs running on this node, by id.
#[derive(Debug, Default)]
pub struct Running {
    jobs: RwLock<HashMap<String, RunningJob>>,
}

/// A job's registration on this node; unregisters it when dropped (also
/// when the future running the job is dropped, e.g. its client went away).
pub struct Registered<'a> {
    running: &'a Running,
    id: String,
    /// The job's cancel token and live counters.
    pub job: RunningJob,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.running.jobs.write() {
            m.remove(&self.id);
        }
    }
}

impl Running {
    /// Registers job `id` with a fresh cancel token and counters.
    pub fn register(&self, id: &str) -> Registered<'_> {
        let job = RunningJob {
            cancel: CancelToken::new(),
            progress: Arc::new(Progress::default()),
        };
        if let Ok(mut m) = self.jobs.write() {
            m.insert(id.to_string(), job.clone());
        }
        Registered {
            running: self,
            id: id.to_string(),
            job,
        }
    }

    /// A running job, if it runs here.
    pub fn get(&self, id: &str) -> Option<RunningJob> {
        self.jobs.read().ok().and_then(|m| m.get(id).cloned())
    }

    /// How many run here.
    pub fn len(&self) -> usize {
        self.jobs.read().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether none runs here.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cancels every job running here.
    pub fn cancel_all(&self) {
        if let Ok(m) = self.jobs.read() {
            for j in m.values() {
                j.cancel.cancel();
            }
        }
    }
}
