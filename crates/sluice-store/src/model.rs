//! The rows the service keeps: tenants, tokens, pipelines, jobs, objects.

use serde::{Deserialize, Serialize};

/// What a token may do. Each scope includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read objects, jobs and pipelines.
    Read,
    /// Also upload, delete, cancel and change pipelines.
    Write,
    /// Everything (reserved for administration routes).
    Admin,
}

impl Scope {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    /// Parses `read`, `write` or `admin`.
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// A tenant: owner of tokens, pipelines, jobs and objects.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// Stable id.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// The tenant's X25519 identity, sealed under the master key.
    pub sealed_identity: Vec<u8>,
    /// The identity's recipient string (`sluice1...`).
    pub recipient: String,
}

/// A tenant's own limits; `None` takes the server's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct TenantLimits {
    /// Requests per second per token (GCRA rate).
    pub rate_per_sec: Option<f64>,
    /// Requests a token may send at once above the rate.
    pub burst: Option<i64>,
    /// Most stored bytes (containers) for the tenant.
    pub quota_bytes: Option<i64>,
    /// Most queued jobs for the tenant.
    pub max_queued: Option<i64>,
}

/// A change to some of a tenant's limits: `Some(None)` clears one back to
/// the server's default, `None` leaves it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LimitsUpdate {
    /// New rate.
    pub rate_per_sec: Option<Option<f64>>,
    /// New burst.
    pub burst: Option<Option<i64>>,
    /// New stored-bytes quota.
    pub quota_bytes: Option<Option<i64>>,
    /// New queued-jobs quota.
    pub max_queued: Option<Option<i64>>,
}

/// A token's row (never the token itself).
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    /// Token id (shown by `admin token list`, used to revoke).
    pub id: String,
    /// Tenant name.
    pub tenant: String,
    /// Scope.
    pub scope: Scope,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
    /// Revocation time, if revoked.
    pub revoked_at: Option<i64>,
}

/// An S3 access key's row (never its secret).
#[derive(Debug, Clone, Serialize)]
pub struct S3KeyInfo {
    /// The access key id (public: clients send it with every request).
    pub id: String,
    /// Tenant name.
    pub tenant: String,
    /// Scope.
    pub scope: Scope,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
    /// Revocation time, if revoked.
    pub revoked_at: Option<i64>,
}

/// A valid S3 access key, its owner and its secret sealed under the
/// master key.
#[derive(Clone)]
pub struct S3Key {
    /// The access key id.
    pub id: String,
    /// Tenant id.
    pub tenant_id: String,
    /// Tenant name.
    pub tenant_name: String,
    /// Scope.
    pub scope: Scope,
    /// The secret, sealed.
    pub sealed_secret: Vec<u8>,
}

impl std::fmt::Debug for S3Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Key")
            .field("id", &self.id)
            .field("tenant", &self.tenant_name)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// A bucket of the S3 face.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Its global name.
    pub name: String,
    /// Owner's tenant id.
    #[serde(skip)]
    pub tenant_id: String,
    /// Owner's tenant name.
    pub tenant_name: String,
    /// The pipeline new objects go through (`None`: the tenant's default).
    pub pipeline: Option<String>,
    /// Creation time, unix milliseconds.
    pub created_at: i64,
}

/// Who a valid token belongs to.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Tenant id.
    pub tenant_id: String,
    /// Tenant name.
    pub tenant_name: String,
    /// Token id.
    pub token_id: String,
    /// Scope.
    pub scope: Scope,
}

/// Named processing settings of one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pipeline {
    /// Name (`default` always exists).
    pub name: String,
    /// Compression, e.g. `zstd:3`.
    pub compress: String,
    /// Cipher suite, e.g. `aes256gcm`.
    pub encrypt: String,
    /// Chunk size, e.g. `8MiB`.
    pub chunk_size: String,
    /// Extra recipients (`sluice1...`) who can restore offline.
    pub recipients: Vec<String>,
}

impl Pipeline {
    /// The settings a tenant gets when it never defined `default`.
    pub fn default_named(name: &str) -> Pipeline {
        Pipeline {
            name: name.to_string(),
            compress: "zstd:3".into(),
            encrypt: "aes256gcm".into(),
            chunk_size: "8MiB".into(),
            recipients: Vec::new(),
        }
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a worker.
    Queued,
    /// A worker holds its lease.
    Running,
    /// Done; for uploads, the object is stored.
    Succeeded,
    /// Gave up; `error` says why.
    Failed,
    /// Cancelled by a user.
    Cancelled,
}

impl JobState {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Parses a stored or requested state name.
    pub fn parse(s: &str) -> Option<JobState> {
        match s {
            "queued" => Some(JobState::Queued),
            "running" => Some(JobState::Running),
            "succeeded" => Some(JobState::Succeeded),
            "failed" => Some(JobState::Failed),
            "cancelled" => Some(JobState::Cancelled),
            _ => None,
        }
    }

    /// Whether the job will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobState::Succeeded | JobState::Failed | JobState::Cancelled)
    }
}

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Turn an uploaded file into a stored container.
    Process,
    /// Authenticate a stored container completely.
    Verify,
}

