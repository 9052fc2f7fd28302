//! The reaper: background cleanup of what nothing references any more.

use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use sluice_store::UploadState;
use tokio::task::JoinHandle;

use crate::settings::Config;
use crate::Service;

/// Background cleanup, every `reaper_interval` (default a minute): staged
/// uploads of finished jobs; staged uploads no job refers to (an upload cut
/// off by a crash); files of resumable uploads that are closed and no job
/// reads; and containers no object refers to (an attempt that lost
/// its lease, a streamed upload cut off), each only once older than
/// `reaper_min_age` (default an hour, far longer than any write in progress
/// goes without touching its file); and S3 multipart uploads whose writer
/// sent no part for `reaper_multipart_age` (default an hour).
///
/// What only a listing of the store can find (files nothing in the database
/// names) is looked for every [`sweep_interval`], not every pass: on S3 a
/// listing of millions of containers is thousands of paid requests.
pub(crate) fn start(st: &Service) -> JoinHandle<()> {
    let st = st.clone();
    tokio::spawn(async move {
        let mut last_sweep: Option<Instant> = None;
        loop {
            tokio::time::sleep(st.config.reaper_interval).await;
            if st.is_shutting_down() {
                return;
            }
            let sweep = last_sweep.is_none_or(|t| t.elapsed() >= sweep_interval(&st.config));
            match pass(&st, st.config.reaper_min_age, sweep).await {
                Ok(_) if sweep => last_sweep = Some(Instant::now()),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reaper pass failed"),
            }
        }
    })
}

/// How often the reaper lists the store: a quarter of the shorter of the
/// minimum ages (of files, of silent multipart uploads: nothing younger is
/// a candidate, so an orphan waits at most a quarter longer), and at most
/// once a pass.
pub(crate) fn sweep_interval(config: &Config) -> Duration {
    (config.reaper_min_age.min(config.reaper_multipart_age) / 4).max(config.reaper_interval)
}

/// Free database pages given back per reaper pass (4 KiB each: 256 MiB).
const RECLAIM_PAGES: u32 = 65_536;

/// Retired containers looked up per statement.
const RETIRED_BATCH: u32 = 500;

