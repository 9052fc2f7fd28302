//! `sluice admin`: tenants and tokens (all of it in `sluice-server`'s admin module).

use anyhow::Result;
use sluice_server::admin::Admin;
use sluice_server::limits;

use crate::cli::{AdminArgs, AdminCommand, TenantCommand, TokenCommand};
use crate::exit::{usage, Code};

/// Runs the command.
pub fn run(args: &AdminArgs) -> Result<Code> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        if let Some(store) = &args.store {
            sluice_store::StoreLocation::parse(store).map_err(|e| usage(format!("--store: {e}")))?;
        }
        let database = match &args.database {
            Some(url) => Some(sluice_server::config::check_database_url(url).map_err(|e| usage(format!("{e:#}")))?),
            None => None,
        };
        let admin = Admin::open(&args.data_dir, database.as_deref(), args.master_key.as_deref()).await?;
        match &args.what {
            AdminCommand::Tenant(TenantCommand::Create { name }) => {
                let recipient = admin.create_tenant(name).await?;
                println!("{recipient}");
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
                .map_err(usage)?;
                let now = admin.set_limits(name, &update).await?;
                eprintln!("{name}: {}", limits::describe(&now));
            }
            AdminCommand::Token(TokenCommand::Create { tenant, scope }) => {
                let scope = sluice_store::Scope::parse(scope)
                    .ok_or_else(|| usage(format!("--scope {scope:?}: expected read, write or admin")))?;
                let (token, id) = admin.create_token(tenant, scope).await?;
                eprintln!("token id {id} (scope {}); the token is shown once:", scope.as_str());
                println!("{token}");
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
        }
        Ok(Code::Ok)
    })
}
