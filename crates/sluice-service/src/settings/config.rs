//! [`Config`]: the settings resolved (flags and environment > file >
//! defaults), checked, and typed as the service uses them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use sluice_store::{DbConfig, Resilience, StoreLocation};

use super::{defaults, Origins, Settings, SettingsError};
use crate::auth::jwt::JwtConfig;
use crate::tenants::limits::{parse_rate, Defaults};

/// The effective configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Metadata database URL (logged with any password masked).
    #[serde(serialize_with = "serialize_redacted_url")]
    pub database: String,
    /// Where containers and staged uploads live.
    pub objects: StoreLocation,
    /// Listen address of the native API.
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
    pub threads: usize,
    /// Jobs running at once on this node (0: none).
    pub max_running_jobs: usize,
    /// Requests in flight above which queued jobs run one at a time.
    pub busy_requests: usize,
    /// Bytes of chunk buffers all running jobs share.
    pub max_memory: usize,
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
    /// Largest upload stored on arrival, kept in its row (0: none).
    pub small_object_max: u64,
    /// Most successes one group commit records.
    pub commit_batch_max: usize,
    /// How long a group commit waits for more after the first.
    pub commit_delay: Duration,
    /// Age before an unreferenced object is reaped.
    pub reaper_min_age: Duration,
    /// Silence after which a multipart upload counts as abandoned.
    pub reaper_multipart_age: Duration,
    /// How long a replaced or deleted object's container stays readable.
    pub retired_grace: Duration,
    /// Database pool.
    pub db: DbConfig,
    /// Log format.
    pub log_format: LogFormat,
    /// Tenant limits' defaults and the global queue cap.
    pub limits: Defaults,
    /// Requests handled at once.
    pub max_in_flight: usize,
    /// Open connections at most.
    pub max_connections: usize,
    /// Transfers in flight on this node at most (more: 503).
    pub max_transfers: usize,
    /// Transfers in flight per tenant at most (more: 429).
    pub max_transfers_per_tenant: usize,
    /// Bytes downloads may decode ahead of their clients, all together.
    pub transfer_memory: usize,
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
    pub store: Resilience,
    /// JWT bearer tokens, if accepted.
    pub jwt: Option<JwtConfig>,
    /// Where `/metrics` is served: `None` on the service port.
    pub metrics_listen: Option<SocketAddr>,
    /// Where the S3-compatible API is served, if anywhere.
    pub s3_listen: Option<SocketAddr>,
    /// The domain under which S3 buckets are also addressed as
    /// `BUCKET.DOMAIN` (virtual-hosted style), if any.
    pub s3_domain: Option<String>,
    /// File of the token `/metrics` requires, if any (read at start).
    pub metrics_token_file: Option<PathBuf>,
    /// Where each setting came from, for messages.
    #[serde(skip)]
    pub origins: Origins,
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
    /// Layers `given` (flags and environment, whose `origins` say which
    /// was which) over its config file (if it names one) over the
    /// defaults, and checks the result.
    pub fn resolve(given: Settings, mut origins: Origins) -> Result<Config, SettingsError> {
        let from_file = match &given.config {
            Some(path) => {
                let file = Settings::from_file(path)?;
                origins.fill_from_file(file.keys_set(), path);
                file
            }
            None => Settings::default(),
        };
        let layered = given.or(from_file).or(defaults::fixed());
        let s = layered.clone().or(defaults::computed(&layered));
        Config::from_settings(s, origins)
    }

    /// The configuration of nothing but defaults.
    pub fn defaults() -> Result<Config, SettingsError> {
        Config::resolve(Settings::default(), Origins::default())
    }

    fn from_settings(s: Settings, origins: Origins) -> Result<Config, SettingsError> {
        let invalid = |key: &str, problem: String| SettingsError::Invalid {
            setting: origins.name(key),
            problem,
        };
        macro_rules! get {
            ($key:ident) => {
                s.$key
                    .clone()
                    .ok_or_else(|| invalid(stringify!($key), "has no value".into()))?
            };
        }
        let secs = Duration::from_secs;
        let data_dir: PathBuf = get!(data_dir);
        let c = Config {
            database: match &s.database {
                Some(url) => check_database_url(url).map_err(|p| invalid("database", p))?,
                None => format!("sqlite://{}", data_dir.join("sluice.db").display()),
            },
            objects: match &s.store {
                Some(url) => StoreLocation::parse(url).map_err(|e| invalid("store", e.to_string()))?,
                None => StoreLocation::Local(data_dir.join("store")),
            },
            listen: get!(listen),
            master_key: get!(master_key),
            runtime_threads: get!(runtime_threads),
            max_blocking_threads: get!(max_blocking_threads),
            thread_stack_size: get!(thread_stack_size),
            threads: get!(threads),
            max_running_jobs: get!(max_running_jobs),
            busy_requests: get!(busy_requests),
            max_memory: get!(max_memory).saturating_mul(1 << 20),
            index_cache: get!(index_cache_mib).saturating_mul(1 << 20),
            job_max_attempts: get!(job_max_attempts),
            job_lease: secs(get!(job_lease_secs)),
            max_upload_bytes: get!(max_upload_bytes),
            shutdown_grace: secs(get!(shutdown_grace_secs)),
            reaper_interval: secs(get!(reaper_interval_secs).max(1)),
            upload_ttl: secs(get!(upload_ttl_secs).max(1)),
            part_buffer_mib: u32::try_from(get!(part_buffer_mib)).unwrap_or(u32::MAX),
            small_object_max: get!(small_object_max),
            commit_batch_max: get!(commit_batch_max),
            commit_delay: Duration::from_micros(get!(commit_delay_us)),
            reaper_min_age: secs(get!(reaper_min_age_secs)),
            reaper_multipart_age: secs(get!(reaper_multipart_age_secs)),
            retired_grace: secs(get!(retired_grace_secs)),
            db: DbConfig {
                max_connections: get!(db_max_connections),
                min_connections: get!(db_min_connections),
                acquire_timeout: secs(get!(db_acquire_timeout_secs)),
                connect_timeout: secs(get!(db_connect_timeout_secs).max(1)),
                statement_timeout: secs(get!(db_statement_timeout_secs)),
                idle_timeout: secs(get!(db_idle_timeout_secs)),
                max_lifetime: secs(get!(db_max_lifetime_secs)),
            },
            log_format: match get!(log_format).as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => return Err(invalid("log_format", format!("{other:?}: expected text or json"))),
            },
            limits: Defaults {
                rate_per_sec: {
                    let rate = get!(default_rate);
                    parse_rate(&rate).map_err(|p| invalid("default_rate", format!("{rate:?}: {p}")))?
                },
                burst: get!(default_burst),
                quota_bytes: match get!(default_quota).as_str() {
                    "none" => None,
                    q => Some(
                        sluice_engine::format::parse_size(q)
                            .map_err(|e| invalid("default_quota", format!("{q:?}: {e}")))?,
                    ),
                },
                max_queued: get!(default_max_queued),
                max_queue_depth: get!(max_queue_depth),
            },
            max_in_flight: get!(max_in_flight),
            max_connections: get!(max_connections),
            max_transfers: get!(max_transfers),
            max_transfers_per_tenant: get!(max_transfers_per_tenant),
            transfer_memory: get!(transfer_memory_mib).saturating_mul(1 << 20),
            header_timeout: secs(get!(header_timeout_secs)),
            idle_body_timeout: secs(get!(idle_body_timeout_secs)),
            request_timeout: secs(get!(request_timeout_secs)),
            max_header_bytes: get!(max_header_bytes),
            max_json_bytes: get!(max_json_bytes),
            max_uri_bytes: get!(max_uri_bytes),
            store: Resilience {
                timeout: secs(get!(store_timeout_secs).max(1)),
                retries: get!(store_retries),
                breaker_failures: get!(breaker_failures).max(1),
                breaker_open: secs(get!(breaker_open_secs).max(1)),
            },
            jwt: match &s.jwt_jwks_url {
                None => None,
                Some(url) => Some(JwtConfig {
                    jwks_url: url.clone(),
                    issuer: s.jwt_issuer.clone().ok_or_else(|| {
                        invalid(
                            "jwt_jwks_url",
                            "a JWKS URL needs the JWT issuer (jwt_issuer) too".into(),
                        )
                    })?,
                    audience: s.jwt_audience.clone().ok_or_else(|| {
                        invalid(
                            "jwt_jwks_url",
                            "a JWKS URL needs the JWT audience (jwt_audience) too".into(),
                        )
                    })?,
                    tenant_claim: get!(jwt_tenant_claim),
                    scope_claim: get!(jwt_scope_claim),
                    leeway: secs(get!(jwt_leeway_secs)),
                    refresh: secs(get!(jwks_refresh_secs)),
                    timeout: secs(get!(jwks_timeout_secs).max(1)),
                }),
            },
            metrics_listen: s.metrics_listen,
            s3_listen: get!(s3_listen).addr(),
            s3_domain: s
                .s3_domain
                .clone()
                .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase()),
            metrics_token_file: s.metrics_token_file.clone(),
            data_dir,
            origins: origins.clone(),
        };
        c.check()?;
        Ok(c)
    }

    /// The error for `key`, named as it was given.
    pub fn invalid(&self, key: &str, problem: impl Into<String>) -> SettingsError {
        SettingsError::Invalid {
            setting: self.origins.name(key),
            problem: problem.into(),
        }
    }

    fn check(&self) -> Result<(), SettingsError> {
        let in_range = |key: &str, v: usize, low: usize, high: usize| {
            if (low..=high).contains(&v) {
                Ok(())
            } else {
                Err(self.invalid(key, format!("must be {low} to {high}, got {v}")))
            }
        };
        in_range("max_running_jobs", self.max_running_jobs, 0, 4096)?;
        in_range("runtime_threads", self.runtime_threads, 1, 4096)?;
        in_range("max_blocking_threads", self.max_blocking_threads, 1, 4096)?;
        in_range("threads", self.threads, 1, 4096)?;
        in_range("db_max_connections", self.db.max_connections as usize, 1, 4096)?;
        in_range(
            "db_min_connections",
            self.db.min_connections as usize,
            0,
            self.db.max_connections as usize,
        )?;
        in_range("max_in_flight", self.max_in_flight, 1, usize::MAX)?;
        in_range("max_connections", self.max_connections, 1, usize::MAX)?;
        in_range("max_transfers", self.max_transfers, 1, usize::MAX)?;
        in_range("max_transfers_per_tenant", self.max_transfers_per_tenant, 1, usize::MAX)?;
        if let Some(d) = &self.s3_domain {
            let label_ok =
                |l: &str| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if d.len() > 253 || !d.split('.').all(label_ok) {
                return Err(self.invalid(
                    "s3_domain",
                    format!("{d:?} is not a domain name (labels of letters, digits and '-', without a port)"),
                ));
            }
        }
        for (key, t) in [
            ("header_timeout_secs", self.header_timeout),
            ("idle_body_timeout_secs", self.idle_body_timeout),
            ("request_timeout_secs", self.request_timeout),
        ] {
            if t.is_zero() {
                return Err(self.invalid(key, "must be at least 1 second"));
            }
        }
        in_range("max_header_bytes", self.max_header_bytes, 1024, usize::MAX)?;
        in_range("max_json_bytes", self.max_json_bytes, 1024, usize::MAX)?;
        in_range("max_uri_bytes", self.max_uri_bytes, 1024, usize::MAX)?;
        in_range("max_memory", self.max_memory >> 20, 16, usize::MAX >> 20)?;
        in_range("thread_stack_size", self.thread_stack_size, 64 << 10, usize::MAX)?;
        in_range("job_max_attempts", self.job_max_attempts as usize, 1, usize::MAX)?;
        in_range("job_lease_secs", self.job_lease.as_secs() as usize, 3, usize::MAX)?;
        in_range("part_buffer_mib", self.part_buffer_mib as usize, 64, 65_536)?;
        in_range("small_object_max", self.small_object_max as usize, 0, 16 << 20)?;
        in_range("commit_batch_max", self.commit_batch_max, 1, 10_000)?;
        in_range("commit_delay_us", self.commit_delay.as_micros() as usize, 0, 1_000_000)?;
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

/// Checks a database URL's scheme (the database itself is opened later).
/// The URL is not echoed back: it may hold a password.
fn check_database_url(url: &str) -> Result<String, String> {
    match sluice_store::Backend::of_url(url) {
        Ok(_) => Ok(url.to_string()),
        Err(_) => Err("expected sqlite://PATH or postgres://USER[:PASSWORD]@HOST[:PORT]/NAME".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Origin;

    fn resolve(s: Settings) -> Result<Config, SettingsError> {
        Config::resolve(s, Origins::default())
    }

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
        let c = resolve(Settings {
            database: Some("postgres://u:s3cret@h/db".into()),
            ..Settings::default()
        })
        .unwrap();
        assert!(!serde_json::to_string(&c).unwrap().contains("s3cret"));
    }

    #[test]
    fn flags_over_env_over_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sluice.toml");
        std::fs::write(
            &file,
            "cpu_threads = 3\nmax_running_jobs = 7\nlisten = \"127.0.0.1:9000\"\nlog_format = \"xml\"\n",
        )
        .unwrap();
        let flags = Settings {
            threads: Some(5),
            log_format: Some("json".into()),
            config: Some(file.clone()),
            ..Settings::default()
        };
        let c = resolve(flags).unwrap();
        assert_eq!(c.threads, 5, "flag wins over file");
        assert_eq!(c.max_running_jobs, 7, "file wins over default");
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.data_dir, PathBuf::from("./sluice-data"), "default");
        assert_eq!(c.master_key, PathBuf::from("./sluice-data/master.key"));
        // A bad value from the file is named as the file's key.
        let err = resolve(Settings {
            config: Some(file.clone()),
            ..Settings::default()
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("log_format in {}: \"xml\": expected text or json", file.display())
        );
        std::fs::write(&file, "no_such_key = 1\n").unwrap();
        let err = resolve(Settings {
            config: Some(file),
            ..Settings::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("no_such_key"), "{err}");
        // A bad flag is named as the flag.
        let mut origins = Origins::default();
        origins.set("runtime_threads", Origin::Flag);
        let bad = Settings {
            runtime_threads: Some(0),
            ..Settings::default()
        };
        let err = Config::resolve(bad, origins).unwrap_err();
        assert_eq!(err.to_string(), "--runtime-threads: must be 1 to 4096, got 0");
    }

    #[test]
    fn database_store_and_workers() {
        let c = Config::defaults().unwrap();
        assert_eq!(c.database, "sqlite://./sluice-data/sluice.db");
        assert_eq!(c.objects, StoreLocation::Local(PathBuf::from("./sluice-data/store")));
        let c = resolve(Settings {
            database: Some("sqlite:///srv/meta.db".into()),
            store: Some("s3://bucket/some/prefix".into()),
            max_running_jobs: Some(0),
            ..Settings::default()
        })
        .unwrap();
        assert_eq!(c.database, "sqlite:///srv/meta.db");
        assert_eq!(
            c.objects,
            StoreLocation::S3 {
                bucket: "bucket".into(),
                prefix: "some/prefix".into()
            }
        );
        assert_eq!(c.max_running_jobs, 0);
        for bad in ["mysql://x", "postgresql", "postgres:/x"] {
            let err = resolve(Settings {
                database: Some(bad.into()),
                ..Settings::default()
            })
            .unwrap_err();
            assert!(
                err.to_string().starts_with("the default database") || err.to_string().contains("database"),
                "{err}"
            );
        }
        for bad in ["ftp://x", "file://relative", "s3://", "s3:///prefix"] {
            let mut origins = Origins::default();
            origins.set("store", Origin::Env("SLUICE_STORE".into()));
            let err = Config::resolve(
                Settings {
                    store: Some(bad.into()),
                    ..Settings::default()
                },
                origins,
            )
            .unwrap_err();
            assert!(err.to_string().starts_with("SLUICE_STORE: "), "{bad}: {err}");
        }
    }
}
