//! The service's settings, each written once.
//!
//! - [`Settings`] is at the same time the command line of `sluice serve`,
//!   `sluice worker` and `sluice admin` (clap, flattened into each, with a
//!   `SLUICE_…` environment variable per flag) and the keys of
//!   `sluice.toml` (serde). One name per knob; older spellings are aliases.
//! - [`defaults`] holds every default, in one table (`defaults.toml`) plus
//!   the few computed from the machine; the help text shows them from there.
//! - [`Config::resolve`] layers flags and environment over the file over
//!   the defaults, checks the result and gives the typed [`Config`] the
//!   service runs on. Its errors name a setting as the user gave it
//!   (`--max-running-jobs`, `SLUICE_MAX_RUNNING_JOBS`, or
//!   `max_running_jobs in sluice.toml`), see [`Origins`].

mod config;
pub mod defaults;
mod origins;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use config::{redact_url, Config, LogFormat};

/// An address to listen on, or `off` (nothing served there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// Not served.
    Off,
    /// Served on this address.
    At(SocketAddr),
}

impl Listen {
    /// The address, unless off.
    pub fn addr(self) -> Option<SocketAddr> {
        match self {
            Listen::Off => None,
            Listen::At(a) => Some(a),
        }
    }
}

impl std::str::FromStr for Listen {
    type Err = String;

    fn from_str(s: &str) -> Result<Listen, String> {
        if s.trim().eq_ignore_ascii_case("off") {
            return Ok(Listen::Off);
        }
        s.trim()
            .parse()
            .map(Listen::At)
            .map_err(|_| format!("{s:?}: expected HOST:PORT (e.g. 127.0.0.1:8471) or off"))
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Off => f.write_str("off"),
            Listen::At(a) => write!(f, "{a}"),
        }
    }
}

impl Serialize for Listen {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Listen, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}
pub use origins::{Origin, Origins};

