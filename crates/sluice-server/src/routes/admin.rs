//! `/v1/admin`: tenants, their limits and tokens, for tokens of `admin`
//! scope (the dashboard's Admin page; `sluice admin` does the same offline).
//! Admin tokens manage tenants and tokens, never read another tenant's data.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use sluice_store::{new_token, LimitsUpdate, Scope, TenantLimits};

use crate::auth::Caller;
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

fn limits_json(l: &TenantLimits) -> Value {
    json!({
        "rate_per_sec": l.rate_per_sec,
        "burst": l.burst,
        "quota_bytes": l.quota_bytes,
        "max_queued": l.max_queued,
    })
}

/// `GET /v1/admin/tenants`: every tenant and its own limits (`null`: the
/// server's default).
pub async fn tenants(State(st): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require(Scope::Admin)?;
    let list: Vec<Value> = st
        .db
        .tenants_with_limits()
        .await?
        .iter()
        .map(|(name, l)| json!({"name": name, "limits": limits_json(l)}))
        .collect();
    Ok(axum::Json(json!({ "tenants": list })).into_response())
}

/// Body of `POST /v1/admin/tenants`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// 1 to 64 letters, digits, `-`, `_`, `.`.
    pub name: String,
}

/// Whether `name` may name a tenant.
pub fn valid_tenant_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// `POST /v1/admin/tenants`: a tenant with a new server-managed identity.
pub async fn create_tenant(
    State(st): State<AppState>,
    caller: Caller,
    body: Result<axum::Json<NewTenant>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    caller.require(Scope::Admin)?;
    let axum::Json(body) = body.map_err(|e| Problem::bad_request(e.body_text()))?;
    if !valid_tenant_name(&body.name) {
        return Err(Problem::bad_request(
            "tenant names are 1 to 64 of letters, digits, '-', '_' and '.'",
        ));
    }
    let keys = std::sync::Arc::clone(&st.keys);
    let (identity, sealed) = tokio::task::spawn_blocking(move || keys.new_identity())
        .await
        .map_err(Problem::internal)?
        .map_err(Problem::internal)?;
    let recipient = identity.recipient().to_string();
    st.db.create_tenant(&body.name, &sealed, &recipient).await?;
    tracing::info!(tenant = %body.name, "tenant created");
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"name": body.name, "recipient": recipient})),
    )
        .into_response())
}

/// One limit of a `PUT …/limits` body: absent leaves it, `null` returns it
/// to the server's default, a number sets it.
fn limit<T>(
    body: &serde_json::Map<String, Value>,
    name: &str,
    read: impl Fn(&Value) -> Option<T>,
) -> Result<Option<Option<T>>, Problem> {
    match body.get(name) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => read(v)
            .map(|x| Some(Some(x)))
            .ok_or_else(|| Problem::bad_request(format!("{name} must be a non-negative number or null"))),
    }
}

/// `PUT /v1/admin/tenants/{name}/limits`: changes some limits; running
/// servers apply them within a second.
pub async fn set_limits(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<axum::Json<Value>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    caller.require(Scope::Admin)?;
    let axum::Json(body) = body.map_err(|e| Problem::bad_request(e.body_text()))?;
    let Value::Object(body) = body else {
        return Err(Problem::bad_request("expected a JSON object of limits"));
    };
    let known = ["rate_per_sec", "burst", "quota_bytes", "max_queued"];
    if let Some(k) = body.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(Problem::bad_request(format!(
            "unknown limit {k:?} (known: {})",
            known.join(", ")
        )));
    }
    let whole = |v: &Value| v.as_i64().filter(|n| *n >= 0);
    let update = LimitsUpdate {
        rate_per_sec: limit(&body, "rate_per_sec", |v| {
            v.as_f64().filter(|r| r.is_finite() && *r > 0.0 && *r <= 1e9)
        })?,
        burst: limit(&body, "burst", |v| whole(v).filter(|b| *b >= 1 && *b <= 1_000_000))?,
        quota_bytes: limit(&body, "quota_bytes", whole)?,
        max_queued: limit(&body, "max_queued", whole)?,
    };
    let now = st.db.set_tenant_limits(&name, &update).await?;
    tracing::info!(tenant = %name, "tenant limits changed");
    Ok(axum::Json(json!({"name": name, "limits": limits_json(&now)})).into_response())
}

/// `GET /v1/admin/tenants/{name}/tokens`: ids and scopes, never tokens.
pub async fn tokens(State(st): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult<Response> {
    caller.require(Scope::Admin)?;
    let tenant = st.db.tenant_by_name(&name).await?;
    let list = st.db.tokens(&tenant.id).await?;
    Ok(axum::Json(json!({ "tokens": list })).into_response())
}

/// Body of `POST /v1/admin/tenants/{name}/tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// `read`, `write` or `admin`.
    pub scope: String,
}

/// `POST /v1/admin/tenants/{name}/tokens`: a new token, shown in this
/// answer only (stored as a hash).
pub async fn create_token(
    State(st): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<axum::Json<NewToken>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    caller.require(Scope::Admin)?;
    let axum::Json(body) = body.map_err(|e| Problem::bad_request(e.body_text()))?;
    let scope = Scope::parse(&body.scope).ok_or_else(|| Problem::bad_request("scope must be read, write or admin"))?;
    let tenant = st.db.tenant_by_name(&name).await?;
    let (token, hash) = new_token()?;
    let id = st.db.create_token(&tenant.id, &hash, scope).await?;
    tracing::info!(tenant = %name, token_id = %id, scope = scope.as_str(), "token created");
    let mut resp = (
        StatusCode::CREATED,
        axum::Json(json!({"id": id, "tenant": name, "scope": scope.as_str(), "token": token})),
    )
        .into_response();
    resp.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(resp)
}

/// `DELETE /v1/admin/tokens/{id}`: revokes a token; running servers refuse
/// it within a second.
pub async fn revoke_token(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    caller.require(Scope::Admin)?;
    st.db.revoke_token(&id).await?;
    tracing::info!(token_id = %id, "token revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}
