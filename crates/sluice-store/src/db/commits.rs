//! Group commits: the successes of many jobs recorded in one transaction,
//! so that one database commit (one sync of its log) makes all of them
//! durable. Each success is recorded exactly as it would be alone
//! ([`Db::succeed`], or a job added already succeeded), in the order given.

use std::collections::HashMap;

use sqlx::Row;

use super::jobs::{arrived_in, job_from, succeed_in, Fenced, NewJob, JOB_COLUMNS};
use super::objects::{retire, Placed, OBJECT_COLUMNS};
use super::params::Params;
use super::{Backend, Db};
use crate::error::{Error, Result};
use crate::model::{Job, JobProgress, ObjectInfo};
use crate::now_ms;

/// A transaction that writes.
type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

/// One job's success, for [`Db::record_successes`].
#[derive(Debug, Clone, Copy)]
pub enum Success<'a> {
    /// A job that ran from its upload's arrival to its end outside the
    /// queue (a small upload processed on arrival): added already
    /// succeeded, its upload accepted now.
    Arrived {
        /// The job.
        job: &'a NewJob,
        /// What it did.
        progress: JobProgress,
        /// The object it stored.
        object: &'a ObjectInfo,
        /// The object's container, when it is kept in its row.
        container: Option<&'a [u8]>,
    },
    /// A running attempt's success, fenced as [`Db::succeed`]'s.
    Attempt {
        /// The job, as its attempt claimed it.
        job: &'a Job,
        /// What it did.
        progress: JobProgress,
        /// The object it stored (process jobs).
        object: Option<&'a ObjectInfo>,
        /// The object's container, when it is kept in its row.
        container: Option<&'a [u8]>,
    },
}

impl Db {
    /// Records every success of `batch` in one transaction, in order: for
    /// each, the job as it now is and whether its object took its key
    /// (`Lost`: an attempt that no longer held its job; nothing of it was
    /// written). An error means none was recorded.
    ///
    /// Runs of arrived uploads to distinct keys are written with a few
    /// statements for the whole run (multi-row), not a few per upload:
    /// a database statement costs a round trip, and small objects arrive
    /// by the thousand.
    pub async fn record_successes(&self, batch: &[Success<'_>]) -> Result<Vec<Fenced<(Placed, Job)>>> {
        let mut conn = self.pool.acquire().await?;
        record_on(&mut conn, self.backend, batch).await
    }

    /// A connection for a group committer: one it may keep from batch to
    /// batch (see [`CommitConnection`]).
    pub fn commit_connection(&self) -> CommitConnection {
        CommitConnection {
            db: self.clone(),
            held: None,
        }
    }
}

/// A pool of fewer connections than this is not made smaller still by a
/// committer keeping one.
const KEEP_FROM_POOL_SIZE: u32 = 4;

/// The connection a group committer records its batches on, kept while
/// batches follow one another. SQLite gives each connection a page cache
/// that is emptied whenever another connection has written since its last
/// transaction: the pool hands out its connections in turn, so batch
/// after batch would read the tables' pages again from the file. On the
/// connection that wrote the last batch, the next finds them cached.
pub struct CommitConnection {
    db: Db,
    held: Option<sqlx::pool::PoolConnection<sqlx::Any>>,
}

impl CommitConnection {
    /// Records `batch` as [`Db::record_successes`] does, on the connection
    /// held (or one taken from the pool and then held). A failed batch
    /// closes it: the next begins on a fresh one (a PostgreSQL server
    /// that restarted has dropped the old).
    pub async fn record_successes(&mut self, batch: &[Success<'_>]) -> Result<Vec<Fenced<(Placed, Job)>>> {
        let mut conn = match self.held.take() {
            Some(conn) => conn,
            None => self.db.pool.acquire().await?,
        };
        let recorded = record_on(&mut conn, self.db.backend, batch).await;
        if recorded.is_err() {
            conn.close_on_drop();
        } else if self.db.pool.options().get_max_connections() >= KEEP_FROM_POOL_SIZE {
            self.held = Some(conn);
        }
        recorded
    }

    /// Gives the connection back to the pool (the committer is idle: other
    /// statements may use it).
    pub fn release(&mut self) {
        self.held = None;
    }
}

impl std::fmt::Debug for CommitConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitConnection")
            .field("held", &self.held.is_some())
            .finish()
    }
}