/// Settings as given by one source (flags and environment, or a file):
/// whatever is left `None` falls through to the next source. Field names
/// are the `sluice.toml` keys; flags are the same names in kebab case.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Config file (TOML; keys as the flags, with underscores)
    #[arg(long, env = "SLUICE_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Directory of the database, the local object store and the master key
    #[arg(long, env = "SLUICE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Metadata database: sqlite://PATH or postgres://USER@HOST:PORT/NAME
    #[arg(long, env = "SLUICE_DATABASE", value_name = "URL")]
    pub database: Option<String>,
    /// Object store: file:///DIR or s3://BUCKET/PREFIX (endpoint, region and credentials from AWS_* env)
    #[arg(long, env = "SLUICE_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// Address to listen on
    #[arg(long, env = "SLUICE_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Server master key file (32 bytes; created with mode 0600 if absent)
    #[arg(long, env = "SLUICE_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key: Option<PathBuf>,
    /// Async runtime worker threads
    #[arg(long, env = "SLUICE_RUNTIME_THREADS", value_name = "N")]
    pub runtime_threads: Option<usize>,
    /// Most threads for blocking work (engine runs, file I/O)
    #[arg(long, env = "SLUICE_MAX_BLOCKING_THREADS", value_name = "N")]
    pub max_blocking_threads: Option<usize>,
    /// Runtime thread stack size in bytes
    #[arg(long, env = "SLUICE_THREAD_STACK_SIZE", value_name = "BYTES")]
    pub thread_stack_size: Option<usize>,
    /// Threads of the CPU pool (compression, encryption, hashing): the
    /// global -j/--threads (SLUICE_THREADS; formerly --cpu-threads)
    #[arg(skip)]
    #[serde(alias = "cpu_threads")]
    pub threads: Option<usize>,
    /// MiB of chunk buffers all running jobs share: the global --max-memory
    /// (SLUICE_MAX_MEMORY; formerly --engine-memory-mib)
    #[arg(skip)]
    #[serde(alias = "engine_memory_mib")]
    pub max_memory: Option<usize>,
    /// Jobs running at once on this node; 0 serves without running jobs (--workers is the same)
    #[arg(long, visible_alias = "workers", env = "SLUICE_MAX_RUNNING_JOBS", value_name = "N")]
    #[serde(alias = "workers")]
    pub max_running_jobs: Option<usize>,
    /// Requests in flight above which queued jobs run one at a time, so requests come first; 0 turns it off
    #[arg(long, env = "SLUICE_BUSY_REQUESTS", value_name = "N")]
    pub busy_requests: Option<usize>,
    /// MiB of opened container indexes cached for range reads (0 turns the cache off)
    #[arg(long, env = "SLUICE_INDEX_CACHE_MIB", value_name = "MIB")]
    pub index_cache_mib: Option<usize>,
    /// Attempts before a transiently failing job fails
    #[arg(long, env = "SLUICE_JOB_MAX_ATTEMPTS", value_name = "N")]
    pub job_max_attempts: Option<u32>,
    /// Job lease in seconds, renewed every third of it while the job runs
    #[arg(long, env = "SLUICE_JOB_LEASE_SECS", value_name = "SECS")]
    pub job_lease_secs: Option<u64>,
    /// Largest accepted upload in bytes
    #[arg(long, env = "SLUICE_MAX_UPLOAD_BYTES", value_name = "BYTES")]
    pub max_upload_bytes: Option<u64>,
    /// Seconds SIGTERM waits for running jobs before releasing them
    #[arg(long, env = "SLUICE_SHUTDOWN_GRACE_SECS", value_name = "SECS")]
    pub shutdown_grace_secs: Option<u64>,
    /// Seconds between reaper passes (retired containers, expired uploads; the store itself is listed for unreferenced files every quarter of the shorter minimum age)
    #[arg(long, env = "SLUICE_REAPER_INTERVAL_SECS", value_name = "SECS")]
    pub reaper_interval_secs: Option<u64>,
    /// Seconds an unreferenced staged upload or container must be old before it is reaped
    #[arg(long, env = "SLUICE_REAPER_MIN_AGE_SECS", value_name = "SECS")]
    pub reaper_min_age_secs: Option<u64>,
    /// Seconds without a part after which an S3 multipart upload counts as abandoned (a node killed mid-write) and is aborted
    #[arg(long, env = "SLUICE_REAPER_MULTIPART_AGE_SECS", value_name = "SECS")]
    pub reaper_multipart_age_secs: Option<u64>,
    /// Seconds a replaced or deleted object's container stays readable for reads that already looked it up, before the reaper deletes it
    #[arg(long, env = "SLUICE_RETIRED_GRACE_SECS", value_name = "SECS")]
    pub retired_grace_secs: Option<u64>,
    /// Seconds a resumable upload may stay open before it expires and its parts are reclaimed
    #[arg(long, env = "SLUICE_UPLOAD_TTL_SECS", value_name = "SECS")]
    pub upload_ttl_secs: Option<u64>,
    /// MiB of resumable-upload parts buffered at once on their way into S3 multipart uploads (more: 503)
    #[arg(long, env = "SLUICE_PART_BUFFER_MIB", value_name = "MIB")]
    pub part_buffer_mib: Option<u64>,
    /// Uploads of at most this many bytes are stored on arrival, their container kept in the database row and made durable by a group commit shared with other uploads (0 turns this off)
    #[arg(long, env = "SLUICE_SMALL_OBJECT_MAX", value_name = "BYTES")]
    pub small_object_max: Option<u64>,
    /// Most small objects (and job successes) recorded by one group commit
    #[arg(long, env = "SLUICE_COMMIT_BATCH_MAX", value_name = "N")]
    pub commit_batch_max: Option<usize>,
    /// Microseconds a group commit waits for more objects after the first, when fewer than the batch's most are waiting
    #[arg(long, env = "SLUICE_COMMIT_DELAY_US", value_name = "US")]
    pub commit_delay_us: Option<u64>,
    /// Most database connections
    #[arg(long, env = "SLUICE_DB_MAX_CONNECTIONS", value_name = "N")]
    pub db_max_connections: Option<u32>,
    /// Database connections kept open when idle
    #[arg(long, env = "SLUICE_DB_MIN_CONNECTIONS", value_name = "N")]
    pub db_min_connections: Option<u32>,
    /// Longest wait for a database connection, seconds
    #[arg(long, env = "SLUICE_DB_ACQUIRE_TIMEOUT_SECS", value_name = "SECS")]
    pub db_acquire_timeout_secs: Option<u64>,
    /// Longest wait for a new database connection to open, seconds
    #[arg(long, env = "SLUICE_DB_CONNECT_TIMEOUT_SECS", value_name = "SECS")]
    pub db_connect_timeout_secs: Option<u64>,
    /// Longest a PostgreSQL statement may run, seconds (statement_timeout; 0 turns it off)
    #[arg(long, env = "SLUICE_DB_STATEMENT_TIMEOUT_SECS", value_name = "SECS")]
    pub db_statement_timeout_secs: Option<u64>,
    /// Idle database connections close after this many seconds
    #[arg(long, env = "SLUICE_DB_IDLE_TIMEOUT_SECS", value_name = "SECS")]
    pub db_idle_timeout_secs: Option<u64>,
    /// Database connections are replaced after this many seconds
    #[arg(long, env = "SLUICE_DB_MAX_LIFETIME_SECS", value_name = "SECS")]
    pub db_max_lifetime_secs: Option<u64>,
    /// Log lines as text or json
    #[arg(long, env = "SLUICE_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Requests per token for tenants without their own rate, e.g. 100/s; 0 is unlimited
    #[arg(long, env = "SLUICE_DEFAULT_RATE", value_name = "N/s")]
    pub default_rate: Option<String>,
    /// Burst above the rate for tenants without their own
    #[arg(long, env = "SLUICE_DEFAULT_BURST", value_name = "N")]
    pub default_burst: Option<u32>,
    /// Stored-bytes quota for tenants without their own, e.g. 100GiB, or none
    #[arg(long, env = "SLUICE_DEFAULT_QUOTA", value_name = "BYTES")]
    pub default_quota: Option<String>,
    /// Queued jobs per tenant without its own limit
    #[arg(long, env = "SLUICE_DEFAULT_MAX_QUEUED", value_name = "N")]
    pub default_max_queued: Option<u64>,
    /// Queued and running jobs over all tenants before uploads are refused with 503
    #[arg(long, env = "SLUICE_MAX_QUEUE_DEPTH", value_name = "N")]
    pub max_queue_depth: Option<u64>,
    /// Requests handled at once; more are shed with 503
    #[arg(long, env = "SLUICE_MAX_IN_FLIGHT", value_name = "N")]
    pub max_in_flight: Option<usize>,
    /// Open connections at most; more wait in the listen backlog
    #[arg(long, env = "SLUICE_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Uploads and downloads in flight on this node; more are refused with 503 and Retry-After
    #[arg(long, env = "SLUICE_MAX_TRANSFERS", value_name = "N")]
    pub max_transfers: Option<usize>,
    /// Uploads and downloads in flight per tenant; more are refused with 429 and Retry-After
    #[arg(long, env = "SLUICE_MAX_TRANSFERS_PER_TENANT", value_name = "N")]
    pub max_transfers_per_tenant: Option<usize>,
    /// MiB of chunks all uploads and downloads hold at once (one tenant at most half); past it a transfer waits briefly, then 429/503
    #[arg(long, env = "SLUICE_TRANSFER_MEMORY_MIB", value_name = "MIB")]
    pub transfer_memory_mib: Option<usize>,
    /// Seconds a client has to send a request's headers
    #[arg(long, env = "SLUICE_HEADER_TIMEOUT_SECS", value_name = "SECS")]
    pub header_timeout_secs: Option<u64>,
    /// Seconds an upload or download may stall before it is cut
    #[arg(long, env = "SLUICE_IDLE_BODY_TIMEOUT_SECS", value_name = "SECS")]
    pub idle_body_timeout_secs: Option<u64>,
    /// Seconds any other request may take
    #[arg(long, env = "SLUICE_REQUEST_TIMEOUT_SECS", value_name = "SECS")]
    pub request_timeout_secs: Option<u64>,
    /// Largest request head (request line and headers), bytes
    #[arg(long, env = "SLUICE_MAX_HEADER_BYTES", value_name = "BYTES")]
    pub max_header_bytes: Option<usize>,
    /// Largest JSON request body, bytes
    #[arg(long, env = "SLUICE_MAX_JSON_BYTES", value_name = "BYTES")]
    pub max_json_bytes: Option<usize>,
    /// Longest request path and query, bytes
    #[arg(long, env = "SLUICE_MAX_URI_BYTES", value_name = "BYTES")]
    pub max_uri_bytes: Option<usize>,
    /// Serve /metrics on this address instead of the service port (e.g. 127.0.0.1:9470)
    #[arg(long, env = "SLUICE_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Address of the S3-compatible API, or `off`
    #[arg(long, env = "SLUICE_S3_LISTEN", value_name = "ADDR|off")]
    pub s3_listen: Option<Listen>,
    /// Serve virtual-hosted-style S3 requests (BUCKET.DOMAIN) under this domain
    #[arg(long, env = "SLUICE_S3_DOMAIN", value_name = "DOMAIN")]
    pub s3_domain: Option<String>,
    /// Require this file's token (Bearer) on /metrics (unset: open)
    #[arg(long, env = "SLUICE_METRICS_TOKEN_FILE", value_name = "FILE")]
    pub metrics_token_file: Option<PathBuf>,
    /// Seconds one object-store call may take
    #[arg(long, env = "SLUICE_STORE_TIMEOUT_SECS", value_name = "SECS")]
    pub store_timeout_secs: Option<u64>,
    /// Retries of a failed object-store request (exponential backoff with jitter)
    #[arg(long, env = "SLUICE_STORE_RETRIES", value_name = "N")]
    pub store_retries: Option<usize>,
    /// Consecutive object-store failures that open its circuit breaker
    #[arg(long, env = "SLUICE_BREAKER_FAILURES", value_name = "N")]
    pub breaker_failures: Option<u32>,
    /// Seconds the breaker stays open before it probes the store again
    #[arg(long, env = "SLUICE_BREAKER_OPEN_SECS", value_name = "SECS")]
    pub breaker_open_secs: Option<u64>,
    /// URL of an OIDC issuer's JWKS: JWT bearer tokens are then accepted too
    #[arg(long, env = "SLUICE_JWT_JWKS_URL", value_name = "URL")]
    pub jwt_jwks_url: Option<String>,
    /// Expected JWT issuer (iss); required with a JWKS URL
    #[arg(long, env = "SLUICE_JWT_ISSUER", value_name = "ISS")]
    pub jwt_issuer: Option<String>,
    /// Expected JWT audience (aud); required with a JWKS URL
    #[arg(long, env = "SLUICE_JWT_AUDIENCE", value_name = "AUD")]
    pub jwt_audience: Option<String>,
    /// JWT claim holding the tenant name
    #[arg(long, env = "SLUICE_JWT_TENANT_CLAIM", value_name = "CLAIM")]
    pub jwt_tenant_claim: Option<String>,
    /// JWT claim holding the scope (read, write, admin)
    #[arg(long, env = "SLUICE_JWT_SCOPE_CLAIM", value_name = "CLAIM")]
    pub jwt_scope_claim: Option<String>,
    /// Seconds of clock skew allowed on exp and nbf
    #[arg(long, env = "SLUICE_JWT_LEEWAY_SECS", value_name = "SECS")]
    pub jwt_leeway_secs: Option<u64>,
    /// Least seconds between JWKS fetches (an unknown kid refetches)
    #[arg(long, env = "SLUICE_JWKS_REFRESH_SECS", value_name = "SECS")]
    pub jwks_refresh_secs: Option<u64>,
    /// Longest a JWKS fetch may take, seconds
    #[arg(long, env = "SLUICE_JWKS_TIMEOUT_SECS", value_name = "SECS")]
    pub jwks_timeout_secs: Option<u64>,
}

