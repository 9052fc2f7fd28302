//! The CPU pool: a fixed set of worker threads that sleep on a queue until
//! a chunk arrives.
//!
//! Chunks arrive at the pace of I/O, not in fork-join bursts, so workers
//! must block rather than spin: a work-stealing pool's idle spinning takes
//! cores from the reader and writer threads (measured: hundreds of
//! `sched_yield` calls and most of the run in system time on 2 cores).
//! One pool can be shared by many operations; each caps its own share with
//! its in-flight limit.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed-size pool of CPU worker threads.
pub struct CpuPool {
    queue: Mutex<Option<Sender<Job>>>,
    workers: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for CpuPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpuPool").field("threads", &self.workers.len()).finish()
    }
}

impl CpuPool {
    /// Starts `threads` workers named `sluice-cpu-N`.
    pub fn new(threads: usize) -> std::io::Result<Self> {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut workers = Vec::with_capacity(threads);
        for i in 0..threads {
            let rx = Arc::clone(&rx);
            workers.push(
                std::thread::Builder::new()
                    .name(format!("sluice-cpu-{i}"))
                    .spawn(move || work(&rx))?,
            );
        }
        Ok(CpuPool {
            queue: Mutex::new(Some(tx)),
            workers,
        })
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Queues `job` to run on a worker. Jobs must not block on each other.
    pub fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        let sender = self.queue.lock().ok().and_then(|q| q.clone());
        if let Some(tx) = sender {
            // Fails only while the pool shuts down; the job is then dropped,
            // which drops its result channel and so reports the failure.
            let _ = tx.send(Box::new(job));
        }
    }
}

fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only while waiting: jobs run unlocked.
        let job = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        match job {
            // A panicking job must not take its worker down with it.
            Ok(job) => drop(catch_unwind(AssertUnwindSafe(job))),
            Err(_) => return,
        }
    }
}

impl Drop for CpuPool {
    fn drop(&mut self) {
        if let Ok(mut q) = self.queue.lock() {
            q.take();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

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
}
