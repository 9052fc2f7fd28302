//! Opening the metadata database: the backend named by the URL, its pool,
//! per-connection settings, and the migrations (one set of files for both
//! databases).

use std::borrow::Cow;
use std::sync::Arc;

use sqlx::any::{install_default_drivers, AnyPoolOptions};
use sqlx::migrate::{MigrateDatabase, Migration, Migrator};
use sqlx::{Any, Executor, SqlSafeStr};

use super::{Db, DbConfig};
use crate::error::{Error, Result};

/// The SQL database behind [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One file, one writer at a time: one machine.
    Sqlite,
    /// A server several nodes share.
    Postgres,
}

impl Backend {
    /// The backend a database URL names.
    pub fn of_url(url: &str) -> Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(Error::Config(
                "database URL: expected sqlite://PATH or postgres://USER@HOST[:PORT]/NAME".into(),
            ))
        }
    }

    /// Its name, for logs and health.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// An SQL expression for the database server's clock in unix
    /// milliseconds, fixed for the statement (so a comparison with it can
    /// use an index). Times that nodes compare with each other (when a
    /// container was retired, when a job is due, until when a lease holds)
    /// are taken from it, so a node whose own clock is off neither deletes a
    /// container early, nor delays the jobs it queues, nor writes leases
    /// that other nodes see as long expired.
    pub(crate) fn now_ms_sql(self) -> &'static str {
        match self {
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS BIGINT)",
            Backend::Postgres => "CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000 AS BIGINT)",
        }
    }

    /// The statement that begins a transaction that will write (see
    /// `Db::begin_write`: SQLite takes its write lock at once).
    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }
}

/// SQLite settings every connection needs: pages freed by deletes given
/// back to the file system when the reaper asks (incremental vacuum: a
/// new database only; small objects' containers live in rows), WAL, an
/// accepted upload's row durable across a power loss (not only a crash),
/// a wait instead of an error when another writer holds the lock, and
/// foreign keys enforced.
const SQLITE_PRAGMAS: &str = "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;";

/// Connections handed out by every pool of this process.
static ACQUIRES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Connections handed out so far by every database pool of this process:
/// about one per statement or transaction, so its rate is the database
/// load this process makes.
pub fn acquires() -> u64 {
    ACQUIRES.load(std::sync::atomic::Ordering::Relaxed)
}

pub(crate) async fn open(url: &str, config: &DbConfig) -> Result<Db> {
    install_default_drivers();
    let backend = Backend::of_url(url)?;
    let connect_url = match backend {
        Backend::Sqlite => sqlite_create_url(url),
        Backend::Postgres => url.to_string(),
    };
    let within = |what: &'static str| {
        let limit = config.connect_timeout;
        move |_| {
            Error::Config(format!(
                "database: {what} took longer than the connect timeout ({limit:?})"
            ))
        }
    };
    match backend {
        Backend::Sqlite => create_sqlite_parent(url).await?,
        Backend::Postgres => tokio::time::timeout(config.connect_timeout, create_postgres_database(&connect_url))
            .await
            .map_err(within("reaching the server"))??,
    }
    let statement_timeout_ms = config.statement_timeout.as_millis();
    let acquired = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let opening = AnyPoolOptions::new()
        .max_connections(config.max_connections.max(1))
        .min_connections(config.min_connections)
        .acquire_timeout(config.acquire_timeout)
        .idle_timeout(config.idle_timeout)
        .max_lifetime(config.max_lifetime)
        // A connection a PostgreSQL server dropped (a restart) is found out
        // on checkout, not by the statement that needed it. An SQLite
        // connection is a file held open by this process: testing it would
        // only cost a round trip to its thread per statement.
        .test_before_acquire(backend == Backend::Postgres)
        .before_acquire({
            let acquired = Arc::clone(&acquired);
            move |_conn, _meta| {
                let acquired = Arc::clone(&acquired);
                Box::pin(async move {
                    ACQUIRES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    acquired.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    Ok(true)
                })
            }
        })
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                match backend {
                    Backend::Sqlite => {
                        conn.execute(SQLITE_PRAGMAS).await?;
                    }
                    Backend::Postgres => {
                        let set = format!("SET statement_timeout = {statement_timeout_ms}");
                        conn.execute(sqlx::AssertSqlSafe(set).into_sql_str()).await?;
                    }
                }
                Ok(())
            })
        })
        .connect(&connect_url);
    let pool = tokio::time::timeout(config.connect_timeout, opening)
        .await
        .map_err(within("connecting"))??;
    migrator(backend).run(&pool).await?;
    Ok(Db {
        pool,
        backend,
        url: Arc::from(connect_url),
        acquired,
    })
}

