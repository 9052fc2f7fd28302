//! Short blocking calls (file system calls, key unwrapping) on Tokio's
//! blocking pool, counted: how many wait for a thread and how many run,
//! for the `sluice_blocking_tasks` metric. Every `spawn_blocking` of the
//! service goes through [`spawn`]; nothing that waits for a client or the
//! network runs here.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::task::JoinHandle;

static QUEUED: AtomicUsize = AtomicUsize::new(0);
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// Counts one task in a state while it lives.
struct Count(&'static AtomicUsize);

impl Count {
    fn new(of: &'static AtomicUsize) -> Count {
        of.fetch_add(1, Ordering::Relaxed);
        Count(of)
    }
}

impl Drop for Count {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs `f` on the blocking pool (as `tokio::task::spawn_blocking`),
/// counted as queued until a thread takes it, then as running.
pub fn spawn<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> JoinHandle<T> {
    let queued = Count::new(&QUEUED);
    tokio::task::spawn_blocking(move || {
        drop(queued);
        let _running = Count::new(&RUNNING);
        f()
    })
}

/// Blocking calls waiting for a thread now.
pub fn queued() -> usize {
    QUEUED.load(Ordering::Relaxed)
}

/// Blocking calls running now.
pub fn running() -> usize {
    RUNNING.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_what_runs_and_forgets_what_ended() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let task = spawn(move || rx.recv().is_ok());
        while running() == 0 {
            tokio::task::yield_now().await;
        }
        tx.send(()).unwrap();
        assert!(task.await.unwrap());
        // Other tests in this process may run blocking calls too; this one's are gone.
        assert!(queued() < 1000);
    }
}
