//! The service's configuration: one [`Config`], filled from defaults <
//! `sluice.toml` < environment (`SLUICE_…`) < flags. The CLI parses flags
//! and environment into a [`Settings`] (every field optional); the file is
//! parsed into another; [`Config::resolve`] layers them over the defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_store::DbConfig;

/// Settings as given by one source: anything left `None` falls through to
/// the next source. The same names are the `sluice.toml` keys.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Directory for the database, the local object store and the master key.
    pub data_dir: Option<PathBuf>,
    /// Metadata database URL (`sqlite://PATH`); overrides the data directory's.
    pub database: Option<String>,
    /// Object store URL (`file:///DIR` or `s3://BUCKET/PREFIX`); overrides the data directory's.
    pub store: Option<String>,
    /// Jobs this node runs at once; 0 serves without running jobs (an alias
    /// of `max_running_jobs` that may be 0).
    pub workers: Option<usize>,
    /// Address to listen on.
    pub listen: Option<SocketAddr>,
    /// File holding the 32-byte server master key.
    pub master_key: Option<PathBuf>,
    /// Tokio worker threads (async I/O and orchestration).
    pub runtime_threads: Option<usize>,
    /// Most threads Tokio keeps for blocking calls (engine runs, file I/O).
    pub max_blocking_threads: Option<usize>,
    /// Stack size of runtime threads, bytes.
    pub thread_stack_size: Option<usize>,
    /// Threads of the engine's CPU pool (compression, encryption, hashing).
    pub cpu_threads: Option<usize>,
    /// Jobs running at once on this node.
    pub max_running_jobs: Option<usize>,
    /// Requests in flight above which queued jobs run one at a time (0: never).
    pub busy_requests: Option<usize>,
    /// MiB of chunk buffers all running jobs share.
    pub engine_memory_mib: Option<usize>,
    /// MiB of opened container indexes kept for range reads.
    pub index_cache_mib: Option<usize>,
    /// Attempts before a transiently failing job fails for good.
    pub job_max_attempts: Option<u32>,
    /// A job's lease, seconds; renewed every third of it while it runs.
    pub job_lease_secs: Option<u64>,
    /// Largest accepted upload, bytes.
    pub max_upload_bytes: Option<u64>,
    /// How long SIGTERM waits for running jobs before releasing them, seconds.
    pub shutdown_grace_secs: Option<u64>,
    /// Seconds between reaper passes.
    pub reaper_interval_secs: Option<u64>,
    /// Seconds a resumable upload may stay open before it expires.
    pub upload_ttl_secs: Option<u64>,
    /// MiB of resumable-upload parts held in memory at once on their way
    /// into an S3 multipart upload.
    pub part_buffer_mib: Option<u64>,
    /// Seconds an unreferenced staged upload or container must be old before the reaper deletes it.
    pub reaper_min_age_secs: Option<u64>,
    /// Seconds a multipart upload's writer may go unheard of before the
    /// reaper aborts the upload (S3).
    pub reaper_multipart_age_secs: Option<u64>,
    /// Most database connections.
    pub db_max_connections: Option<u32>,
    /// Database connections kept open when idle.
    pub db_min_connections: Option<u32>,
    /// Longest wait for a database connection, seconds.
    pub db_acquire_timeout_secs: Option<u64>,
    /// Idle database connections are closed after this, seconds.
    pub db_idle_timeout_secs: Option<u64>,
    /// Database connections are replaced after this, seconds.
    pub db_max_lifetime_secs: Option<u64>,
    /// `text` or `json`.
    pub log_format: Option<String>,
    /// Requests per token for tenants without their own rate, e.g. `100/s` (0: unlimited).
    pub default_rate: Option<String>,
    /// Burst above the rate for tenants without their own.
    pub default_burst: Option<u32>,
    /// Stored-bytes quota for tenants without their own, e.g. `100GiB`.
    pub default_quota: Option<String>,
    /// Queued jobs per tenant without its own limit.
    pub default_max_queued: Option<u64>,
    /// Queued and running jobs over all tenants before uploads get 503.
    pub max_queue_depth: Option<u64>,
    /// Requests handled at once before new ones are shed with 503.
    pub max_in_flight: Option<usize>,
    /// Open connections at most; more wait in the listen backlog.
    pub max_connections: Option<usize>,
    /// Seconds a client has to send a request's headers.
    pub header_timeout_secs: Option<u64>,
    /// Seconds an upload or download may stall (no bytes) before it is cut.
    pub idle_body_timeout_secs: Option<u64>,
    /// Seconds any other request may take.
    pub request_timeout_secs: Option<u64>,
    /// Largest request head (request line and headers), bytes.
    pub max_header_bytes: Option<usize>,
    /// Largest JSON request body, bytes.
    pub max_json_bytes: Option<usize>,
    /// Longest request path and query, bytes.
    pub max_uri_bytes: Option<usize>,
    /// Seconds one object-store call may take.
    pub store_timeout_secs: Option<u64>,
    /// Retries of a failed object-store request.
    pub store_retries: Option<usize>,
    /// Consecutive object-store failures that open its circuit breaker.
    pub breaker_failures: Option<u32>,
    /// Seconds the breaker stays open before it probes the store again.
    pub breaker_open_secs: Option<u64>,
    /// URL of the JWT issuer's JWKS; setting it turns JWT bearer tokens on.
    pub jwt_jwks_url: Option<String>,
    /// Expected JWT issuer (`iss`).
    pub jwt_issuer: Option<String>,
    /// Expected JWT audience (`aud`).
    pub jwt_audience: Option<String>,
    /// JWT claim holding the tenant name.
    pub jwt_tenant_claim: Option<String>,
    /// JWT claim holding the scope.
    pub jwt_scope_claim: Option<String>,
    /// Seconds of clock skew allowed on `exp`/`nbf`.
    pub jwt_leeway_secs: Option<u64>,
    /// Least seconds between two JWKS fetches (an unknown `kid` refetches).
    pub jwks_refresh_secs: Option<u64>,
    /// Longest a JWKS fetch may take, seconds.
    pub jwks_timeout_secs: Option<u64>,
    /// Serve `/metrics` on this address instead of the service port.
    pub metrics_listen: Option<SocketAddr>,
    /// File holding a token that `/metrics` then requires (`Bearer`).
    pub metrics_token_file: Option<PathBuf>,
}

