//! Cancellation and progress: cheap shared handles that a CLI progress bar,
//! a server's job page and a signal handler can all hold.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A cancellation flag checked between chunks, plus hooks that unblock
/// what the engine waits on. Clones share the flag and the hooks.
#[derive(Clone, Default)]
pub struct CancelToken(Arc<Inner>);

/// Something to run once, on cancel.
type Hook = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    hooks: Mutex<Vec<Hook>>,
}

impl std::fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CancelToken").field(&self.is_cancelled()).finish()
    }
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every operation holding this token to stop, and runs the hooks
    /// registered with [`Self::on_cancel`] (once).
    pub fn cancel(&self) {
        if self.0.cancelled.swap(true, Ordering::SeqCst) {
            return;
        }
        let hooks = match self.0.hooks.lock() {
            Ok(mut h) => std::mem::take(&mut *h),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        for hook in hooks {
            hook();
        }
    }

    /// Whether [`Self::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Relaxed)
    }

    /// Runs `hook` when the token is cancelled (at once if it already is).
    ///
    /// The engine checks the flag between chunks, but it cannot interrupt a
    /// read that blocks: whoever feeds it from a socket or a channel
    /// registers a hook that makes such a read fail (closes the channel,
    /// shuts the socket), so a cancel also reaches an idle input. Hooks run
    /// on the cancelling thread and must not block.
    pub fn on_cancel(&self, hook: impl FnOnce() + Send + 'static) {
        let mut hooks = match self.0.hooks.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Checked under the lock that `cancel` takes after setting the
        // flag: a hook is either taken by `cancel` or run here, never lost.
        if self.0.cancelled.load(Ordering::SeqCst) {
            drop(hooks);
            hook();
        } else {
            hooks.push(Box::new(hook));
        }
    }
}

/// Counters updated as an operation runs; read them from any thread.
///
/// Every operation counts the same way: *in* is what it reads (plaintext
/// for an encode, container bytes for a decode, verify or range read), *out*
/// is what it writes, and [`Self::done`] is the part of the input whose
/// chunks are finished and written, in order, so `done / input size` is the
/// fraction complete.
#[derive(Debug, Default)]
pub struct Progress {
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    done: AtomicU64,
    chunks: AtomicU64,
}

impl Progress {
    /// Fresh counters.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Bytes read from the input so far.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in.load(Ordering::Relaxed)
    }

    /// Bytes written to the output so far.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out.load(Ordering::Relaxed)
    }

    /// Input bytes whose work is finished and written, in order. Unlike
    /// [`Self::bytes_in`] this does not run ahead by the chunks in flight,
    /// so it is what a progress bar should show against the input size (for
    /// a range read: against [`crate::Archive::input_len_of`]).
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Chunks finished (written in order) so far.
    pub fn chunks(&self) -> u64 {
        self.chunks.load(Ordering::Relaxed)
    }

    /// Counts `n` more bytes read (callers that drive a sans-I/O operation count their own I/O).
    pub fn add_in(&self, n: u64) {
        self.bytes_in.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts `n` more bytes written.
    pub fn add_out(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts `n` more bytes of input fully processed.
    pub fn add_done(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts one more chunk processed.
    pub fn add_chunk(&self) {
        self.chunks.fetch_add(1, Ordering::Relaxed);
    }
}

/// The handles one operation runs under.
#[derive(Debug, Clone, Default)]
pub struct Control {
    /// Stops the operation when cancelled.
    pub cancel: CancelToken,
    /// Receives the operation's progress.
    pub progress: Arc<Progress>,
}

impl Control {
    /// A control with a fresh token and fresh counters.
    pub fn new() -> Self {
        Self::default()
    }
}
