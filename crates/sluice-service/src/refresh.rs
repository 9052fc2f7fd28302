//! Follows changes made outside this process (`sluice admin` on the same
//! database, other nodes): polls the database's auth revision and, when it
//! moves, drops cached tokens and identities and reloads tenant limits. A
//! revoked token or a new limit therefore takes effect within one poll.
//! Each poll also recounts the queue for admission (so an upload reads no
//! count from the database).

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::{Result, Service};

/// How often the revision is read.
pub const POLL: Duration = Duration::from_millis(250);
/// How often idle rate-limiter states are pruned.
const PRUNE: Duration = Duration::from_secs(60);

/// Loads the tenant limits once, then starts following changes.
pub(crate) async fn start(st: &Service) -> Result<JoinHandle<()>> {
    refresh_counts(st).await?;
    let revision = st.db.auth_revision().await?;
    st.auth.revision.store(revision, Ordering::SeqCst);
    st.limits.apply(st.db.all_tenant_limits().await?);
    let st = st.clone();
    Ok(tokio::spawn(async move { follow(st, revision).await }))
}

async fn follow(st: Service, mut seen: i64) {
    let mut since_prune = Duration::ZERO;
    loop {
        tokio::time::sleep(POLL).await;
        since_prune += POLL;
        if since_prune >= PRUNE {
            st.limits.prune();
            since_prune = Duration::ZERO;
        }
        if let Err(e) = refresh_counts(&st).await {
            tracing::warn!(error = %e, "counting queued jobs failed");
        }
        let now = match st.db.auth_revision().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "reading the auth revision failed");
                continue;
            }
        };
        if now == seen {
            continue;
        }
        // Publish the new revision, then forget: a lookup that started before
        // sees the revision move and does not cache what it read.
        st.auth.revision.store(now, Ordering::SeqCst);
        st.auth.principals.invalidate_all();
        st.auth.s3_keys.invalidate_all();
        st.keys.forget_all();
        match st.db.all_tenant_limits().await {
            Ok(all) => {
                st.limits.apply(all);
                seen = now;
                tracing::info!(
                    revision = now,
                    "tokens or tenant limits changed: caches dropped, limits reloaded"
                );
            }
            Err(e) => tracing::warn!(error = %e, "reloading tenant limits failed"),
        }
    }
}

/// Reads the queue depth and per-tenant queued jobs for admission.
async fn refresh_counts(st: &Service) -> Result<()> {
    let depth = st.db.queue_depth().await?.max(0) as u64;
    let queued = st
        .db
        .queued_by_tenant()
        .await?
        .into_iter()
        .map(|(t, n)| (t, n.max(0) as u64))
        .collect();
    st.limits.set_counts(depth, queued);
    Ok(())
}
