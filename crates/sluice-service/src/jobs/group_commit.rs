//! The group commit: job successes recorded many to one database
//! transaction, so that one commit (one sync of the database's log) makes
//! all of them durable. A small object costs microseconds of CPU but a
//! sync; sharing the sync is what lets them arrive at wire speed.
//!
//! ```text
//!  request ─▶ bounded queue ─▶ committer: take the first, then whatever else
//!  request ─┘   (full: the      is waiting (up to `commit_batch_max`, waiting
//!                sender waits)  `commit_delay` for more) ─▶ one transaction ─▶ answers
//! ```
//!
//! One batch commits at a time: while it does, the next one gathers, so
//! the busier the node, the larger the batches. Batches that follow one
//! another run on one database connection (its page cache stays warm);
//! an idle committer gives it back to the pool. A batch that fails is
//! recorded again one success at a time, so that one bad entry costs only
//! its own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_store::{CommitConnection, Db, Fenced, Job, JobProgress, NewJob, ObjectInfo, Placed, Success};
use tokio::sync::{mpsc, oneshot};

/// A success to record.
#[derive(Debug)]
pub(crate) enum Entry {
    /// A job that ran from its upload's arrival to its end outside the
    /// queue (a small upload): added already succeeded.
    Arrived {
        /// The job.
        job: NewJob,
        /// What it did.
        progress: JobProgress,
        /// Its object.
        object: ObjectInfo,
        /// The object's container, kept in its row.
        container: Option<Bytes>,
    },
    /// A running attempt's success (fenced).
    Attempt {
        /// The job as claimed.
        job: Job,
        /// What it did.
        progress: JobProgress,
        /// Its object (process jobs).
        object: Option<ObjectInfo>,
        /// The object's container, if kept in its row.
        container: Option<Bytes>,
    },
}

impl Entry {
    fn as_success(&self) -> Success<'_> {
        match self {
            Entry::Arrived {
                job,
                progress,
                object,
                container,
            } => Success::Arrived {
                job,
                progress: *progress,
                object,
                container: container.as_deref(),
            },
            Entry::Attempt {
                job,
                progress,
                object,
                container,
            } => Success::Attempt {
                job,
                progress: *progress,
                object: object.as_ref(),
                container: container.as_deref(),
            },
        }
    }
}

/// What recording a success did: the job as it now is and whether its
/// object took its key, or `Lost` (an attempt no longer holding its job).
pub(crate) type Recorded = Fenced<(Placed, Job)>;

struct Pending {
    entry: Entry,
    reply: oneshot::Sender<sluice_store::Result<Recorded>>,
}

/// The handle requests record their successes through.
#[derive(Debug, Clone)]
pub(crate) struct GroupCommit {
    queue: mpsc::Sender<Pending>,
    waiting: Arc<AtomicUsize>,
    /// Batches committed (for tests; the metrics count them too).
    #[cfg(test)]
    batches: Arc<AtomicUsize>,
}

impl GroupCommit {
    /// Starts the committer on `db`: batches of at most `batch_max`,
    /// gathered for at most `delay` after their first entry.
    pub(crate) fn start(db: Db, batch_max: usize, delay: Duration) -> GroupCommit {
        let batch_max = batch_max.max(1);
        let (queue, rx) = mpsc::channel(batch_max.saturating_mul(4));
        let waiting = Arc::new(AtomicUsize::new(0));
        let batches = Arc::new(AtomicUsize::new(0));
        tokio::spawn(run(
            db,
            rx,
            batch_max,
            delay,
            Arc::clone(&waiting),
            Arc::clone(&batches),
        ));
        GroupCommit {
            queue,
            waiting,
            #[cfg(test)]
            batches,
        }
    }

    /// Batches committed so far.
    #[cfg(test)]
    pub(crate) fn batches(&self) -> usize {
        self.batches.load(Ordering::Relaxed)
    }

    /// Records `entry` with the next batch; returns once it is durable
    /// (or why it is not).
    pub(crate) async fn record(&self, entry: Entry) -> sluice_store::Result<Recorded> {
        let (reply, answer) = oneshot::channel();
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let _counted = Counted(&self.waiting);
        self.queue.send(Pending { entry, reply }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Counts a waiting entry until dropped (also when its request is).
struct Counted<'a>(&'a AtomicUsize);

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn stopped() -> sluice_store::Error {
    sluice_store::Error::Config("the group committer has stopped".into())
}

async fn run(
    db: Db,
    mut rx: mpsc::Receiver<Pending>,
    batch_max: usize,
    delay: Duration,
    waiting: Arc<AtomicUsize>,
    batches: Arc<AtomicUsize>,
) {
    let mut batch: Vec<Pending> = Vec::with_capacity(batch_max);
    let mut conn = db.commit_connection();
    loop {
        // Idle: the connection goes back to the pool until the next entry.
        if rx.is_empty() {
            conn.release();
        }
        let Some(first) = rx.recv().await else { break };
        batch.push(first);
        if !delay.is_zero() {
            let deadline = tokio::time::Instant::now() + delay;
            while batch.len() < batch_max {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(p)) => batch.push(p),
                    Ok(None) | Err(_) => break,
                }
            }
        }
        while batch.len() < batch_max {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        commit(&mut conn, &mut batch, &waiting).await;
        batches.fetch_add(1, Ordering::Relaxed);
    }
}

/// Records `batch` in one transaction and answers each entry; empties it.
async fn commit(conn: &mut CommitConnection, batch: &mut Vec<Pending>, waiting: &AtomicUsize) {
    let started = Instant::now();
    let size = batch.len();
    let result = {
        let successes: Vec<Success<'_>> = batch.iter().map(|p| p.entry.as_success()).collect();
        conn.record_successes(&successes).await
    };
    metrics::histogram!("sluice_commit_batch_size").record(size as f64);
    metrics::histogram!("sluice_commit_duration_seconds").record(started.elapsed().as_secs_f64());
    metrics::gauge!("sluice_commit_waiting").set(waiting.load(Ordering::Relaxed) as f64);
    match result {
        Ok(done) => {
            metrics::counter!("sluice_commit_batches_total", "outcome" => "ok").increment(1);
            for (p, d) in batch.drain(..).zip(done) {
                let _ = p.reply.send(Ok(d));
            }
        }
        Err(e) if size == 1 => {
            metrics::counter!("sluice_commit_batches_total", "outcome" => "failed").increment(1);
            if let Some(p) = batch.pop() {
                let _ = p.reply.send(Err(e));
            }
        }
        Err(e) => {
            // One entry may be what failed: each again on its own.
            metrics::counter!("sluice_commit_batches_total", "outcome" => "split").increment(1);
            tracing::warn!(error = %e, entries = size, "a group commit failed; recording its entries one by one");
            for p in batch.drain(..) {
                let alone = conn.record_successes(&[p.entry.as_success()]).await;
                let _ = p.reply.send(alone.map(|mut d| d.remove(0)));
            }
        }
    }
}