/// Records `batch` in one transaction on `conn`.
async fn record_on(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
    batch: &[Success<'_>],
) -> Result<Vec<Fenced<(Placed, Job)>>> {
    use sqlx::Connection;
    let mut tx = conn.begin_with(backend.begin_write()).await?;
    let mut done = Vec::with_capacity(batch.len());
    let mut run: Vec<Arrival<'_>> = Vec::new();
    for success in batch {
        match *success {
            Success::Arrived {
                job,
                progress,
                object,
                container,
            } => {
                // A second write to a key already in the run, or a full
                // run: the run is written first (writes apply in order).
                let repeats = run
                    .iter()
                    .any(|a| a.job.tenant_id == job.tenant_id && a.job.object_key == job.object_key);
                if repeats || run.len() >= RUN_MAX {
                    write_run(&mut tx, backend, &mut run, &mut done).await?;
                }
                run.push(Arrival {
                    job,
                    progress,
                    object,
                    container,
                });
            }
            Success::Attempt {
                job,
                progress,
                object,
                container,
            } => {
                write_run(&mut tx, backend, &mut run, &mut done).await?;
                done.push(succeed_in(&mut tx, backend, job, progress, object, container).await?);
            }
        }
    }
    write_run(&mut tx, backend, &mut run, &mut done).await?;
    tx.commit().await?;
    Ok(done)
}

/// Writes the arrivals gathered in `run` (see [`arrived_many`]), adds what
/// became of them to `done` and empties `run`.
async fn write_run<'a>(
    tx: &mut Tx<'_>,
    backend: Backend,
    run: &mut Vec<Arrival<'a>>,
    done: &mut Vec<Fenced<(Placed, Job)>>,
) -> Result<()> {
    done.extend(arrived_many(tx, backend, run).await?.into_iter().map(Fenced::Done));
    run.clear();
    Ok(())
}

/// Most uploads one multi-row statement writes (an object row takes 15
/// values; SQLite allows 32766, PostgreSQL 65535).
const RUN_MAX: usize = 64;

/// An arrived upload of a run.
struct Arrival<'a> {
    job: &'a NewJob,
    progress: JobProgress,
    object: &'a ObjectInfo,
    container: Option<&'a [u8]>,
}

