//! The ordered parallel pipeline every operation runs on:
//!
//! ```text
//!  reader thread ──jobs──▶ CPU pool ──results──▶ ordered writer (caller's thread)
//!        ▲                                                      │
//!        └────────────── free buffer pairs (bounded) ◀──────────┘
//! ```
//!
//! An operation holds at most `in_flight` buffer pairs, lent by the engine's
//! shared [`BufferPool`] (whose budget bounds all operations together), so
//! memory is bounded whatever the input size, and a slow writer stalls the
//! reader (backpressure). CPU work never runs on the reader or
//! the writer thread. The first error in *sequence order* wins: a failure in
//! chunk 41 is reported even if the reader already hit a truncation later.
//!
//! When `run` returns, nothing of the operation is left running: its pool
//! jobs are drained and its reader thread joined. One consequence: a reader
//! blocked in a read that never completes (an idle pipe) delays the return
//! of a cancelled operation until that read returns. Whoever feeds the
//! engine from a socket or a channel registers a
//! [`crate::CancelToken::on_cancel`] hook that fails such a read (the
//! server does, for uploads); the CLI exits on signals instead.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel};
use std::sync::Arc;

pub(crate) use crate::buffers::Buffers;
use crate::buffers::{stop_when, BufferPool};
use crate::control::CancelToken;
use crate::error::{Error, Result};
use crate::pool::CpuPool;

/// Where an operation runs and how much it may hold at once.
pub(crate) struct Lanes<'a> {
    /// The CPU pool.
    pub(crate) cpu: &'a CpuPool,
    /// The shared buffers.
    pub(crate) buffers: &'a BufferPool,
    /// Most buffer pairs this operation holds.
    pub(crate) in_flight: usize,
    /// Bytes one pair is reserved for (two chunks).
    pub(crate) pair_bytes: usize,
}

/// The CPU stage: transforms one item in place.
pub(crate) type Work<M> = Arc<dyn Fn(&mut M, &mut Buffers) -> Result<()> + Send + Sync>;

enum Outcome<M> {
    Item(M, Buffers),
    End,
    Fail(Error),
}