/// Environment variables renamed when their settings got one name per
/// knob: `(old, new)`. The CLI copies an old one to its new name (unless
/// the new one is set) before it reads the environment.
pub const RENAMED_ENV: &[(&str, &str)] = &[
    ("SLUICE_CPU_THREADS", "SLUICE_THREADS"),
    ("SLUICE_ENGINE_MEMORY_MIB", "SLUICE_MAX_MEMORY"),
    ("SLUICE_WORKERS", "SLUICE_MAX_RUNNING_JOBS"),
];

/// What went wrong with a setting or a settings file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    /// A setting's value is not acceptable.
    #[error("{setting}: {problem}")]
    Invalid {
        /// The setting, named as it was given (see [`Origins::name`]).
        setting: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A settings file cannot be read or parsed.
    #[error("{}: {problem}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        problem: String,
    },
}

impl Settings {
    /// Reads a `sluice.toml`.
    pub fn from_file(path: &Path) -> Result<Settings, SettingsError> {
        let file_error = |problem: String| SettingsError::File {
            path: path.to_path_buf(),
            problem,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        Settings::from_toml(&text).map_err(file_error)
    }

    /// Parses the text of a `sluice.toml`.
    pub fn from_toml(text: &str) -> Result<Settings, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim().to_string())
    }

    /// `self`'s values where set, else `lower`'s. Works on the serialized
    /// form, so no field has to be listed again here.
    pub fn or(self, lower: Settings) -> Settings {
        let config = self.config.clone().or(lower.config.clone());
        let (Ok(serde_json::Value::Object(mut upper)), Ok(serde_json::Value::Object(lower))) =
            (serde_json::to_value(&self), serde_json::to_value(&lower))
        else {
            return self;
        };
        for (key, value) in lower {
            let unset = upper.get(&key).is_none_or(serde_json::Value::is_null);
            if unset {
                upper.insert(key, value);
            }
        }
        match serde_json::from_value::<Settings>(serde_json::Value::Object(upper)) {
            Ok(merged) => Settings { config, ..merged },
            Err(_) => self,
        }
    }

    /// The keys that have a value here.
    pub fn keys_set(&self) -> Vec<String> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, _)| k).collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_the_upper_layers_values() {
        let upper = Settings {
            threads: Some(5),
            listen: Some("127.0.0.1:1".parse().unwrap()),
            ..Settings::default()
        };
        let lower = Settings {
            threads: Some(3),
            max_running_jobs: Some(7),
            config: Some("x.toml".into()),
            ..Settings::default()
        };
        let merged = upper.or(lower);
        assert_eq!(merged.threads, Some(5));
        assert_eq!(merged.max_running_jobs, Some(7));
        assert_eq!(merged.listen.unwrap().port(), 1);
        assert_eq!(merged.config, Some(PathBuf::from("x.toml")));
        assert_eq!(merged.keys_set().len(), 3, "{:?}", merged.keys_set());
    }

    #[test]
    fn old_file_keys_are_aliases() {
        let s = Settings::from_toml("cpu_threads = 3\nengine_memory_mib = 64\nworkers = 0\n").unwrap();
        assert_eq!(
            (s.threads, s.max_memory, s.max_running_jobs),
            (Some(3), Some(64), Some(0))
        );
        assert!(Settings::from_toml("no_such_key = 1")
            .unwrap_err()
            .contains("no_such_key"));
    }
}