impl Settings {
    /// Reads a `sluice.toml`.
    pub fn from_file(path: &Path) -> anyhow::Result<Settings> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// `self`'s values where set, else `other`'s.
    pub fn or(self, other: Settings) -> Settings {
        macro_rules! pick {
            ($($f:ident),*) => { Settings { $($f: self.$f.or(other.$f)),* } };
        }
        pick!(
            data_dir,
            database,
            store,
            workers,
            listen,
            master_key,
            runtime_threads,
            max_blocking_threads,
            thread_stack_size,
            cpu_threads,
            max_running_jobs,
            busy_requests,
            engine_memory_mib,
            index_cache_mib,
            job_max_attempts,
            job_lease_secs,
            max_upload_bytes,
            shutdown_grace_secs,
            reaper_interval_secs,
            upload_ttl_secs,
            part_buffer_mib,
            reaper_min_age_secs,
            reaper_multipart_age_secs,
            db_max_connections,
            db_min_connections,
            db_acquire_timeout_secs,
            db_idle_timeout_secs,
            db_max_lifetime_secs,
            log_format,
            default_rate,
            default_burst,
            default_quota,
            default_max_queued,
            max_queue_depth,
            max_in_flight,
            max_connections,
            header_timeout_secs,
            idle_body_timeout_secs,
            request_timeout_secs,
            max_header_bytes,
            max_json_bytes,
            max_uri_bytes,
            store_timeout_secs,
            store_retries,
            breaker_failures,
            breaker_open_secs,
            jwt_jwks_url,
            jwt_issuer,
            jwt_audience,
            jwt_tenant_claim,
            jwt_scope_claim,
            jwt_leeway_secs,
            jwks_refresh_secs,
            jwks_timeout_secs,
            metrics_listen,
            metrics_token_file
        )
    }
}