/// Runs `read` on a reader thread, `work` on the CPU pool and `consume` on
/// the calling thread, in sequence order. `read` returns `Ok(None)` at the end.
pub(crate) fn run<M, R, C>(lanes: Lanes<'_>, cancel: &CancelToken, read: R, work: Work<M>, mut consume: C) -> Result<()>
where
    M: Send + 'static,
    R: FnMut(&mut Buffers) -> Result<Option<M>> + Send,
    C: FnMut(M, &mut Buffers) -> Result<()>,
{
    let Lanes {
        cpu: pool,
        buffers,
        in_flight,
        pair_bytes,
    } = lanes;
    let in_flight = in_flight.max(1);
    let (free_tx, free_rx) = sync_channel::<Buffers>(in_flight);
    let (res_tx, res_rx) = channel::<(u64, Outcome<M>)>();
    let abort = Arc::new(AtomicBool::new(false));
    // This operation's turn in the shared pool, weighed by its chunk size.
    let lane = pool.lane();
    let cost = (pair_bytes / 2) as u64;

    std::thread::scope(|scope| {
        let reader_abort = Arc::clone(&abort);
        let mut read = read;
        let reader = scope.spawn(move || {
            let mut seq = 0u64;
            let mut held = 0usize;
            let mut spare = Vec::new();
            let stop = stop_when(cancel, &reader_abort);
            loop {
                if stop() {
                    break;
                }
                // A pair of this operation's own if one is back; else a new
                // one from the shared pool if the budget allows (waiting for
                // it only when holding none); else wait for one of ours:
                // backpressure.
                let mut bufs = match free_rx.try_recv() {
                    Ok(b) => b,
                    Err(_) => {
                        let fresh = (held < in_flight)
                            .then(|| buffers.take(pair_bytes, held == 0, &stop))
                            .flatten();
                        match fresh {
                            Some(b) => {
                                held += 1;
                                b
                            }
                            None if held == 0 => break,
                            None => match free_rx.recv() {
                                Ok(b) => b,
                                Err(_) => break,
                            },
                        }
                    }
                };
                let outcome = catch_unwind(AssertUnwindSafe(|| read(&mut bufs)))
                    .unwrap_or_else(|_| Err(Error::Internal("reader panicked".into())));
                match outcome {
                    Ok(Some(mut meta)) => {
                        let tx = res_tx.clone();
                        let work = Arc::clone(&work);
                        let job_abort = Arc::clone(&reader_abort);
                        pool.spawn_in(lane, cost, move || {
                            if job_abort.load(Ordering::Relaxed) {
                                return;
                            }
                            let done = catch_unwind(AssertUnwindSafe(|| work(&mut meta, &mut bufs)))
                                .unwrap_or_else(|_| Err(Error::Internal("worker panicked".into())));
                            let msg = match done {
                                Ok(()) => Outcome::Item(meta, bufs),
                                Err(e) => Outcome::Fail(e),
                            };
                            // The writer may have stopped already; nothing to do then.
                            let _ = tx.send((seq, msg));
                        });
                    }
                    Ok(None) => {
                        spare.push(bufs);
                        let _ = res_tx.send((seq, Outcome::End));
                        break;
                    }
                    Err(e) => {
                        spare.push(bufs);
                        let _ = res_tx.send((seq, Outcome::Fail(e)));
                        break;
                    }
                }
                seq += 1;
            }
            (held, spare, free_rx)
        });

        let result = write_in_order(&res_rx, &free_tx, cancel, &mut consume);
        if result.is_err() {
            abort.store(true, Ordering::Relaxed);
        }
        // Dropping the free list unblocks a reader waiting for a buffer. Then
        // wait for every job of this operation to finish (aborted jobs return
        // at once): when `run` returns, nothing of it is left on the pool.
        drop(free_tx);
        let mut back = Vec::new();
        while let Ok((_, outcome)) = res_rx.recv() {
            if let Outcome::Item(_, bufs) = outcome {
                back.push(bufs);
            }
        }
        // An explicit join waits for the reader thread to exit completely,
        // thread-locals included; the scope's implicit join does not.
        let result = match reader.join() {
            Ok((held, spare, free_rx)) => {
                back.extend(spare);
                back.extend(free_rx.try_iter());
                buffers.give_back(back, held, pair_bytes);
                result
            }
            // The reader's count is lost with it: its reservations stay
            // taken, a bounded leak on a bug path.
            Err(_) => result.and(Err(Error::Internal("reader thread panicked".into()))),
        };
        // A cancel hook may have failed the input on purpose: the cancel,
        // not the failed read it caused, is what happened.
        match result {
            Err(_) if cancel.is_cancelled() => Err(Error::Cancelled),
            other => other,
        }
    })
}

fn write_in_order<M, C>(
    res_rx: &std::sync::mpsc::Receiver<(u64, Outcome<M>)>,
    free_tx: &std::sync::mpsc::SyncSender<Buffers>,
    cancel: &CancelToken,
    consume: &mut C,
) -> Result<()>
where
    C: FnMut(M, &mut Buffers) -> Result<()>,
{
    let mut next = 0u64;
    let mut pending: BTreeMap<u64, Outcome<M>> = BTreeMap::new();
    loop {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        while let Some(outcome) = pending.remove(&next) {
            match outcome {
                Outcome::Item(meta, mut bufs) => {
                    consume(meta, &mut bufs)?;
                    // Capacity is exactly the number of buffer pairs: never blocks.
                    let _ = free_tx.try_send(bufs);
                    next += 1;
                }
                Outcome::End => return Ok(()),
                Outcome::Fail(e) => return Err(e),
            }
        }
        match res_rx.recv() {
            Ok((seq, outcome)) => {
                pending.insert(seq, outcome);
            }
            Err(_) if cancel.is_cancelled() => return Err(Error::Cancelled),
            Err(_) => return Err(Error::Internal("pipeline stopped without an end marker".into())),
        }
    }
}
