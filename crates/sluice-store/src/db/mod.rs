//! [`Db`]: the metadata database (SQLite by default, PostgreSQL for several
//! nodes), one file per table: [`tenants`], [`tokens`], [`pipelines`],
//! [`objects`], [`jobs`] (the queue), [`uploads`] (resumable sessions); plus
//! the S3 face's [`s3_keys`] and [`buckets`]; how it is opened ([`connect`]), what metrics read ([`stats`]) and how
//! other nodes are woken when a job is queued ([`wake`]).

mod buckets;
mod commits;
mod connect;
mod jobs;
mod multipart;
mod objects;
mod params;
mod pipelines;
mod s3_keys;
mod stats;
mod tenants;
mod tokens;
mod uploads;
mod wake;

use std::time::Duration;

use sqlx::AnyPool;

pub use buckets::BucketDelete;
pub use commits::{CommitConnection, Success};
pub use connect::{acquires as db_acquires, Backend};
pub use jobs::{Fenced, NewJob};
pub use multipart::{Multipart, MultipartPart};
pub use objects::{Placed, IN_USE_BATCH};
pub use stats::PoolStats;
pub use uploads::{NewUpload, Upload, UploadPart, UploadState};

#[cfg(test)]
pub(crate) use connect::test_dbs;

use crate::error::Result;

/// Connection pool settings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DbConfig {
    /// Most open connections.
    pub max_connections: u32,
    /// Connections kept open when idle.
    pub min_connections: u32,
    /// Longest wait for a free connection.
    pub acquire_timeout: Duration,
    /// Longest wait for the database when opening (creating the database,
    /// the first connections, the migrations' lock).
    pub connect_timeout: Duration,
    /// Longest a PostgreSQL statement may run (zero: no limit); SQLite has
    /// no server-side limit and waits at most its busy timeout for a lock.
    pub statement_timeout: Duration,
    /// An idle connection is closed after this.
    pub idle_timeout: Duration,
    /// A connection is replaced after this.
    pub max_lifetime: Duration,
}

// The service's settings hold the real defaults; these are for this
// crate's own tests.
#[cfg(test)]
impl Default for DbConfig {
    fn default() -> Self {
        DbConfig {
            max_connections: 8,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
            max_lifetime: Duration::from_secs(1800),
        }
    }
}

/// The metadata database: SQLite or PostgreSQL, chosen by URL, behind
/// one set of portable statements (the few that differ ask
/// [`Db::backend`]).
#[derive(Clone)]
pub struct Db {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    pub(crate) url: std::sync::Arc<str>,
    /// Connections this pool handed out (see [`Db::acquires`]).
    pub(crate) acquired: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

// The URL may hold a password: never printed.
impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens the database at `url` — `sqlite://PATH` (created if missing)
    /// or `postgres://USER@HOST/NAME` (the database is created if missing
    /// and the role may) — and runs the migrations.
    pub async fn open(url: &str, config: &DbConfig) -> Result<Db> {
        connect::open(url, config).await
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Connections this database's pool has handed out: about one per
    /// statement or transaction (what [`db_acquires`] counts over every
    /// pool of the process).
    pub fn acquires(&self) -> u64 {
        self.acquired.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Starts a transaction that will write. On SQLite it takes the write
    /// lock at once (`BEGIN IMMEDIATE`): a deferred transaction that reads
    /// first and writes later fails at once with "database is locked" when
    /// another connection committed in between (its busy timeout does not
    /// apply to that upgrade), which an admin command met under load.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(self.pool.begin_with(self.backend.begin_write()).await?)
    }

    /// What makes text compare byte by byte, as S3 lists keys. SQLite's
    /// default (BINARY) already does; PostgreSQL's default collation is
    /// the database's locale (`en_US`, say, which ignores punctuation and
    /// case at first), so its listings say `COLLATE "C"`.
    pub(crate) fn bytewise(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " COLLATE \"C\"",
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Gives pages that deletes freed back to the file system (SQLite's
    /// incremental vacuum, at most `pages` of them); how many the file
    /// still holds free. PostgreSQL's autovacuum does this work there:
    /// nothing to do.
    pub async fn reclaim_free_pages(&self, pages: u32) -> Result<i64> {
        match self.backend {
            Backend::Sqlite => {
                let mut conn = self.pool.acquire().await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA incremental_vacuum({pages})")))
                    .execute(&mut *conn)
                    .await?;
                let row = sqlx::query("PRAGMA freelist_count").fetch_one(&mut *conn).await?;
                Ok(sqlx::Row::try_get::<i64, _>(&row, 0)?)
            }
            Backend::Postgres => Ok(0),
        }
    }

    /// Pool size and idle connections, for health and metrics.
    pub fn pool_state(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    /// Runs `sql` as it is: for tests that plant a damaged row.
    #[cfg(feature = "testing")]
    pub async fn execute_for_tests(&self, sql: &str) -> Result<u64> {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        Ok(sqlx::query(sql).execute(&self.pool).await?.rows_affected())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Moves the auth revision: running servers then drop their caches and
/// reload limits.
pub(crate) async fn bump_revision(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<()> {
    sqlx::query("UPDATE revisions SET value = value + 1 WHERE name = 'auth'")
        .execute(&mut **tx)
        .await?;
    Ok(())
}
