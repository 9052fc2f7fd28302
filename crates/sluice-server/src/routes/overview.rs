//! `GET /v1/overview`: one tenant's summary for the dashboard's overview —
//! its jobs by state, what it stores, what this node processed for it, and
//! the node's health (CPU pool, runtime, requests, storage). Nothing about
//! other tenants.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sluice_store::{BreakerState, Scope};

use crate::auth::Caller;
use crate::problem::ApiResult;
use crate::state::AppState;

/// `GET /v1/overview`.
pub async fn get(State(st): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let who = caller.require(Scope::Read)?;
    let mut jobs = serde_json::Map::new();
    for state in ["queued", "running", "succeeded", "failed", "cancelled"] {
        jobs.insert(state.into(), json!(0));
    }
    for (state, n) in st.db.tenant_job_counts(&who.tenant_id).await? {
        jobs.insert(state, json!(n));
    }
    let (objects, stored, original) = st.db.tenant_objects_summary(&who.tenant_id).await?;
    let (processed_bytes, processed_jobs) = st.telemetry.processed(&who.tenant_id);
    let pool = st.engine.pool();
    let rt = tokio::runtime::Handle::current().metrics();
    let breaker = match st.objects.breaker_state() {
        BreakerState::Closed => "closed",
        BreakerState::HalfOpen => "half_open",
        BreakerState::Open => "open",
    };
    Ok(axum::Json(json!({
        "tenant": who.tenant_name,
        "scope": who.scope.as_str(),
        "now_ms": sluice_store::now_ms(),
        "jobs": jobs,
        "objects": {"count": objects, "stored_bytes": stored, "original_bytes": original},
        "processed": {"bytes_in": processed_bytes, "jobs": processed_jobs},
        "node": {
            "cpu_pool": {"threads": pool.threads(), "busy": pool.busy(), "queued": pool.queued()},
            "runtime": {"workers": rt.num_workers(), "alive_tasks": rt.num_alive_tasks(), "global_queue": rt.global_queue_depth()},
            "requests_in_flight": st.requests_in_flight.load(Ordering::Relaxed),
            "jobs_running": st.running.len(),
            "job_slots": st.config.max_running_jobs,
            "storage": breaker,
        },
    }))
    .into_response())
}
