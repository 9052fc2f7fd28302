//! The reaper: background cleanup of what nothing references any more.

use std::time::Duration;

use futures_util::TryStreamExt;
use sluice_store::UploadState;
use tokio::task::JoinHandle;

use crate::Service;

/// Background cleanup, every `reaper_interval` (default a minute): staged
/// uploads of finished jobs; staged uploads no job refers to (an upload cut
/// off by a crash); files of resumable uploads that are closed and no job
/// reads; and containers no object refers to (an attempt that lost
/// its lease, a streamed upload cut off), each only once older than
/// `reaper_min_age` (default an hour, far longer than any write in progress
/// goes without touching its file); and S3 multipart uploads whose writer
/// sent no part for `reaper_multipart_age` (default an hour).
pub(crate) fn start(st: &Service) -> JoinHandle<()> {
    let st = st.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(st.config.reaper_interval).await;
            if st.is_shutting_down() {
                return;
            }
            if let Err(e) = reap(&st, st.config.reaper_min_age).await {
                tracing::warn!(error = %e, "reaper pass failed");
            }
        }
    })
}

/// Free database pages given back per reaper pass (4 KiB each: 256 MiB).
const RECLAIM_PAGES: u32 = 65_536;

/// One reaper pass; `age` is how old an unreferenced object must be.
pub(crate) async fn reap(st: &Service, age: Duration) -> sluice_store::Result<usize> {
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
    // Multipart uploads whose writer went silent (a node killed mid-write).
    for (location, marker) in st.objects.abandoned_multipart(st.config.reaper_multipart_age).await? {
        st.objects.abort_abandoned(&location, &marker).await?;
        tracing::info!(path = %marker.path, "aborted an abandoned multipart upload");
        removed += 1;
    }
    // Closed sessions whose S3 multipart upload could not be aborted then
    // (the store was down): aborted now.
    for u in st.db.closed_uploads_with_multipart(500).await? {
        st.release_upload(&u).await?;
        tracing::info!(upload = %u.id, "a closed upload's multipart upload was aborted");
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
    // Containers replaced or deleted: kept for readers for the grace
    // period, then deleted. A location is never reused, so no object can
    // point at a retired one again.
    for location in st.db.retired_before(st.config.retired_grace, 500).await? {
        match st.objects.delete(&location).await {
            Ok(()) | Err(sluice_store::Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        st.opened.remove(&location);
        st.db.forget_retired(&location).await?;
        removed += 1;
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
    if removed > 0 {
        tracing::info!(removed, "reaper removed unreferenced objects");
    }
    Ok(removed)
}
