//! `/v1/admin`: tenants, their limits and tokens, for tokens of `admin`
//! scope (the dashboard's Admin page; `sluice admin` does the same
//! offline, through the same service calls). Admin tokens manage tenants
//! and tokens, never read another tenant's data.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use sluice_service::{LimitsUpdate, Scope, Service, TenantLimits};

use crate::api::{
    LimitsBody, NewTenantBody, NewTokenBody, TenantBody, TenantList, TenantRequest, TokenList, TokenRequest,
};
use crate::extract::{json, Authed};
use crate::problem::{ApiResult, Problem};

fn tenant_body(name: &str, limits: &TenantLimits) -> TenantBody {
    TenantBody {
        name: name.to_string(),
        limits: LimitsBody::from(limits),
    }
}

/// `GET /v1/admin/tenants`: every tenant and its own limits (`null`: the
/// server's default).
pub async fn tenants(State(st): State<Service>, Authed(caller): Authed) -> ApiResult<Response> {
    let list = st.admin(&caller)?.tenants().await?;
    Ok(axum::Json(TenantList {
        tenants: list.iter().map(|(name, l)| tenant_body(name, l)).collect(),
    })
    .into_response())
}

/// `POST /v1/admin/tenants`: a tenant with a new server-managed identity.
pub async fn create_tenant(
    State(st): State<Service>,
    Authed(caller): Authed,
    body: Result<axum::Json<TenantRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    let admin = st.admin(&caller)?;
    let req = json(body)?;
    let t = admin.create_tenant(&req.name).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(NewTenantBody {
            name: t.name,
            recipient: t.recipient,
        }),
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
    State(st): State<Service>,
    Authed(caller): Authed,
    Path(name): Path<String>,
    body: Result<axum::Json<Value>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    let admin = st.admin(&caller)?;
    let Value::Object(body) = json(body)? else {
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
    let now = admin.set_limits(&name, &update).await?;
    Ok(axum::Json(tenant_body(&name, &now)).into_response())
}

/// `GET /v1/admin/tenants/{name}/tokens`: ids and scopes, never tokens.
pub async fn tokens(
    State(st): State<Service>,
    Authed(caller): Authed,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    let tokens = st.admin(&caller)?.tokens(&name).await?;
    Ok(axum::Json(TokenList { tokens }).into_response())
}

/// `POST /v1/admin/tenants/{name}/tokens`: a new token, shown in this
/// answer only (stored as a hash).
pub async fn create_token(
    State(st): State<Service>,
    Authed(caller): Authed,
    Path(name): Path<String>,
    body: Result<axum::Json<TokenRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Response> {
    let admin = st.admin(&caller)?;
    let req = json(body)?;
    let scope = Scope::parse(&req.scope).ok_or_else(|| Problem::bad_request("scope must be read, write or admin"))?;
    let t = admin.create_token(&name, scope).await?;
    let mut resp = (
        StatusCode::CREATED,
        axum::Json(NewTokenBody {
            id: t.id.clone(),
            tenant: t.tenant.clone(),
            scope: t.scope.as_str().into(),
            token: t.token.to_string(),
        }),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `DELETE /v1/admin/tokens/{id}`: revokes a token; running servers refuse
/// it within a second.
pub async fn revoke_token(
    State(st): State<Service>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    st.admin(&caller)?.revoke_token(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
