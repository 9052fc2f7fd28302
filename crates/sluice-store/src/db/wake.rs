//! Waking workers on other nodes when a job is queued: PostgreSQL's
//! `LISTEN/NOTIFY`. SQLite has no such thing (one machine: the node that
//! queued a job wakes its own dispatcher); workers there, and here as a
//! fallback, poll.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use sqlx::postgres::PgListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::Backend;
use super::Db;
use crate::error::Result;

/// The channel a queued job is announced on.
const CHANNEL: &str = "sluice_jobs";

impl Db {
    /// Tells listening nodes that a job is queued (PostgreSQL; nothing to
    /// do on SQLite). A lost announcement only delays the job to the next
    /// poll, so a failure here is not the caller's.
    pub(crate) async fn announce_job(&self) {
        if self.backend == Backend::Postgres {
            if let Err(e) = sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANNEL)
                .execute(&self.pool)
                .await
            {
                tracing::debug!(error = %e, "announcing a queued job failed; workers will find it by polling");
            }
        }
    }

    /// Wakes `wake` whenever another node queues a job, until aborted; on
    /// PostgreSQL only (`None` on SQLite). The listening connection is
    /// re-established with backoff when lost, and `wake` is woken on each
    /// reconnection, since announcements made meanwhile were missed.
    pub fn wake_on_queued_jobs(&self, wake: Arc<Notify>) -> Option<JoinHandle<()>> {
        if self.backend != Backend::Postgres {
            return None;
        }
        let url = Arc::clone(&self.url);
        Some(tokio::spawn(async move { listen(&url, &wake).await }))
    }
}

fn backoff() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times()
        .build()
}

async fn listen(url: &str, wake: &Notify) {
    let mut delays = backoff();
    loop {
        let started = std::time::Instant::now();
        match listen_once(url, wake).await {
            // A connection that lasted starts the backoff over; one that
            // drops at once keeps backing off.
            Ok(()) if started.elapsed() > Duration::from_secs(30) => delays = backoff(),
            Ok(()) => tracing::warn!("the connection listening for queued jobs dropped; reconnecting"),
            Err(e) => tracing::warn!(error = %e, "listening for queued jobs failed; reconnecting"),
        }
        wake.notify_one();
        tokio::time::sleep(delays.next().unwrap_or(Duration::from_secs(5))).await;
    }
}

/// Listens until the connection is lost (`Ok`) or cannot be made (`Err`).
async fn listen_once(url: &str, wake: &Notify) -> Result<()> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    tracing::debug!("listening for queued jobs");
    // Jobs queued while this node was not listening.
    wake.notify_one();
    // `try_recv` answers `None` when the connection drops, instead of
    // reconnecting silently and losing what was sent meanwhile unnoticed.
    while listener.try_recv().await?.is_some() {
        wake.notify_one();
    }
    Ok(())
}