/// `sqlite://PATH` opened read-write and created if missing.
fn sqlite_create_url(url: &str) -> String {
    if url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// Creates the directory of a `sqlite://PATH` database if missing (SQLite
/// creates the file, not its directory).
async fn create_sqlite_parent(url: &str) -> Result<()> {
    let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(':') {
        return Ok(());
    }
    if let Some(parent) = std::path::Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        tokio::fs::create_dir_all(parent).await.map_err(|e| {
            Error::Config(format!(
                "{}: cannot create the database's directory: {e}",
                parent.display()
            ))
        })?;
    }
    Ok(())
}

/// Creates the database a `postgres://` URL names if it does not exist (as
/// SQLite creates its file), when the role may; if it may not, connecting
/// says so.
async fn create_postgres_database(url: &str) -> Result<()> {
    match Any::database_exists(url).await {
        Ok(true) => Ok(()),
        Ok(false) => match Any::create_database(url).await {
            Ok(()) => Ok(()),
            // Another node created it first.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => Ok(()),
            Err(e) => Err(e.into()),
        },
        // No access to the maintenance database: the named one may exist.
        Err(_) => Ok(()),
    }
}

/// The migrations, the same files for both databases. They are written in
/// the SQL both speak; the one type name SQLite accepts and PostgreSQL
/// spells differently (`BLOB`, PostgreSQL's `BYTEA`) is translated, and
/// each migration keeps its file's checksum, so a database records the
/// same history whichever backend ran it.
pub(crate) fn migrator(backend: Backend) -> Migrator {
    let files = sqlx::migrate!("./migrations");
    let migrations = files
        .iter()
        .map(|m| match backend {
            Backend::Sqlite => m.clone(),
            Backend::Postgres => Migration {
                sql: sqlx::AssertSqlSafe(postgres_dialect(m.sql.as_str())).into_sql_str(),
                checksum: Cow::Owned(m.checksum.to_vec()),
                ..m.clone()
            },
        })
        .collect();
    Migrator::with_migrations(migrations)
}

fn postgres_dialect(sql: &str) -> String {
    sql.replace(" BLOB ", " BYTEA ").replace(" BLOB;", " BYTEA;")
}

