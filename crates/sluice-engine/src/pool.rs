//! The CPU pool: a fixed set of worker threads that sleep until a chunk
//! arrives, shared by every operation of a process and fair between them.
//!
//! Chunks arrive at the pace of I/O, not in fork-join bursts, so workers
//! must block rather than spin: a work-stealing pool's idle spinning takes
//! cores from the reader and writer threads (measured: hundreds of
//! `sched_yield` calls and most of the run in system time on 2 cores).
//!
//! Fairness: each operation queues its chunks on a lane of its own, and
//! workers take from the lanes in turn by deficit round robin, weighted by
//! each chunk's size in bytes. A job that queued many chunks first does not
//! make one started after it wait behind all of them (a FIFO would), and a
//! job with 8 MiB chunks does not get eight times the CPU of one with 1 MiB
//! chunks. Each operation also caps what it has queued (its in-flight
//! limit), so no lane grows without bound.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Credit a lane gains per turn, in cost units (bytes).
const QUANTUM: u64 = 1 << 20;

/// An operation's place in the pool's round robin (see
/// [`CpuPool::lane`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lane(u64);

/// A fixed-size pool of CPU worker threads.
pub struct CpuPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    next_lane: AtomicU64,
}

struct Shared {
    state: Mutex<State>,
    work_ready: Condvar,
    busy: AtomicUsize,
    queued: AtomicUsize,
}

#[derive(Default)]
struct State {
    lanes: HashMap<Lane, LaneQueue>,
    /// Lanes with queued jobs, in turn order.
    turns: VecDeque<Lane>,
    closed: bool,
}

#[derive(Default)]
struct LaneQueue {
    jobs: VecDeque<(u64, Job)>,
    deficit: u64,
}

impl std::fmt::Debug for CpuPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuPool")
            .field("threads", &self.workers.len())
            .field("busy", &self.busy())
            .field("queued", &self.queued())
            .finish()
    }
}

impl CpuPool {
    /// Starts `threads` workers named `sluice-cpu-N`.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work_ready: Condvar::new(),
            busy: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
        });
        let mut pool = CpuPool {
            shared: Arc::clone(&shared),
            workers: Vec::with_capacity(threads),
            next_lane: AtomicU64::new(1),
        };
        for i in 0..threads {
            let shared = Arc::clone(&shared);
            // On failure, dropping `pool` stops the workers already started.
            pool.workers.push(
                std::thread::Builder::new()
                    .name(format!("sluice-cpu-{i}"))
                    .spawn(move || work(&shared))?,
            );
        }
        Ok(pool)
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Workers running a job now.
    pub fn busy(&self) -> usize {
        self.shared.busy.load(Ordering::Relaxed)
    }

    /// Jobs waiting for a worker.
    pub fn queued(&self) -> usize {
        self.shared.queued.load(Ordering::Relaxed)
    }

    /// A new lane: one per operation, so that operations take turns.
    pub fn lane(&self) -> Lane {
        Lane(self.next_lane.fetch_add(1, Ordering::Relaxed))
    }

    /// Queued jobs per lane, for metrics (lanes with none are absent).
    pub fn lane_depths(&self) -> Vec<(Lane, usize)> {
        let state = lock(&self.shared.state);
        state.lanes.iter().map(|(lane, q)| (*lane, q.jobs.len())).collect()
    }

    /// Runs `job` on `lane` (weighed by `cost`, as [`CpuPool::spawn_in`])
    /// and hands its result to whoever awaits the returned future: the way
    /// async code runs CPU work without holding a thread while it waits.
    /// Dropping the future does not stop a job already queued.
    pub fn run<T: Send + 'static>(
        &self,
        lane: Lane,
        cost: u64,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> PoolResult<T> {
        let (tx, rx) = futures_channel::oneshot::channel();
        self.spawn_in(lane, cost, move || {
            let _ = tx.send(catch_unwind(AssertUnwindSafe(job)));
        });
        PoolResult(rx)
    }

    /// Queues `job` on a lane shared by all callers of this method, with a
    /// cost of one quantum. Jobs must not block on each other.
    pub fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        self.spawn_in(Lane(0), QUANTUM, job);
    }

    /// Queues `job` on `lane`; `cost` (bytes of work, roughly) weighs it in
    /// the round robin. Jobs must not block on each other.
    pub fn spawn_in(&self, lane: Lane, cost: u64, job: impl FnOnce() + Send + 'static) {
        let mut state = lock(&self.shared.state);
        if state.closed {
            // Only while the pool shuts down; the job is dropped, which drops
            // its result channel and so reports the failure.
            return;
        }
        let queue = state.lanes.entry(lane).or_default();
        queue.jobs.push_back((cost.max(1), Box::new(job)));
        if queue.jobs.len() == 1 {
            state.turns.push_back(lane);
        }
        self.shared.queued.fetch_add(1, Ordering::Relaxed);
        drop(state);
        self.shared.work_ready.notify_one();
    }
}

/// The result of a job queued by [`CpuPool::run`], as a future.
#[derive(Debug)]
pub struct PoolResult<T>(futures_channel::oneshot::Receiver<std::thread::Result<T>>);

