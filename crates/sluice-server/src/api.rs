//! The native API's JSON bodies, typed: the server writes them and the
//! CLI's client (`sluice push`, `sluice pull`) reads them, so both agree
//! by construction. Field names are a contract that scripts rely on; the
//! OpenAPI document (`openapi.json`) describes the same shapes.

use serde::{Deserialize, Serialize};
use sluice_service::jobs::JobProgress;
use sluice_service::{Bucket, Job, ObjectInfo, Pipeline, TenantLimits, TokenInfo, Upload, UploadPart};

/// A job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobBody {
    /// Id.
    pub id: String,
    /// `process` or `verify`.
    pub kind: String,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    /// The object's key.
    pub object: String,
    /// The pipeline.
    pub pipeline: String,
    /// Attempts started.
    pub attempts: i64,
    /// Most attempts.
    pub max_attempts: i64,
    /// How far it got (live while it runs on the node that answers).
    pub progress: ProgressBody,
    /// The upload's size when known (staged uploads), for progress bars.
    pub size: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// The failure's stable code.
    pub error_code: Option<String>,
    /// Created, unix milliseconds.
    pub created_at: i64,
    /// First started.
    pub started_at: Option<i64>,
    /// Finished.
    pub finished_at: Option<i64>,
    /// Last change.
    pub updated_at: i64,
    /// Succeeded, but a write to the same key accepted after this upload
    /// had already taken effect: this upload's object was never visible.
    #[serde(default)]
    pub superseded: bool,
}

impl JobBody {
    /// `job` with `progress` (its live counters, if it runs here).
    pub fn new(job: &Job, progress: JobProgress) -> JobBody {
        JobBody {
            id: job.id.clone(),
            kind: job.kind.as_str().into(),
            state: job.state.as_str().into(),
            object: job.object_key.clone(),
            pipeline: job.pipeline.clone(),
            attempts: job.attempts,
            max_attempts: job.max_attempts,
            progress: ProgressBody {
                bytes_in: progress.bytes_in,
                bytes_out: progress.bytes_out,
                chunks: progress.chunks,
            },
            size: (job.staged_bytes > 0).then_some(job.staged_bytes),
            error: job.error.clone(),
            error_code: job.error_code.clone(),
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
            updated_at: job.updated_at,
            superseded: job.superseded,
        }
    }

    /// Whether the job will not change any more.
    pub fn is_finished(&self) -> bool {
        matches!(self.state.as_str(), "succeeded" | "failed" | "cancelled")
    }
}

/// A job's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressBody {
    /// Input bytes read.
    pub bytes_in: i64,
    /// Output bytes written.
    pub bytes_out: i64,
    /// Chunks finished.
    pub chunks: i64,
}

/// A page of jobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobList {
    /// The jobs, newest first.
    pub jobs: Vec<JobBody>,
    /// The next page's cursor.
    pub next_cursor: Option<String>,
}

/// A stored object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectBody {
    /// Key.
    pub key: String,
    /// Pipeline it was stored through.
    pub pipeline: String,
    /// Whether its container is encrypted.
    pub encrypted: bool,
    /// Original bytes.
    pub size: i64,
    /// Container bytes.
    pub stored_size: i64,
    /// Data chunks.
    pub chunks: i64,
    /// BLAKE3 of the original, hex.
    pub blake3: String,
    /// The job that stored it.
    pub job: String,
    /// Stored at, unix milliseconds.
    pub created_at: i64,
}

impl From<&ObjectInfo> for ObjectBody {
    fn from(o: &ObjectInfo) -> ObjectBody {
        ObjectBody {
            key: o.key.clone(),
            pipeline: o.pipeline.clone(),
            encrypted: o.encrypted,
            size: o.plaintext_len,
            stored_size: o.container_len,
            chunks: o.chunk_count,
            blake3: o.digest.clone(),
            job: o.job_id.clone(),
            created_at: o.created_at,
        }
    }
}

/// A page of objects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectList {
    /// The objects, in key order.
    pub objects: Vec<ObjectBody>,
    /// The next page's cursor.
    pub next_cursor: Option<String>,
}

/// A pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineBody {
    /// Name.
    pub name: String,
    /// Compression.
    pub compress: String,
    /// Cipher.
    pub encrypt: String,
    /// Chunk size.
    pub chunk_size: String,
    /// Extra recipients.
    pub recipients: Vec<String>,
}

impl From<&Pipeline> for PipelineBody {
    fn from(p: &Pipeline) -> PipelineBody {
        PipelineBody {
            name: p.name.clone(),
            compress: p.compress.clone(),
            encrypt: p.encrypt.clone(),
            chunk_size: p.chunk_size.clone(),
            recipients: p.recipients.clone(),
        }
    }
}

/// Every pipeline of a tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineList {
    /// The pipelines, `default` first if it was never stored.
    pub pipelines: Vec<PipelineBody>,
}

/// Body of `PUT /v1/pipelines/{name}` (every field optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineRequest {
    /// e.g. `zstd:3`, `lz4`, `none`.
    pub compress: Option<String>,
    /// `aes256gcm`, `chacha20poly1305` or `none`.
    pub encrypt: Option<String>,
    /// e.g. `8MiB`.
    pub chunk_size: Option<String>,
    /// Extra recipients (`sluice1…`).
    pub recipients: Option<Vec<String>>,
}

