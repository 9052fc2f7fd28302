//! [`Engine`]: a handle on a CPU pool plus the per-operation in-flight limit.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::pool::CpuPool;

/// Most threads accepted (a sanity cap on configuration, not a tuning knob).
pub const MAX_THREADS: usize = 1024;

/// How an [`Engine`] is sized. `None` fields take defaults from the machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineConfig {
    /// Worker threads in the CPU pool (default: available cores).
    pub threads: Option<usize>,
    /// Chunks in flight per operation (default: 2 × threads + 2).
    pub in_flight: Option<usize>,
}

/// Runs operations on a CPU pool. Cheap to clone; clones share the pool, so a
/// server can run many operations on one pool, each capped by `in_flight`.
#[derive(Clone)]
pub struct Engine {
    pool: Arc<CpuPool>,
    threads: usize,
    in_flight: usize,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("threads", &self.threads)
            .field("in_flight", &self.in_flight)
            .finish()
    }
}

/// The number of cores this process may use.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

impl Engine {
    /// An engine with its own pool, sized by `config`.
    pub fn new(config: EngineConfig) -> Result<Self> {
        let threads = config.threads.unwrap_or_else(available_cores);
        if threads == 0 || threads > MAX_THREADS {
            return Err(Error::Config(format!(
                "threads must be 1..={MAX_THREADS}, got {threads}"
            )));
        }
        let pool = CpuPool::new(threads).map_err(|e| Error::Config(format!("cannot start the CPU pool: {e}")))?;
        Self::with_pool(Arc::new(pool), config.in_flight)
    }

    /// An engine on an existing shared pool, with its own in-flight cap.
    pub fn with_pool(pool: Arc<CpuPool>, in_flight: Option<usize>) -> Result<Self> {
        let threads = pool.threads();
        let in_flight = in_flight.unwrap_or(2 * threads + 2);
        if !(2..=4096).contains(&in_flight) {
            return Err(Error::Config(format!(
                "in-flight chunks must be 2..=4096, got {in_flight}"
            )));
        }
        Ok(Engine {
            pool,
            threads,
            in_flight,
        })
    }

    /// The CPU pool.
    pub fn pool(&self) -> &Arc<CpuPool> {
        &self.pool
    }

    /// Worker threads in the pool.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Chunks in flight per operation.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }
}
