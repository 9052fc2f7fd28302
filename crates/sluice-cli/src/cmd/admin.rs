//! `sluice admin`: tenants and tokens, straight on the database (the
//! service's `tenants::admin`, the same operations as the admin API).

use anyhow::Result;
use sluice_service::settings::Origins;
use sluice_service::tenants::admin::Admin;
use sluice_service::tenants::limits;

use crate::cli::{AdminArgs, AdminCommand, Global, S3KeyCommand, TenantCommand, TokenCommand};
use crate::exit::{usage, Code};

/// Runs the command.
pub fn run(args: AdminArgs, global: &Global, origins: Origins) -> Result<Code> {
    let config = super::serve::config(args.settings, global, origins)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let admin = Admin::open(&config).await?;
        match &args.what {
            AdminCommand::Tenant(TenantCommand::Create { name }) => {
                let t = admin.create_tenant(name).await.map_err(|e| match e {
                    sluice_service::Error::BadRequest(why) => usage(why),
                    e => e.into(),
                })?;
                if let Some(path) = &t.created_master_key {
                    eprintln!(
                        "generated a new server master key at {} (mode 0600): back it up",
                        path.display()
                    );
                }
                println!("{}", t.recipient);
            }
            AdminCommand::Tenant(TenantCommand::List) => {
                for (name, limits) in admin.tenants().await? {
                    println!("{name}\t{}", limits::describe(&limits));
                }
            }
            AdminCommand::Tenant(TenantCommand::Set {
                name,
                rate,
                burst,
                quota,
                max_queued,
            }) => {
                let update = limits::parse_update(
                    rate.as_deref(),
                    burst.as_deref(),
                    quota.as_deref(),
                    max_queued.as_deref(),
                )
                .map_err(|e| usage(format!("--{} {:?}: {}", e.limit.replace('_', "-"), e.value, e.problem)))?;
                let now = admin.set_limits(name, &update).await?;
                eprintln!("{name}: {}", limits::describe(&now));
            }
            AdminCommand::Token(TokenCommand::Create { tenant, scope }) => {
                let scope = sluice_service::Scope::parse(scope)
                    .ok_or_else(|| usage(format!("--scope {scope:?}: expected read, write or admin")))?;
                let t = admin.create_token(tenant, scope).await?;
                eprintln!("token id {} (scope {}); the token is shown once:", t.id, scope.as_str());
                println!("{}", t.token.as_str());
            }
            AdminCommand::Token(TokenCommand::List { tenant }) => {
                for t in admin.tokens(tenant).await? {
                    let state = if t.revoked_at.is_some() { "revoked" } else { "active" };
                    println!("{}\t{}\t{}", t.id, t.scope.as_str(), state);
                }
            }
            AdminCommand::Token(TokenCommand::Revoke { token_id }) => {
                admin.revoke_token(token_id).await?;
                eprintln!("revoked {token_id}");
            }
            AdminCommand::S3Key(S3KeyCommand::Create { tenant, scope }) => {
                let scope = sluice_service::Scope::parse(scope)
                    .ok_or_else(|| usage(format!("--scope {scope:?}: expected read, write or admin")))?;
                let k = admin.create_s3_key(tenant, scope).await?;
                eprintln!(
                    "S3 key for tenant {} (scope {}); the secret is shown once:",
                    k.tenant,
                    scope.as_str()
                );
                println!("{} {}", k.id, k.secret.as_str());
            }
            AdminCommand::S3Key(S3KeyCommand::List { tenant }) => {
                for k in admin.s3_keys(tenant).await? {
                    let state = if k.revoked_at.is_some() { "revoked" } else { "active" };
                    println!("{}\t{}\t{}", k.id, k.scope.as_str(), state);
                }
            }
            AdminCommand::S3Key(S3KeyCommand::Revoke { access_key_id }) => {
                admin.revoke_s3_key(access_key_id).await?;
                eprintln!("revoked {access_key_id}");
            }
        }
        Ok(Code::Ok)
    })
}
