//! [`BufferPool`]: the chunk buffers of every operation of an engine, shared.
//!
//! Each in-flight chunk owns a pair of buffers about a chunk long. Without a
//! shared pool, every operation allocated its own pairs and freed them at the
//! end; a server running job after job then churned through buffers of
//! megabytes each, which glibc's allocator keeps in per-thread arenas rather
//! than returning, so its resident memory grew to 2–3× what the jobs held at
//! any moment. Here the pairs outlive operations and are lent out again, and
//! the bytes lent to all operations together stay within one budget: an
//! operation waits for buffers while others hold the budget (it always gets
//! at least one pair, so large chunks cannot starve), and its later pairs are
//! taken only when free, which shares the budget between concurrent jobs.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::control::CancelToken;

/// The two buffers an in-flight chunk owns. Recycled between chunks and
/// operations, so they keep their capacity and are never zero-filled again.
#[derive(Default)]
pub(crate) struct Buffers {
    /// What the reader filled: plaintext when encoding, a sealed body when decoding.
    pub(crate) input: Vec<u8>,
    /// What the CPU stage made of it: a sealed body, or plaintext.
    pub(crate) output: Vec<u8>,
}

impl Buffers {
    fn capacity(&self) -> usize {
        self.input.capacity().saturating_add(self.output.capacity())
    }
}

struct State {
    free: Vec<Buffers>,
    /// Bytes of buffers lent out, as reserved by the borrowers.
    lent: usize,
}

/// Buffer pairs shared by the operations of an engine, within a byte budget.
pub struct BufferPool {
    budget: usize,
    state: Mutex<State>,
    returned: Condvar,
}

impl std::fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferPool")
            .field("budget", &self.budget)
            .field("lent", &self.lent())
            .finish()
    }
}

impl BufferPool {
    /// A pool whose lent buffers total at most `budget` bytes (beyond that,
    /// only an operation holding none gets a pair).
    pub fn new(budget: usize) -> Self {
        BufferPool {
            budget,
            state: Mutex::new(State {
                free: Vec::new(),
                lent: 0,
            }),
            returned: Condvar::new(),
        }
    }

    /// The budget in bytes.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Bytes currently lent out.
    pub fn lent(&self) -> usize {
        self.lock().lent
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Lends a pair for chunks needing `bytes`. With `wait`, blocks until the
    /// budget allows it (or `stop` says to give up); without, returns `None`
    /// when it does not. A borrower holding nothing must wait, one holding
    /// pairs should not (its own pairs come back).
    pub(crate) fn take(&self, bytes: usize, wait: bool, stop: &dyn Fn() -> bool) -> Option<Buffers> {
        let mut st = self.lock();
        loop {
            if st.lent == 0 || st.lent.saturating_add(bytes) <= self.budget {
                st.lent = st.lent.saturating_add(bytes);
                return Some(st.free.pop().unwrap_or_default());
            }
            if !wait || stop() {
                return None;
            }
            st = match self.returned.wait_timeout(st, Duration::from_millis(50)) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// Returns `count` reservations of `bytes` and whatever of their
    /// buffers came back (a failed chunk's may have been dropped). Buffers
    /// are kept for reuse up to the budget; the rest is freed.
    pub(crate) fn give_back(&self, buffers: Vec<Buffers>, count: usize, bytes: usize) {
        let mut st = self.lock();
        st.lent = st.lent.saturating_sub(count.saturating_mul(bytes));
        let mut kept: usize = st.free.iter().map(Buffers::capacity).sum();
        for b in buffers {
            let cap = b.capacity();
            if kept.saturating_add(cap) <= self.budget {
                kept += cap;
                st.free.push(b);
            }
        }
        drop(st);
        self.returned.notify_all();
    }
}

/// A cancel token and an abort flag, as one "give up waiting" test.
pub(crate) fn stop_when<'a>(
    cancel: &'a CancelToken,
    abort: &'a std::sync::atomic::AtomicBool,
) -> impl Fn() -> bool + 'a {
    move || cancel.is_cancelled() || abort.load(std::sync::atomic::Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lends_within_the_budget_and_recycles() {
        let pool = BufferPool::new(100);
        let never = || false;
        let mut a = pool.take(60, true, &never).unwrap();
        a.input.reserve(40);
        assert!(pool.take(60, false, &never).is_none(), "60 + 60 > 100");
        let b = pool.take(40, false, &never).unwrap();
        assert_eq!(pool.lent(), 100);
        pool.give_back(vec![a], 1, 60);
        assert_eq!(pool.lent(), 40);
        let again = pool.take(60, false, &never).unwrap();
        assert!(again.input.capacity() >= 40, "the returned pair is lent again");
        pool.give_back(vec![again, b], 2, 50);
        assert_eq!(pool.lent(), 0);
        // Past the budget, a borrower holding nothing still gets one pair.
        let big = pool.take(1000, true, &never).unwrap();
        pool.give_back(vec![big], 1, 1000);
    }

    #[test]
    fn a_waiting_borrower_gives_up_when_told() {
        let pool = BufferPool::new(10);
        let held = pool.take(10, true, &|| false).unwrap();
        let stop = std::sync::atomic::AtomicBool::new(true);
        assert!(pool
            .take(10, true, &|| stop.load(std::sync::atomic::Ordering::Relaxed))
            .is_none());
        pool.give_back(vec![held], 1, 10);
    }
}