impl<T> Future for PoolResult<T> {
    type Output = crate::Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|got| match got {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(crate::Error::Internal("a CPU pool job panicked".into())),
            Err(_) => Err(crate::Error::Internal("the CPU pool shut down".into())),
        })
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // Jobs run outside the lock and panics in them are caught: a poisoned
    // lock can only come from a bug in this module, whose state is still
    // consistent between statements.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl State {
    /// The next job by deficit round robin, if any is queued.
    fn next_job(&mut self) -> Option<Job> {
        loop {
            let lane = self.turns.pop_front()?;
            let Some(queue) = self.lanes.get_mut(&lane) else {
                continue;
            };
            let Some(&(cost, _)) = queue.jobs.front() else {
                self.lanes.remove(&lane);
                continue;
            };
            queue.deficit = queue.deficit.saturating_add(QUANTUM);
            if queue.deficit < cost {
                // Not yet its turn to spend that much: credit kept, next lane.
                self.turns.push_back(lane);
                continue;
            }
            queue.deficit -= cost;
            let job = queue.jobs.pop_front().map(|(_, j)| j);
            if queue.jobs.is_empty() {
                // An idle lane keeps no credit (standard DRR).
                self.lanes.remove(&lane);
            } else {
                self.turns.push_back(lane);
            }
            return job;
        }
    }
}

fn work(shared: &Shared) {
    loop {
        let job = {
            let mut state = lock(&shared.state);
            loop {
                if let Some(job) = state.next_job() {
                    break job;
                }
                if state.closed {
                    return;
                }
                state = shared
                    .work_ready
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        };
        shared.queued.fetch_sub(1, Ordering::Relaxed);
        shared.busy.fetch_add(1, Ordering::Relaxed);
        // A panicking job must not take its worker down with it.
        drop(catch_unwind(AssertUnwindSafe(job)));
        shared.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for CpuPool {
    fn drop(&mut self) {
        {
            let mut state = lock(&self.shared.state);
            state.closed = true;
        }
        self.shared.work_ready.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::mpsc::channel;

    #[test]
    fn runs_every_job_and_survives_panics() {
        let pool = CpuPool::new(3).unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = channel();
        for i in 0..100 {
            let count = Arc::clone(&count);
            let tx = tx.clone();
            pool.spawn(move || {
                if i % 10 == 0 {
                    panic!("job {i} panics on purpose");
                }
                count.fetch_add(1, Ordering::Relaxed);
                tx.send(()).unwrap();
            });
        }
        for _ in 0..90 {
            rx.recv().unwrap();
        }
        assert_eq!(count.load(Ordering::Relaxed), 90);
        assert_eq!(pool.threads(), 3);
    }

    /// Runs `jobs` (lane, cost) on a one-thread pool, all queued before the
    /// first runs; returns the lanes in the order they ran.
    fn run_order(jobs: &[(usize, u64)]) -> Vec<usize> {
        let pool = CpuPool::new(1).unwrap();
        let lanes: Vec<Lane> = (0..4).map(|_| pool.lane()).collect();
        let (gate_tx, gate_rx) = channel::<()>();
        pool.spawn(move || {
            let _ = gate_rx.recv();
        });
        // The one worker is held by the gate: everything below queues.
        while pool.busy() == 0 {
            std::thread::yield_now();
        }
        let order = Arc::new(Mutex::new(Vec::new()));
        let (done_tx, done_rx) = channel();
        for &(lane, cost) in jobs {
            let order = Arc::clone(&order);
            let done = done_tx.clone();
            pool.spawn_in(lanes[lane], cost, move || {
                order.lock().unwrap().push(lane);
                done.send(()).unwrap();
            });
        }
        assert_eq!(pool.queued(), jobs.len());
        gate_tx.send(()).unwrap();
        for _ in jobs {
            done_rx.recv().unwrap();
        }
        let order = order.lock().unwrap().clone();
        order
    }

    #[test]
    fn run_hands_results_and_panics_to_the_awaiter() {
        let pool = CpuPool::new(2).unwrap();
        let lane = pool.lane();
        let got = futures_executor_lite(pool.run(lane, 1, || 6 * 7));
        assert_eq!(got.unwrap(), 42);
        let failed = futures_executor_lite(pool.run(lane, 1, || -> u8 { panic!("on purpose") }));
        assert!(matches!(failed, Err(crate::Error::Internal(_))));
    }

    /// Waits for a future on this thread (the engine has no runtime).
    fn futures_executor_lite<F: Future>(f: F) -> F::Output {
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut f = std::pin::pin!(f);
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
            std::thread::park();
        }
    }

    #[test]
    fn a_later_operation_does_not_wait_behind_an_earlier_ones_backlog() {
        // Lane 0 queues 20 chunks, then lane 1 queues 4: FIFO would run
        // lane 1 last; turns run it within the first 8.
        let mut jobs = vec![(0, 1 << 20); 20];
        jobs.extend([(1, 1 << 20); 4]);
        let order = run_order(&jobs);
        let last_of_1 = order.iter().rposition(|&l| l == 1).unwrap();
        assert!(last_of_1 < 8, "{order:?}");
    }

    #[test]
    fn turns_are_weighted_by_bytes() {
        // 8 MiB chunks against 1 MiB chunks: the small lane runs about eight
        // chunks for each big one, not one for one.
        let mut jobs = vec![(0, 8 << 20); 4];
        jobs.extend([(1, 1 << 20); 16]);
        let order = run_order(&jobs);
        let big_before_small_done = order
            .iter()
            .take(order.iter().rposition(|&l| l == 1).unwrap())
            .filter(|&&l| l == 0)
            .count();
        assert!(big_before_small_done <= 2, "{order:?}");
    }
}