/// Records a run of arrived uploads to distinct keys, as
/// [`arrived_in`] records one: each accepted now (so each is its key's
/// newest write, never superseded), its job added succeeded, its object
/// made the key's, the container it replaced retired. In order of the
/// run; a handful of statements for all of it.
async fn arrived_many(tx: &mut Tx<'_>, backend: Backend, run: &[Arrival<'_>]) -> Result<Vec<(Placed, Job)>> {
    if run.is_empty() {
        return Ok(Vec::new());
    }
    if run.len() == 1 {
        let a = &run[0];
        return Ok(vec![
            arrived_in(tx, backend, a.job, a.progress, a.object, a.container).await?,
        ]);
    }
    let now = now_ms();
    // Keys are locked in one order by every node's commits (PostgreSQL:
    // two commits that lock the same keys in other orders could deadlock).
    let mut sorted: Vec<&Arrival<'_>> = run.iter().collect();
    sorted.sort_by(|a, b| (&a.job.tenant_id, &a.job.object_key).cmp(&(&b.job.tenant_id, &b.job.object_key)));
    // Acceptance numbers, one per key.
    let mut p = Params::new(backend);
    let rows: Vec<String> = run.iter().map(|_| p.row(2, &[(2, "1")])).collect();
    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO key_versions (tenant_id, key, last) VALUES {} \
         ON CONFLICT (tenant_id, key) DO UPDATE SET last = key_versions.last + 1 RETURNING tenant_id, key, last",
        rows.join(", ")
    )));
    for a in &sorted {
        q = q.bind(&a.job.tenant_id).bind(&a.job.object_key);
    }
    let mut seqs: HashMap<(String, String), i64> = HashMap::with_capacity(run.len());
    for row in q.fetch_all(&mut **tx).await? {
        seqs.insert((row.try_get("tenant_id")?, row.try_get("key")?), row.try_get("last")?);
    }
    let seq_of = |a: &Arrival<'_>| -> Result<i64> {
        seqs.get(&(a.job.tenant_id.clone(), a.job.object_key.clone()))
            .copied()
            .ok_or_else(|| Error::Corrupt(format!("no acceptance number for {:?}", a.job.object_key)))
    };
    // The containers the objects replace.
    // SQLite plans `(tenant_id, key) IN (VALUES …)` as a scan of the whole
    // table; a disjunction of key lookups it answers from the index.
    let mut p = Params::new(backend);
    let lookup = match backend {
        Backend::Postgres => {
            let pairs: Vec<String> = run.iter().map(|_| p.row(2, &[])).collect();
            format!("(tenant_id, key) IN (VALUES {})", pairs.join(", "))
        }
        Backend::Sqlite => run
            .iter()
            .map(|_| format!("(tenant_id = {} AND key = {})", p.one(), p.one()))
            .collect::<Vec<_>>()
            .join(" OR "),
    };
    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT location FROM objects WHERE {lookup}"
    )));
    for a in run {
        q = q.bind(&a.job.tenant_id).bind(&a.job.object_key);
    }
    let replaced: Vec<String> = q
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| r.try_get("location"))
        .collect::<std::result::Result<_, _>>()?;
    // The jobs, already succeeded: 17 values a row, then state and attempts.
    let mut p = Params::new(backend);
    let rows: Vec<String> = run.iter().map(|_| p.row(17, &[(5, "'succeeded'"), (6, "1")])).collect();
    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO jobs (id, tenant_id, kind, object_key, pipeline, state, attempts, max_attempts, \
         expected_digest, run_after, created_at, started_at, finished_at, updated_at, accept_seq, meta, \
         bytes_in, bytes_out, chunks) VALUES {} RETURNING {JOB_COLUMNS}",
        rows.join(", ")
    )));
    for a in run {
        q = q
            .bind(&a.job.id)
            .bind(&a.job.tenant_id)
            .bind(a.job.kind.as_str())
            .bind(&a.job.object_key)
            .bind(&a.job.pipeline)
            .bind(a.job.max_attempts)
            .bind(&a.job.expected_digest)
            .bind(now)
            .bind(now)
            .bind(now)
            .bind(now)
            .bind(now)
            .bind(seq_of(a)?)
            .bind(&a.job.meta)
            .bind(a.progress.bytes_in)
            .bind(a.progress.bytes_out)
            .bind(a.progress.chunks);
    }
    let mut jobs: HashMap<String, Job> = HashMap::with_capacity(run.len());
    for row in q.fetch_all(&mut **tx).await? {
        let job = job_from(&row)?;
        jobs.insert(job.id.clone(), job);
    }
    // The objects, each its key's now.
    let mut p = Params::new(backend);
    let rows: Vec<String> = run.iter().map(|_| p.row(15, &[])).collect();
    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO objects (tenant_id, {OBJECT_COLUMNS}, accept_seq, inline_container) VALUES {} \
         ON CONFLICT (tenant_id, key) DO UPDATE SET location = excluded.location, \
         pipeline = excluded.pipeline, encrypted = excluded.encrypted, container_len = excluded.container_len, \
         plaintext_len = excluded.plaintext_len, chunk_count = excluded.chunk_count, digest = excluded.digest, \
         job_id = excluded.job_id, created_at = excluded.created_at, meta = excluded.meta, etag = excluded.etag, \
         accept_seq = excluded.accept_seq, inline_container = excluded.inline_container",
        rows.join(", ")
    )));
    for a in &sorted {
        let o = a.object;
        q = q
            .bind(&a.job.tenant_id)
            .bind(&o.key)
            .bind(&o.location)
            .bind(&o.pipeline)
            .bind(i64::from(o.encrypted))
            .bind(o.container_len)
            .bind(o.plaintext_len)
            .bind(o.chunk_count)
            .bind(&o.digest)
            .bind(&o.job_id)
            .bind(o.created_at)
            .bind(&o.meta)
            .bind(&o.etag)
            .bind(seq_of(a)?)
            .bind(a.container);
    }
    q.execute(&mut **tx).await?;
    for location in replaced {
        retire(tx, backend, &location).await?;
    }
    run.iter()
        .map(|a| {
            jobs.remove(&a.job.id)
                .map(|j| (Placed::Stored, j))
                .ok_or_else(|| Error::Corrupt(format!("job {} was not recorded", a.job.id)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::test_dbs;
    use crate::model::{JobKind, JobState};
    use crate::{new_id, now_ms, Objects};

    fn small(tenant: &str, key: &str) -> (NewJob, ObjectInfo) {
        let id = new_id().unwrap();
        let job = NewJob {
            id: id.clone(),
            tenant_id: tenant.into(),
            kind: JobKind::Process,
            object_key: key.into(),
            pipeline: "default".into(),
            staging: None,
            expected_digest: None,
            max_attempts: 3,
            staged_bytes: 0,
            meta: None,
        };
        let object = ObjectInfo {
            key: key.into(),
            location: Objects::inline_path(tenant, &id, 1),
            pipeline: "default".into(),
            encrypted: true,
            container_len: 3,
            plaintext_len: 1,
            chunk_count: 1,
            digest: "00".repeat(32),
            job_id: id,
            created_at: now_ms(),
            meta: None,
            etag: None,
        };
        (job, object)
    }

    /// A run of arrivals written with multi-row statements does what one
    /// at a time does: every object its key's (replacing older ones, whose
    /// store containers are retired), every job succeeded.
    #[tokio::test]
    async fn a_run_of_arrivals_is_written_as_one_at_a_time_would() {
        for (db, _dir) in test_dbs().await {
            let t = db.create_tenant("acme", b"sealed", "sluice1x").await.unwrap();
            // Two keys already hold objects whose containers are files.
            for key in ["k3", "k7"] {
                let (job, mut o) = small(&t.id, key);
                o.location = Objects::container_path(&t.id, &job.id, 1);
                let batch = [Success::Arrived {
                    job: &job,
                    progress: JobProgress::default(),
                    object: &o,
                    container: None,
                }];
                db.record_successes(&batch).await.unwrap();
            }
            for round in 0..2u8 {
                let entries: Vec<(NewJob, ObjectInfo)> = (0..10).map(|i| small(&t.id, &format!("k{i}"))).collect();
                let containers: Vec<Vec<u8>> = (0..10).map(|i| vec![round, i]).collect();
                let batch: Vec<Success<'_>> = entries
                    .iter()
                    .zip(&containers)
                    .map(|((job, object), c)| Success::Arrived {
                        job,
                        progress: JobProgress {
                            bytes_in: 1,
                            bytes_out: 2,
                            chunks: 1,
                        },
                        object,
                        container: Some(c),
                    })
                    .collect();
                let done = db.record_successes(&batch).await.unwrap();
                for ((job, _), d) in entries.iter().zip(&done) {
                    match d {
                        Fenced::Done((Placed::Stored, j)) => {
                            assert_eq!(
                                (&j.id, j.state, j.progress.bytes_out),
                                (&job.id, JobState::Succeeded, 2)
                            );
                        }
                        other => panic!("{other:?}"),
                    }
                }
                for (i, (job, _)) in entries.iter().enumerate() {
                    let (o, c) = db.object_with_container(&t.id, &format!("k{i}")).await.unwrap();
                    assert_eq!((o.job_id.as_str(), c), (job.id.as_str(), Some(vec![round, i as u8])));
                }
            }
            // The two file containers replaced are retired (the reaper's).
            assert_eq!(db.retired_before(std::time::Duration::ZERO, 10).await.unwrap().len(), 2);
        }
    }

    #[tokio::test]
    async fn a_commit_connection_keeps_writing_after_a_failed_batch() {
        for (db, _dir) in test_dbs().await {
            let t = db.create_tenant("acme", b"sealed", "sluice1x").await.unwrap();
            let mut conn = db.commit_connection();
            let (a, oa) = small(&t.id, "a");
            let arrived = |job, object| Success::Arrived {
                job,
                progress: JobProgress::default(),
                object,
                container: Some(b"bytes"),
            };
            conn.record_successes(&[arrived(&a, &oa)]).await.unwrap();
            // The same job id again: the batch fails and leaves nothing.
            let (b, ob) = small(&t.id, "b");
            let again = NewJob {
                id: a.id.clone(),
                ..b.clone()
            };
            assert!(conn
                .record_successes(&[arrived(&b, &ob), arrived(&again, &ob)])
                .await
                .is_err());
            assert!(matches!(db.object(&t.id, "b").await, Err(Error::NotFound(_))));
            // The next batch, on a fresh connection, is written.
            conn.record_successes(&[arrived(&b, &ob)]).await.unwrap();
            conn.release();
            let (c, oc) = small(&t.id, "c");
            conn.record_successes(&[arrived(&c, &oc)]).await.unwrap();
            for key in ["a", "b", "c"] {
                assert_eq!(db.object(&t.id, key).await.unwrap().key, key);
            }
        }
    }
    #[tokio::test]
    async fn many_successes_commit_together_in_order() {
        for (db, _dir) in test_dbs().await {
            let t = db.create_tenant("acme", b"sealed", "sluice1x").await.unwrap();
            let (a, oa) = small(&t.id, "k");
            let (b, ob) = small(&t.id, "k");
            let (c, oc) = small(&t.id, "other");
            let batch = [
                Success::Arrived {
                    job: &a,
                    progress: JobProgress::default(),
                    object: &oa,
                    container: Some(b"one"),
                },
                Success::Arrived {
                    job: &b,
                    progress: JobProgress::default(),
                    object: &ob,
                    container: Some(b"two"),
                },
                Success::Arrived {
                    job: &c,
                    progress: JobProgress::default(),
                    object: &oc,
                    container: Some(b"three"),
                },
            ];
            let done = db.record_successes(&batch).await.unwrap();
            assert_eq!(done.len(), 3);
            for d in &done {
                match d {
                    Fenced::Done((Placed::Stored, job)) => assert_eq!(job.state, JobState::Succeeded),
                    other => panic!("{other:?}"),
                }
            }
            // The later of two writes to one key is the object; its
            // container comes with its row.
            let (o, container) = db.object_with_container(&t.id, "k").await.unwrap();
            assert_eq!(
                (o.job_id.as_str(), container.as_deref()),
                (b.id.as_str(), Some(&b"two"[..]))
            );
            let job = db.job(&t.id, &a.id).await.unwrap();
            assert_eq!(job.state, JobState::Succeeded);
            // Nothing to retire for a container that lived in its row.
            assert!(db
                .retired_before(std::time::Duration::ZERO, 10)
                .await
                .unwrap()
                .is_empty());
            db.delete_object(&t.id, "other").await.unwrap();
            assert!(db
                .retired_before(std::time::Duration::ZERO, 10)
                .await
                .unwrap()
                .is_empty());
            // A fenced attempt that lost its job writes nothing.
            let mut stale = job.clone();
            stale.state = JobState::Running;
            let lost = db
                .record_successes(&[Success::Attempt {
                    job: &stale,
                    progress: JobProgress::default(),
                    object: Some(&oa),
                    container: Some(b"stale"),
                }])
                .await
                .unwrap();
            assert!(matches!(lost[0], Fenced::Lost));
            let (_, container) = db.object_with_container(&t.id, "k").await.unwrap();
            assert_eq!(container.as_deref(), Some(&b"two"[..]));
        }
    }
}