/// The effective configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Metadata database URL (logged with any password masked).
    #[serde(serialize_with = "serialize_redacted_url")]
    pub database: String,
    /// Where containers and staged uploads live.
    pub objects: sluice_store::StoreLocation,
    /// Listen address.
    pub listen: SocketAddr,
    /// Master key file.
    pub master_key: PathBuf,
    /// Tokio worker threads.
    pub runtime_threads: usize,
    /// Tokio blocking threads (at most).
    pub max_blocking_threads: usize,
    /// Runtime thread stack size.
    pub thread_stack_size: usize,
    /// Engine CPU pool threads.
    pub cpu_threads: usize,
    /// Jobs running at once.
    pub max_running_jobs: usize,
    /// Requests in flight above which queued jobs run one at a time.
    pub busy_requests: usize,
    /// Bytes of chunk buffers all running jobs share.
    pub engine_memory: usize,
    /// Bytes of opened container indexes kept for range reads.
    pub index_cache: usize,
    /// Attempts per job.
    pub job_max_attempts: u32,
    /// Lease length.
    pub job_lease: Duration,
    /// Largest upload.
    pub max_upload_bytes: u64,
    /// Shutdown grace period.
    pub shutdown_grace: Duration,
    /// Time between reaper passes.
    pub reaper_interval: Duration,
    /// How long a resumable upload may stay open.
    pub upload_ttl: Duration,
    /// MiB of parts buffered at once for S3 multipart uploads.
    pub part_buffer_mib: u32,
    /// Age before an unreferenced object is reaped.
    pub reaper_min_age: Duration,
    /// Silence after which a multipart upload counts as abandoned.
    pub reaper_multipart_age: Duration,
    /// Database pool.
    pub db: DbConfig,
    /// Log format.
    pub log_format: LogFormat,
    /// Tenant limits' defaults and the global queue cap.
    pub limits: crate::limits::Defaults,
    /// Requests handled at once.
    pub max_in_flight: usize,
    /// Open connections at most.
    pub max_connections: usize,
    /// Time to send a request's headers.
    pub header_timeout: Duration,
    /// Longest stall of a streaming body.
    pub idle_body_timeout: Duration,
    /// Longest non-streaming request.
    pub request_timeout: Duration,
    /// Largest request head.
    pub max_header_bytes: usize,
    /// Largest JSON body.
    pub max_json_bytes: usize,
    /// Longest path and query.
    pub max_uri_bytes: usize,
    /// How object-store calls are protected.
    pub store: sluice_store::Resilience,
    /// JWT bearer tokens, if accepted.
    pub jwt: Option<crate::jwt::JwtConfig>,
    /// Where `/metrics` is served: `None` on the service port.
    pub metrics_listen: Option<SocketAddr>,
    /// File of the token `/metrics` requires, if any (read at start).
    pub metrics_token_file: Option<PathBuf>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Config {
    /// Layers `flags_and_env` over the file (if any) over the defaults,
    /// and checks the result.
    pub fn resolve(flags_and_env: Settings, file: Option<&Path>) -> anyhow::Result<Config> {
        let from_file = match file {
            Some(p) => Settings::from_file(p)?,
            None => Settings::default(),
        };
        let s = flags_and_env.or(from_file);
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let data_dir = s.data_dir.unwrap_or_else(|| PathBuf::from("./sluice-data"));
        let defaults = DbConfig::default();
        let secs = Duration::from_secs;
        let c = Config {
            master_key: s.master_key.unwrap_or_else(|| data_dir.join("master.key")),
            listen: s.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8470))),
            runtime_threads: s.runtime_threads.unwrap_or(cores),
            max_blocking_threads: s.max_blocking_threads.unwrap_or(64),
            thread_stack_size: s.thread_stack_size.unwrap_or(2 << 20),
            cpu_threads: s.cpu_threads.unwrap_or(cores),
            // Small jobs wait on fsyncs more than on the CPU: twice the cores
            // keeps the disk busy; the shared engine budget bounds their memory.
            max_running_jobs: s.workers.or(s.max_running_jobs).unwrap_or((2 * cores).clamp(2, 16)),
            busy_requests: s.busy_requests.unwrap_or(32),
            // Two jobs' worth of the engine's default per-operation budget.
            engine_memory: s
                .engine_memory_mib
                .map(|m| m.saturating_mul(1 << 20))
                .unwrap_or_else(|| 2 * sluice_engine::default_memory_budget(s.cpu_threads.unwrap_or(cores))),
            index_cache: s.index_cache_mib.unwrap_or(16).saturating_mul(1 << 20),
            job_max_attempts: s.job_max_attempts.unwrap_or(5),
            job_lease: secs(s.job_lease_secs.unwrap_or(30)),
            max_upload_bytes: s.max_upload_bytes.unwrap_or(1 << 40),
            shutdown_grace: secs(s.shutdown_grace_secs.unwrap_or(30)),
            reaper_interval: secs(s.reaper_interval_secs.unwrap_or(60).max(1)),
            upload_ttl: secs(s.upload_ttl_secs.unwrap_or(24 * 3600).max(1)),
            part_buffer_mib: u32::try_from(s.part_buffer_mib.unwrap_or(256)).unwrap_or(u32::MAX),
            reaper_min_age: secs(s.reaper_min_age_secs.unwrap_or(3600)),
            reaper_multipart_age: secs(s.reaper_multipart_age_secs.unwrap_or(3600)),
            db: DbConfig {
                max_connections: s.db_max_connections.unwrap_or(defaults.max_connections),
                min_connections: s.db_min_connections.unwrap_or(defaults.min_connections),
                acquire_timeout: s.db_acquire_timeout_secs.map(secs).unwrap_or(defaults.acquire_timeout),
                idle_timeout: s.db_idle_timeout_secs.map(secs).unwrap_or(defaults.idle_timeout),
                max_lifetime: s.db_max_lifetime_secs.map(secs).unwrap_or(defaults.max_lifetime),
            },
            log_format: match s.log_format.as_deref().unwrap_or("text") {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => anyhow::bail!("log format {other:?}: expected text or json"),
            },
            limits: crate::limits::Defaults {
                rate_per_sec: match s.default_rate.as_deref() {
                    Some(r) => crate::limits::parse_rate(r).map_err(|e| anyhow::anyhow!("default rate: {e}"))?,
                    None => 1000.0,
                },
                burst: s.default_burst.unwrap_or(2000),
                quota_bytes: match s.default_quota.as_deref() {
                    Some("none") | None => None,
                    Some(q) => Some(
                        sluice_engine::format::parse_size(q)
                            .map_err(|e| anyhow::anyhow!("default quota {q:?}: {e}"))?,
                    ),
                },
                max_queued: s.default_max_queued.unwrap_or(10_000),
                max_queue_depth: s.max_queue_depth.unwrap_or(100_000),
            },
            max_in_flight: s.max_in_flight.unwrap_or(1024),
            max_connections: s.max_connections.unwrap_or(4096),
            header_timeout: secs(s.header_timeout_secs.unwrap_or(10)),
            idle_body_timeout: secs(s.idle_body_timeout_secs.unwrap_or(60)),
            request_timeout: secs(s.request_timeout_secs.unwrap_or(30)),
            max_header_bytes: s.max_header_bytes.unwrap_or(16 << 10),
            max_json_bytes: s.max_json_bytes.unwrap_or(64 << 10),
            max_uri_bytes: s.max_uri_bytes.unwrap_or(8 << 10),
            store: sluice_store::Resilience {
                timeout: secs(s.store_timeout_secs.unwrap_or(30).max(1)),
                retries: s.store_retries.unwrap_or(3),
                breaker_failures: s.breaker_failures.unwrap_or(5).max(1),
                breaker_open: secs(s.breaker_open_secs.unwrap_or(5).max(1)),
            },
            jwt: match s.jwt_jwks_url {
                None => None,
                Some(url) => Some(crate::jwt::JwtConfig {
                    jwks_url: url,
                    issuer: s
                        .jwt_issuer
                        .ok_or_else(|| anyhow::anyhow!("a JWKS URL needs the JWT issuer (jwt_issuer)"))?,
                    audience: s
                        .jwt_audience
                        .ok_or_else(|| anyhow::anyhow!("a JWKS URL needs the JWT audience (jwt_audience)"))?,
                    tenant_claim: s.jwt_tenant_claim.unwrap_or_else(|| "tenant".into()),
                    scope_claim: s.jwt_scope_claim.unwrap_or_else(|| "scope".into()),
                    leeway: secs(s.jwt_leeway_secs.unwrap_or(30)),
                    refresh: secs(s.jwks_refresh_secs.unwrap_or(60)),
                    timeout: secs(s.jwks_timeout_secs.unwrap_or(5).max(1)),
                }),
            },
            metrics_listen: s.metrics_listen,
            metrics_token_file: s.metrics_token_file,
            database: match s.database {
                Some(url) => check_database_url(&url)?,
                None => format!("sqlite://{}", data_dir.join("sluice.db").display()),
            },
            objects: match s.store.as_deref() {
                Some(url) => sluice_store::StoreLocation::parse(url).map_err(|e| anyhow::anyhow!("--store: {e}"))?,
                None => sluice_store::StoreLocation::Local(data_dir.join("store")),
            },
            data_dir,
        };
        c.check()?;
        Ok(c)
    }

    fn check(&self) -> anyhow::Result<()> {
        let positive = [
            ("runtime threads", self.runtime_threads),
            ("max blocking threads", self.max_blocking_threads),
            ("cpu threads", self.cpu_threads),
            ("database max connections", self.db.max_connections as usize),
        ];
        if self.max_running_jobs > 4096 {
            anyhow::bail!(
                "max running jobs (workers) must be 0..=4096, got {}",
                self.max_running_jobs
            );
        }
        for (name, v) in positive {
            if v == 0 || v > 4096 {
                anyhow::bail!("{name} must be 1..=4096, got {v}");
            }
        }
        if self.max_in_flight == 0 || self.max_connections == 0 {
            anyhow::bail!("max in-flight requests and max connections must be at least 1");
        }
        if self.header_timeout.is_zero() || self.idle_body_timeout.is_zero() || self.request_timeout.is_zero() {
            anyhow::bail!("timeouts must be at least 1 second");
        }
        if self.max_header_bytes < 1024 || self.max_json_bytes < 1024 || self.max_uri_bytes < 1024 {
            anyhow::bail!("max header, JSON and URI bytes must be at least 1024");
        }
        if self.engine_memory < (16 << 20) {
            anyhow::bail!("engine memory must be at least 16 MiB");
        }
        if self.thread_stack_size < (64 << 10) {
            anyhow::bail!("thread stack size must be at least 64 KiB");
        }
        if self.job_max_attempts == 0 || self.job_lease < Duration::from_secs(3) {
            anyhow::bail!("job max attempts must be at least 1 and the lease at least 3 s");
        }
        if !(64..=65_536).contains(&self.part_buffer_mib) {
            anyhow::bail!(
                "part buffer must be 64 to 65536 MiB (the largest part is 64 MiB), got {}",
                self.part_buffer_mib
            );
        }
        if self.db.min_connections > self.db.max_connections {
            anyhow::bail!("database min connections exceed max connections");
        }
        Ok(())
    }
}