/// A bucket (of the S3 face), as the native API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketBody {
    /// Its global name.
    pub name: String,
    /// The pipeline its new objects go through (`null`: `default`).
    pub pipeline: Option<String>,
    /// When it was created, unix milliseconds.
    pub created_at: i64,
}

impl From<&Bucket> for BucketBody {
    fn from(b: &Bucket) -> BucketBody {
        BucketBody {
            name: b.name.clone(),
            pipeline: b.pipeline.clone(),
            created_at: b.created_at,
        }
    }
}

/// The tenant's buckets, by name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BucketList {
    /// The buckets.
    pub buckets: Vec<BucketBody>,
}

/// Body of `PUT /v1/buckets/{bucket}` (may be empty).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketRequest {
    /// The pipeline new objects go through: absent, unchanged; `null`,
    /// the tenant's `default`.
    #[serde(default, deserialize_with = "present")]
    pub pipeline: Option<Option<String>>,
}

/// A field that is present (even as `null`) is `Some`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Body of `POST /v1/uploads`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// The object's key.
    pub key: String,
    /// Total bytes.
    pub size: u64,
    /// Pipeline name (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// Bytes per part (default 8 MiB; 1 to 64 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part_size: Option<u64>,
    /// BLAKE3 (hex) the whole must have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blake3: Option<String>,
}

/// A resumable upload session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionBody {
    /// Id.
    pub id: String,
    /// The object's key.
    pub key: String,
    /// Pipeline.
    pub pipeline: String,
    /// Total bytes.
    pub size: i64,
    /// Bytes per part.
    pub part_size: i64,
    /// Parts in all.
    pub parts: i64,
    /// `open`, `completed`, `aborted` or `expired`.
    pub state: String,
    /// The numbers of the parts that arrived whole.
    pub received: Vec<i64>,
    /// Their bytes.
    pub received_bytes: i64,
    /// The job it completed into.
    pub job: Option<String>,
    /// Opened, unix milliseconds.
    pub created_at: i64,
    /// Expires, unix milliseconds.
    pub expires_at: i64,
}

impl SessionBody {
    /// A session and the parts it holds.
    pub fn new(u: &Upload, parts: &[UploadPart]) -> SessionBody {
        let complete: Vec<&UploadPart> = parts.iter().filter(|p| p.size == u.part_len(p.number)).collect();
        SessionBody {
            id: u.id.clone(),
            key: u.object_key.clone(),
            pipeline: u.pipeline.clone(),
            size: u.size,
            part_size: u.part_size,
            parts: u.part_count(),
            state: u.state.as_str().into(),
            received: complete.iter().map(|p| p.number).collect(),
            received_bytes: complete.iter().map(|p| p.size).sum(),
            job: u.job_id.clone(),
            created_at: u.created_at,
            expires_at: u.expires_at,
        }
    }
}

/// A part stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartBody {
    /// Its number.
    pub number: i64,
    /// Its bytes.
    pub size: i64,
    /// Its BLAKE3, hex.
    pub blake3: String,
}

/// A tenant's own limits (`null`: the server's default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitsBody {
    /// Requests per second per token.
    pub rate_per_sec: Option<f64>,
    /// Burst.
    pub burst: Option<i64>,
    /// Stored-bytes quota.
    pub quota_bytes: Option<i64>,
    /// Queued-jobs quota.
    pub max_queued: Option<i64>,
}

impl From<&TenantLimits> for LimitsBody {
    fn from(l: &TenantLimits) -> LimitsBody {
        LimitsBody {
            rate_per_sec: l.rate_per_sec,
            burst: l.burst,
            quota_bytes: l.quota_bytes,
            max_queued: l.max_queued,
        }
    }
}

/// A tenant and its own limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantBody {
    /// Name.
    pub name: String,
    /// Its own limits.
    pub limits: LimitsBody,
}

/// Every tenant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TenantList {
    /// The tenants, by name.
    pub tenants: Vec<TenantBody>,
}

/// Body of `POST /v1/admin/tenants`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantRequest {
    /// 1 to 64 letters, digits, `-`, `_`, `.`.
    pub name: String,
}

/// A tenant created.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewTenantBody {
    /// Name.
    pub name: String,
    /// Its server-managed recipient.
    pub recipient: String,
}

/// A tenant's tokens.
#[derive(Debug, Clone, Serialize)]
pub struct TokenList {
    /// Ids and scopes, never the tokens.
    pub tokens: Vec<TokenInfo>,
}

/// Body of `POST /v1/admin/tenants/{name}/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// `read`, `write` or `admin`.
    pub scope: String,
}

/// A token created: shown in this answer only.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewTokenBody {
    /// Its id.
    pub id: String,
    /// Its tenant.
    pub tenant: String,
    /// Its scope.
    pub scope: String,
    /// The token.
    pub token: String,
}

/// Body of `POST /ui/session`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    /// An API token (or a JWT, if the server accepts them).
    pub token: String,
}

/// Who is signed in to the dashboard.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WhoBody {
    /// Tenant name.
    pub tenant: String,
    /// Scope.
    pub scope: String,
}

/// An error answer (`application/problem+json`, RFC 9457).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemBody {
    /// Always `about:blank`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The status's reason phrase.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// The stable code, e.g. `not_found`.
    pub code: String,
    /// What happened, for a person.
    pub detail: String,
}