/// Containers replaced or deleted: kept for readers for the grace period,
/// then deleted, `batch` at a time until none is due, so that a backlog
/// (more overwrites in a pass than one batch) never outgrows the reaper. A
/// location is never reused, so no object can point at a retired one again.
pub(crate) async fn reap_retired(st: &Service, batch: u32) -> sluice_store::Result<usize> {
    let mut removed = 0;
    loop {
        let due = st.db.retired_before(st.config.retired_grace, batch).await?;
        for location in &due {
            match st.objects.delete(location).await {
                Ok(()) | Err(sluice_store::Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
            st.opened.remove(location);
            st.db.forget_retired(location).await?;
            removed += 1;
        }
        if due.len() < batch as usize {
            return Ok(removed);
        }
    }
}

/// One whole reaper pass, the store's listing included; `age` is how old
/// an unreferenced file must be.
#[cfg(test)]
pub(crate) async fn reap(st: &Service, age: Duration) -> sluice_store::Result<usize> {
    pass(st, age, true).await
}

/// One reaper pass: what the database names, and the store's listing when
/// `sweep`.
async fn pass(st: &Service, age: Duration, sweep: bool) -> sluice_store::Result<usize> {
    let mut removed = 0;
    for (job_id, staging) in st.db.stale_staging(500).await? {
        st.objects.delete_staging(&staging).await?;
        st.db.clear_staging(&job_id).await?;
        removed += 1;
    }
    // Resumable uploads not completed in time: closed first (a late part or
    // completion is then refused), then their parts deleted.
    for (_tenant_id, id) in st.db.expired_uploads(500).await? {
        if st.db.close_upload(&id, UploadState::Expired).await? {
            st.release_upload(&st.db.upload_by_id(&id).await?).await?;
            tracing::info!(upload = %id, "resumable upload expired; its parts were reclaimed");
            removed += 1;
        }
    }
    // Multipart uploads (S3's) their clients left open too long.
    removed += st.expire_multiparts().await?;
    // The part rows of completed ones, once their object is stored.
    st.db.forget_assembled_parts().await?;
    // The database pages small objects' deleted or replaced containers
    // held (SQLite; PostgreSQL's autovacuum does it there).
    st.db.reclaim_free_pages(RECLAIM_PAGES).await?;
    // Closed sessions whose S3 multipart upload could not be aborted then
    // (the store was down): aborted now.
    for u in st.db.closed_uploads_with_multipart(500).await? {
        st.release_upload(&u).await?;
        tracing::info!(upload = %u.id, "a closed upload's multipart upload was aborted");
        removed += 1;
    }
    removed += reap_retired(st, RETIRED_BATCH).await?;
    if sweep {
        removed += sweep_store(st, age).await?;
    }
    if removed > 0 {
        tracing::info!(removed, "reaper removed unreferenced objects");
    }
    Ok(removed)
}

/// What only a listing of the store finds: multipart uploads whose writer
/// went silent, and files older than `age` that nothing needs.
async fn sweep_store(st: &Service, age: Duration) -> sluice_store::Result<usize> {
    let mut removed = 0;
    // Multipart uploads whose writer went silent (a node killed mid-write).
    for (location, marker) in st.objects.abandoned_multipart(st.config.reaper_multipart_age).await? {
        st.objects.abort_abandoned(&location, &marker).await?;
        tracing::info!(path = %marker.path, "aborted an abandoned multipart upload");
        removed += 1;
    }
    // Files of sessions that no longer need them (a release that failed
    // or never ran: the store was down, the node was killed between
    // closing a session and deleting its parts, a part that landed after
    // its session was aborted).
    let mut needed = std::collections::HashMap::new();
    for (location, upload) in st.objects.old_upload_files(age).await? {
        let in_use = match needed.get(&upload) {
            Some(in_use) => *in_use,
            None => {
                let in_use = st.upload_files_in_use(&upload).await?;
                needed.insert(upload, in_use);
                in_use
            }
        };
        if !in_use {
            st.objects.delete(&location).await?;
            removed += 1;
        }
    }
    for (location, job_id) in st.objects.old_staging(age).await? {
        if !st.db.staging_in_use(&job_id, &location).await? {
            st.objects.delete(&location).await?;
            removed += 1;
        }
    }
    // Every container, a batch at a time: a store may hold millions.
    let mut containers = st.objects.old_containers(age).try_chunks(sluice_store::IN_USE_BATCH);
    while let Some(batch) = containers.try_next().await.map_err(|e| e.1)? {
        let in_use = st.db.locations_in_use(&batch).await?;
        for location in batch.iter().filter(|l| !in_use.contains(*l)) {
            st.objects.delete(location).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Origins, Settings};

    fn config(interval: u64, min_age: u64, multipart_age: u64) -> Config {
        let given = Settings {
            reaper_interval_secs: Some(interval),
            reaper_min_age_secs: Some(min_age),
            reaper_multipart_age_secs: Some(multipart_age),
            ..Settings::default()
        };
        Config::resolve(given, Origins::default()).unwrap()
    }

    #[test]
    fn the_store_is_listed_every_quarter_of_the_shorter_minimum_age() {
        assert_eq!(sweep_interval(&Config::defaults().unwrap()), Duration::from_secs(900));
        assert_eq!(sweep_interval(&config(60, 3600, 600)), Duration::from_secs(150));
        // Never more often than a pass; with no minimum age, every pass.
        assert_eq!(sweep_interval(&config(60, 120, 3600)), Duration::from_secs(60));
        assert_eq!(sweep_interval(&config(1, 0, 0)), Duration::from_secs(1));
    }
}