/// `url` with the password masked, in its user part (`user:PASSWORD@`)
/// or its query (`password=PASSWORD`), for logs.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        let authority_end = out[rest..].find('/').map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@').map(|i| rest + i) {
            if let Some(colon) = out[rest..at].find(':').map(|i| rest + i) {
                out.replace_range(colon + 1..at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let masked: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{head}{}", masked.join("&"));
    }
    out
}

fn serialize_redacted_url<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(url))
}

/// Checks a `--database` URL's scheme (the database itself is opened
/// later). The URL is not echoed back: it may hold a password.
pub fn check_database_url(url: &str) -> anyhow::Result<String> {
    match sluice_store::Backend::of_url(url) {
        Ok(_) => Ok(url.to_string()),
        Err(_) => anyhow::bail!("--database: expected sqlite://PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/NAME"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_masked_in_logs() {
        assert_eq!(
            redact_url("postgres://u:s3cret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
        assert_eq!(
            redact_url("postgres://u@h/db?password=s3cret&sslmode=require"),
            "postgres://u@h/db?password=***&sslmode=require"
        );
        assert_eq!(redact_url("sqlite:///a/b.db"), "sqlite:///a/b.db");
        let c = Config::resolve(
            Settings {
                database: Some("postgres://u:s3cret@h/db".into()),
                ..Settings::default()
            },
            None,
        )
        .unwrap();
        assert!(!serde_json::to_string(&c).unwrap().contains("s3cret"));
    }

    #[test]
    fn flags_over_env_over_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sluice.toml");
        std::fs::write(
            &file,
            "cpu_threads = 3\nmax_running_jobs = 7\nlisten = \"127.0.0.1:9000\"\n",
        )
        .unwrap();
        let flags = Settings {
            cpu_threads: Some(5),
            ..Settings::default()
        };
        let c = Config::resolve(flags, Some(&file)).unwrap();
        assert_eq!(c.cpu_threads, 5, "flag wins over file");
        assert_eq!(c.max_running_jobs, 7, "file wins over default");
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.data_dir, PathBuf::from("./sluice-data"), "default");
        std::fs::write(&file, "no_such_key = 1\n").unwrap();
        let err = Config::resolve(Settings::default(), Some(&file)).unwrap_err();
        assert!(err.to_string().contains("no_such_key"), "{err}");
        let bad = Settings {
            runtime_threads: Some(0),
            ..Settings::default()
        };
        assert!(Config::resolve(bad, None).is_err());
    }

    #[test]
    fn database_store_and_workers() {
        let c = Config::resolve(Settings::default(), None).unwrap();
        assert_eq!(c.database, "sqlite://./sluice-data/sluice.db");
        assert_eq!(
            c.objects,
            sluice_store::StoreLocation::Local(PathBuf::from("./sluice-data/store"))
        );
        let s = Settings {
            database: Some("sqlite:///srv/meta.db".into()),
            store: Some("s3://bucket/some/prefix".into()),
            workers: Some(0),
            max_running_jobs: Some(7),
            ..Settings::default()
        };
        let c = Config::resolve(s, None).unwrap();
        assert_eq!(c.database, "sqlite:///srv/meta.db");
        assert_eq!(
            c.objects,
            sluice_store::StoreLocation::S3 {
                bucket: "bucket".into(),
                prefix: "some/prefix".into()
            }
        );
        assert_eq!(c.max_running_jobs, 0, "--workers wins over --max-running-jobs");
        for bad in ["mysql://x", "postgresql", "postgres:/x"] {
            let s = Settings {
                database: Some(bad.into()),
                ..Settings::default()
            };
            assert!(Config::resolve(s, None).is_err(), "{bad}");
        }
        for bad in ["ftp://x", "file://relative", "s3://", "s3:///prefix"] {
            let s = Settings {
                store: Some(bad.into()),
                ..Settings::default()
            };
            assert!(Config::resolve(s, None).is_err(), "{bad}");
        }
    }
}