/// A database for one test: SQLite in a temporary directory, or, when
/// `SLUICE_TEST_POSTGRES` names a server (`postgres://USER@HOST:PORT`), a
/// fresh database on it.
#[cfg(test)]
pub(crate) async fn test_dbs() -> Vec<(Db, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let mut dbs = vec![(Db::open(&url, &DbConfig::default()).await.unwrap(), Some(dir))];
    let base = std::env::var("SLUICE_TEST_POSTGRES");
    // The run that provides PostgreSQL says so: then a missing server is
    // a failure, not a silent SQLite-only pass.
    let required = std::env::var("SLUICE_TEST_REQUIRE").is_ok_and(|r| r.split(',').any(|n| n == "postgres"));
    assert!(
        base.is_ok() || !required,
        "SLUICE_TEST_REQUIRE names postgres but SLUICE_TEST_POSTGRES is not set"
    );
    if let Ok(base) = base {
        let name = format!("t_{}", crate::new_id().unwrap());
        let url = format!("{}/{name}", base.trim_end_matches('/'));
        dbs.push((Db::open(&url, &DbConfig::default()).await.unwrap(), None));
    }
    dbs
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PostgreSQL stops a statement past the statement timeout; a server
    /// that does not answer is given up on after the connect timeout.
    #[tokio::test]
    async fn database_time_limits_hold() {
        if let Ok(base) = std::env::var("SLUICE_TEST_POSTGRES") {
            let url = format!("{}/t_{}", base.trim_end_matches('/'), crate::new_id().unwrap());
            let config = DbConfig {
                statement_timeout: std::time::Duration::from_secs(1),
                ..DbConfig::default()
            };
            let db = Db::open(&url, &config).await.unwrap();
            let slept = sqlx::query("SELECT pg_sleep(3)").execute(&db.pool).await;
            let e = slept.expect_err("the statement outlived its timeout");
            assert!(e.to_string().contains("statement timeout"), "{e}");
        }
        // A listener that accepts but never answers: the connect timeout.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let config = DbConfig {
            connect_timeout: std::time::Duration::from_millis(500),
            ..DbConfig::default()
        };
        let started = std::time::Instant::now();
        let opened = Db::open(&format!("postgres://u@127.0.0.1:{port}/db"), &config).await;
        assert!(opened.is_err());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        drop(silent);
    }

    #[test]
    fn urls_name_their_backend() {
        assert_eq!(Backend::of_url("sqlite:///a/b.db").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::of_url("postgres://u@h/db").unwrap(), Backend::Postgres);
        assert_eq!(Backend::of_url("postgresql://u@h/db").unwrap(), Backend::Postgres);
        assert!(Backend::of_url("mysql://u@h/db").is_err());
        assert_eq!(sqlite_create_url("sqlite:///a.db"), "sqlite:///a.db?mode=rwc");
        assert_eq!(sqlite_create_url("sqlite:///a.db?mode=ro"), "sqlite:///a.db?mode=ro");
    }

    #[test]
    fn postgres_migrations_differ_only_in_type_names_and_keep_checksums() {
        let lite = migrator(Backend::Sqlite);
        let pg = migrator(Backend::Postgres);
        assert_eq!(lite.iter().count(), pg.iter().count());
        for (a, b) in lite.iter().zip(pg.iter()) {
            assert_eq!(a.checksum, b.checksum);
            assert!(!b.sql.as_str().contains(" BLOB ") && !b.sql.as_str().contains(" BLOB;"));
            assert_eq!(postgres_dialect(a.sql.as_str()), b.sql.as_str());
            let words = |s: &str| s.split_whitespace().count();
            assert_eq!(words(a.sql.as_str()), words(b.sql.as_str()), "only type names differ");
        }
        assert!(pg.iter().any(|m| m.sql.as_str().contains("BYTEA")));
    }

    #[tokio::test]
    async fn sqlite_connections_get_wal_full_sync_and_foreign_keys() {
        use sqlx::Row;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = Db::open(&url, &DbConfig::default()).await.unwrap();
        let mut conn = db.pool.acquire().await.unwrap();
        let mode: String = sqlx::query("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
            .get(0);
        let sync: i64 = sqlx::query("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
            .get(0);
        let fk: i64 = sqlx::query("PRAGMA foreign_keys")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
            .get(0);
        let vacuum: i64 = sqlx::query("PRAGMA auto_vacuum")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
            .get(0);
        assert_eq!((mode.as_str(), sync, fk, vacuum), ("wal", 2, 1, 2));
    }

    #[tokio::test]
    async fn a_sqlite_database_s_directory_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("a/b/t.db").display());
        Db::open(&url, &DbConfig::default())
            .await
            .unwrap()
            .ping()
            .await
            .unwrap();
        assert!(dir.path().join("a/b/t.db").exists());
    }

    #[tokio::test]
    async fn every_backend_opens_twice_and_answers() {
        for (db, _dir) in test_dbs().await {
            db.ping().await.unwrap();
            // Opening again finds the migrations applied.
            let again = Db::open(&db.url, &DbConfig::default()).await.unwrap();
            again.ping().await.unwrap();
        }
    }
}
