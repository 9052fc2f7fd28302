//! [`Engine`]: a handle on a CPU pool plus the per-operation in-flight limit.

use std::sync::Arc;

use crate::buffers::BufferPool;
use crate::error::{Error, Result};
use crate::pipeline::Lanes;
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
    /// Most bytes of chunk buffers one operation may hold (default
    /// [`default_memory_budget`]). Files with large chunks get fewer chunks in
    /// flight (never fewer than 2), so a file's chunk size cannot make an
    /// operation hold more than this.
    pub memory_budget: Option<usize>,
    /// Most bytes of chunk buffers all operations of this engine (and its
    /// clones) hold together (default: `memory_budget`). A server running
    /// many jobs on one engine sets this to bound them all; each job still
    /// gets at least one chunk's buffers, and more as the budget allows.
    pub shared_memory: Option<usize>,
}

/// Budget per in-flight chunk at the default chunk size: its two buffers.
const BUDGET_PER_SLOT: usize = 2 << sluice_format::DEFAULT_CHUNK_LOG2;

/// Default per-operation buffer budget for `threads` workers: room for
/// `threads + 2` default-size chunks (one per worker, one being read, one
/// being written), two buffers each — 64 MiB on 2 cores. Memory follows
/// the cores that can use it, not the input.
pub fn default_memory_budget(threads: usize) -> usize {
    threads.saturating_add(2).saturating_mul(BUDGET_PER_SLOT)
}

/// Runs operations on a CPU pool. Cheap to clone; clones share the pool, so a
/// server can run many operations on one pool, each capped by `in_flight`.
#[derive(Clone)]
pub struct Engine {
    pool: Arc<CpuPool>,
    buffers: Arc<BufferPool>,
    threads: usize,
    in_flight: usize,
    memory_budget: usize,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("threads", &self.threads)
            .field("in_flight", &self.in_flight)
            .field("memory_budget", &self.memory_budget)
            .field("shared_memory", &self.buffers.budget())
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
        let engine = Self::with_pool(Arc::new(pool), config.in_flight)?;
        let budget = config.memory_budget.unwrap_or_else(|| default_memory_budget(threads));
        let shared = config.shared_memory.unwrap_or(budget);
        Ok(engine.with_memory_budget(budget).with_shared_memory(shared))
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
            buffers: Arc::new(BufferPool::new(default_memory_budget(threads))),
            threads,
            in_flight,
            memory_budget: default_memory_budget(threads),
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

    /// Chunks in flight per operation (at most; see [`Self::in_flight_for`]).
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Sets the per-operation buffer budget in bytes.
    pub fn with_memory_budget(mut self, bytes: usize) -> Self {
        self.memory_budget = bytes;
        self
    }

    /// Gives this engine (and its future clones) a new shared buffer pool
    /// of `bytes` for all its operations together.
    pub fn with_shared_memory(mut self, bytes: usize) -> Self {
        self.buffers = Arc::new(BufferPool::new(bytes));
        self
    }

    /// The buffers shared by this engine's operations.
    pub fn buffers(&self) -> &Arc<BufferPool> {
        &self.buffers
    }

    /// Where an operation on `chunk_size`-byte chunks runs.
    pub(crate) fn lanes_for(&self, chunk_size: usize) -> Lanes<'_> {
        Lanes {
            cpu: &self.pool,
            buffers: &self.buffers,
            in_flight: self.in_flight_for(chunk_size),
            pair_bytes: chunk_size.saturating_mul(2),
        }
    }

    /// Chunks in flight for an operation on `chunk_size`-byte chunks: the
    /// configured depth, lowered so that two buffers per chunk fit the
    /// memory budget, but never below 2.
    pub fn in_flight_for(&self, chunk_size: usize) -> usize {
        let per_chunk = chunk_size.saturating_mul(2).max(1);
        self.in_flight.min(self.memory_budget / per_chunk).max(2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_budget_lowers_in_flight_but_not_below_two() {
        let e = Engine::new(EngineConfig {
            threads: Some(2),
            in_flight: Some(32),
            memory_budget: Some(16 << 20),
            shared_memory: None,
        })
        .unwrap();
        assert_eq!(e.in_flight_for(64 << 10), 32, "small chunks: the configured depth");
        assert_eq!(e.in_flight_for(1 << 20), 8, "16 MiB budget / (2 x 1 MiB)");
        assert_eq!(e.in_flight_for(64 << 20), 2, "never below 2, even past the budget");
        let d = Engine::new(EngineConfig {
            threads: Some(2),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(d.in_flight_for(1 << 20), 6);
        assert_eq!(d.in_flight_for(8 << 20), 4, "64 MiB default budget on 2 cores");
        assert_eq!(
            d.in_flight_for(64 << 20),
            2,
            "a file's 64 MiB chunks cannot take 768 MiB"
        );
        assert!(Engine::new(EngineConfig {
            threads: Some(0),
            ..Default::default()
        })
        .is_err());
        assert!(Engine::new(EngineConfig {
            in_flight: Some(1),
            ..Default::default()
        })
        .is_err());
    }
}
