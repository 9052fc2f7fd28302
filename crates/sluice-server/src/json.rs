//! The JSON bodies of the API (field names are a contract: scripts rely on them).

use serde_json::{json, Value};
use sluice_store::{Job, ObjectInfo, Pipeline};

use crate::state::Running;

/// A job as the API shows it; live progress if it runs on this node.
pub fn job(j: &Job, running: &Running) -> Value {
    let (bytes_in, bytes_out, chunks) = match running.get(&j.id) {
        Some(r) => (
            r.progress.bytes_in() as i64,
            r.progress.bytes_out() as i64,
            r.progress.chunks() as i64,
        ),
        None => (j.progress.bytes_in, j.progress.bytes_out, j.progress.chunks),
    };
    json!({
        "id": j.id,
        "kind": j.kind.as_str(),
        "state": j.state.as_str(),
        "object": j.object_key,
        "pipeline": j.pipeline,
        "attempts": j.attempts,
        "max_attempts": j.max_attempts,
        "progress": { "bytes_in": bytes_in, "bytes_out": bytes_out, "chunks": chunks },
        // The upload's size when known (staged uploads), for progress bars.
        "size": (j.staged_bytes > 0).then_some(j.staged_bytes),
        "error": j.error,
        "error_code": j.error_code,
        "created_at": j.created_at,
        "started_at": j.started_at,
        "finished_at": j.finished_at,
        "updated_at": j.updated_at,
    })
}

/// A stored object's description.
pub fn object(o: &ObjectInfo) -> Value {
    json!({
        "key": o.key,
        "pipeline": o.pipeline,
        "encrypted": o.encrypted,
        "size": o.plaintext_len,
        "stored_size": o.container_len,
        "chunks": o.chunk_count,
        "blake3": o.digest,
        "job": o.job_id,
        "created_at": o.created_at,
    })
}

/// A pipeline.
pub fn pipeline(p: &Pipeline) -> Value {
    json!({
        "name": p.name,
        "compress": p.compress,
        "encrypt": p.encrypt,
        "chunk_size": p.chunk_size,
        "recipients": p.recipients,
    })
}