impl JobKind {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Process => "process",
            JobKind::Verify => "verify",
        }
    }

    /// Parses a stored kind.
    pub fn parse(s: &str) -> Option<JobKind> {
        match s {
            "process" => Some(JobKind::Process),
            "verify" => Some(JobKind::Verify),
            _ => None,
        }
    }
}

/// A job's progress counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct JobProgress {
    /// Input bytes read.
    pub bytes_in: i64,
    /// Output bytes written.
    pub bytes_out: i64,
    /// Chunks finished.
    pub chunks: i64,
}

/// A job's row.
#[derive(Debug, Clone)]
pub struct Job {
    /// Id (time-ordered).
    pub id: String,
    /// Owner.
    pub tenant_id: String,
    /// What it does.
    pub kind: JobKind,
    /// The object it makes or checks.
    pub object_key: String,
    /// Pipeline name.
    pub pipeline: String,
    /// State.
    pub state: JobState,
    /// Attempts started so far (the fencing number of the current one).
    pub attempts: i64,
    /// Most attempts before a transient failure becomes final.
    pub max_attempts: i64,
    /// Attempts that ended because the object store was unavailable (not
    /// counted against `max_attempts`).
    pub storage_waits: i64,
    /// Bytes of the staged upload (0 if none, e.g. streamed or verify).
    pub staged_bytes: i64,
    /// Staged upload, for process jobs.
    pub staging: Option<String>,
    /// BLAKE3 (hex) the original must have, if the client gave one.
    pub expected_digest: Option<String>,
    /// Progress.
    pub progress: JobProgress,
    /// Why it failed.
    pub error: Option<String>,
    /// Stable error code, with `error`.
    pub error_code: Option<String>,
    /// Created, unix milliseconds.
    pub created_at: i64,
    /// First started.
    pub started_at: Option<i64>,
    /// Reached a terminal state.
    pub finished_at: Option<i64>,
    /// Last change.
    pub updated_at: i64,
    /// Its place in its key's order of writes (process jobs; 0 for verify
    /// jobs and jobs from before the order was kept).
    pub accept_seq: i64,
    /// Succeeded, but a write to its key accepted later had already taken
    /// effect: its object was never visible.
    pub superseded: bool,
    /// Content headers and user metadata for its object (JSON).
    pub meta: Option<String>,
}

impl Job {
    /// Attempts that count against `max_attempts`.
    pub fn counted_attempts(&self) -> i64 {
        self.attempts.saturating_sub(self.storage_waits)
    }
}

/// A stored object's row.
#[derive(Debug, Clone)]
pub struct ObjectInfo {
    /// Key, unique per tenant.
    pub key: String,
    /// Where the container is in the object store.
    pub location: String,
    /// Pipeline it was made with.
    pub pipeline: String,
    /// Whether the container is encrypted (a reader then refuses one that is not).
    pub encrypted: bool,
    /// Container bytes.
    pub container_len: i64,
    /// Original bytes.
    pub plaintext_len: i64,
    /// Data chunks.
    pub chunk_count: i64,
    /// BLAKE3 of the original, hex.
    pub digest: String,
    /// The job that stored it.
    pub job_id: String,
    /// Stored at, unix milliseconds.
    pub created_at: i64,
    /// Content headers and user metadata it was stored with (JSON).
    pub meta: Option<String>,
    /// Hex MD5 of the plaintext (or S3's multipart form), if computed.
    pub etag: Option<String>,
}

impl ObjectInfo {
    /// Plaintext bytes per chunk, or `None` for an object of at most one
    /// chunk (the row does not say, and it does not matter there). Chunk
    /// sizes are powers of two and every chunk but the last is full, so
    /// the mean chunk lies in (size/2, size].
    pub fn chunk_size(&self) -> Option<u64> {
        let chunks = u64::try_from(self.chunk_count).ok().filter(|&n| n >= 2)?;
        let len = u64::try_from(self.plaintext_len).ok()?;
        Some(len.div_ceil(chunks).next_power_of_two())
    }
}

#[cfg(test)]
mod tests {
    use super::ObjectInfo;

    fn object(plaintext_len: i64, chunk_count: i64) -> ObjectInfo {
        ObjectInfo {
            key: "k".into(),
            location: "l".into(),
            pipeline: "default".into(),
            encrypted: true,
            container_len: 0,
            plaintext_len,
            chunk_count,
            digest: String::new(),
            job_id: String::new(),
            created_at: 0,
            meta: None,
            etag: None,
        }
    }

    #[test]
    fn the_chunk_size_follows_from_length_and_count() {
        for log2 in 12..=26u32 {
            let cs = 1i64 << log2;
            for (len, n) in [
                (cs + 1, 2),
                (2 * cs, 2),
                (7 * cs + cs / 3, 8),
                (100 * cs, 100),
                (99 * cs + 1, 100),
            ] {
                assert_eq!(object(len, n).chunk_size(), Some(cs as u64), "len {len} chunks {n}");
            }
        }
        assert_eq!(object(5_000, 1).chunk_size(), None);
        assert_eq!(object(0, 0).chunk_size(), None);
    }
}
