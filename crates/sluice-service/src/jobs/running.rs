//! [`Running`]: the jobs running on this node, with their cancel tokens
//! and live progress (the JSON of a job shows its live counters when it
//! runs here).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use sluice_engine::{CancelToken, Progress};

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
