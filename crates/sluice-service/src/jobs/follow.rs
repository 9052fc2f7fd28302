//! Following a job live (the native API's server-sent events, the
//! dashboard) without a database query per follower.
//!
//! The first follower of a job on this node starts one poller for it: it
//! reads the job's row every 250 ms and publishes each change once, on a
//! `watch` channel; while the job runs on this node its progress comes
//! from memory and the database is read again only once it ended. Every
//! other follower of the same job on this node subscribes to that channel,
//! so a thousand dashboards on one job cost the database what one does.
//! Followers on other nodes share their own node's poller. The poller stops
//! after publishing the final state, or when its last follower is gone.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use sluice_store::{Job, JobProgress, Scope};
use tokio::sync::watch;

use crate::auth::Caller;
use crate::{Result, Service};

/// How often a followed job's row is read.
const POLL: Duration = Duration::from_millis(250);

/// What followers see: the job's row and its progress.
pub type Seen = Option<(Job, JobProgress)>;

/// The pollers of the jobs followed on this node, by (tenant id, job id).
#[derive(Debug, Default)]
pub struct Followed {
    feeds: Mutex<HashMap<(String, String), Weak<Feed>>>,
}

/// One job's published state, shared by its followers.
#[derive(Debug)]
struct Feed {
    rx: watch::Receiver<Seen>,
}

/// One follower of a job.
#[derive(Debug)]
pub struct Follower {
    _feed: Arc<Feed>,
    rx: watch::Receiver<Seen>,
    first: bool,
}

impl Follower {
    /// The job as it is now (at once, the first time), then at each
    /// change; `None` once the job finished and its last state was seen.
    pub async fn next(&mut self) -> Option<(Job, JobProgress)> {
        if !self.first && self.rx.changed().await.is_err() {
            return None;
        }
        self.first = false;
        loop {
            let seen = self.rx.borrow_and_update().clone();
            match seen {
                Some(s) => return Some(s),
                // Not read yet: wait for the poller's first read.
                None => self.rx.changed().await.ok()?,
            }
        }
    }
}

impl Service {
    /// Follows the caller's job `id`.
    pub async fn follow_job(&self, caller: &Caller, id: &str) -> Result<Follower> {
        let who = caller.require(Scope::Read)?;
        // Checked once here: the job exists and is the caller's tenant's.
        let job = self.db.job(&who.tenant_id, id).await?;
        let key = (job.tenant_id.clone(), job.id.clone());
        let mut feeds = self
            .followed
            .feeds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        feeds.retain(|_, f| f.strong_count() > 0);
        let feed = match feeds.get(&key).and_then(Weak::upgrade) {
            Some(f) => f,
            None => {
                let progress = self.progress(&job);
                let (tx, rx) = watch::channel(Some((job, progress)));
                tokio::spawn(poll(self.clone(), key.0.clone(), key.1.clone(), tx));
                let f = Arc::new(Feed { rx });
                feeds.insert(key, Arc::downgrade(&f));
                f
            }
        };
        let rx = feed.rx.clone();
        Ok(Follower {
            _feed: feed,
            rx,
            first: true,
        })
    }
}

/// Reads the job every `POLL` and publishes changes, until it finished
/// or nobody follows it.
async fn poll(st: Service, tenant_id: String, id: String, tx: watch::Sender<Seen>) {
    metrics::gauge!("sluice_followed_jobs").increment(1.0);
    loop {
        let finished = tx.borrow().as_ref().is_some_and(|(job, _)| job.state.is_terminal());
        if finished {
            break;
        }
        tokio::select! {
            () = tx.closed() => break,
            () = tokio::time::sleep(POLL) => {}
        }
        // Running here (and seen running): its progress is in memory, and
        // only its end needs the database.
        if let Some(running) = st.running.get(&id) {
            let progress = super::dispatcher::progress_of(&running.progress);
            let seen_running = tx
                .borrow()
                .as_ref()
                .is_some_and(|(job, _)| job.state == sluice_store::JobState::Running);
            if seen_running {
                tx.send_if_modified(|seen| match seen {
                    Some((_, p)) if *p != progress => {
                        *p = progress;
                        true
                    }
                    _ => false,
                });
                continue;
            }
        }
        match st.db.job(&tenant_id, &id).await {
            Ok(job) => {
                let progress = st.progress(&job);
                tx.send_if_modified(|seen| {
                    let changed = seen
                        .as_ref()
                        .is_none_or(|(j, p)| j.state != job.state || *p != progress);
                    if changed {
                        *seen = Some((job, progress));
                    }
                    changed
                });
            }
            // Deleted with its tenant: nothing more to follow.
            Err(sluice_store::Error::NotFound(_)) => break,
            // The database is briefly unreachable: try again next time.
            Err(e) => tracing::debug!(error = %e, job = id, "reading a followed job failed"),
        }
    }
    metrics::gauge!("sluice_followed_jobs").decrement(1.0);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use sluice_store::Scope;

    use crate::objects::{Put, Stored};
    use crate::testing::TestService;
    use crate::{Body, Settings};

    /// Connections `t`'s database handed out over `secs` seconds (its own
    /// pool's: tests running beside it do not count).
    async fn acquired_over(t: &TestService, secs: u64) -> u64 {
        let before = t.service.db.acquires();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        t.service.db.acquires() - before
    }

    /// A thousand followers of one job share one poller: the database sees
    /// about the queries of one follower (of none, while the job runs
    /// here), and every follower sees the job through to its end.
    #[tokio::test]
    async fn a_thousand_followers_cost_one_poller() {
        // A job that runs as its (tiny) body streams in: not a small object.
        let t = TestService::start(Settings {
            small_object_max: Some(0),
            ..Settings::default()
        })
        .await;
        let caller = t.caller(&t.tenant("acme", Scope::Write).await).await;
        // An upload processed as it streams in, kept open by its client.
        let (tx, rx) = futures_channel::mpsc::unbounded::<std::io::Result<Bytes>>();
        tx.unbounded_send(Ok(Bytes::from_static(b"followed"))).unwrap();
        let body: Body = Box::pin(rx);
        let put = Put {
            key: "k".into(),
            wait: true,
            ..Put::default()
        };
        let service = t.service.clone();
        let caller2 = caller.clone();
        let upload = tokio::spawn(async move { service.put_object(&caller2, put, body).await });
        let job = loop {
            let page = t.service.jobs(&caller, Some("running"), None, None).await.unwrap();
            if let Some(j) = page.items.into_iter().next() {
                break j;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let baseline = acquired_over(&t, 3).await;
        let mut followers = Vec::new();
        for _ in 0..1000 {
            followers.push(t.service.follow_job(&caller, &job.id).await.unwrap());
        }
        let during = acquired_over(&t, 3).await;
        assert!(
            during <= 2 * baseline.max(2),
            "{during} database acquisitions in 3 s with 1000 followers, {baseline} with none"
        );
        let watchers: Vec<_> = followers
            .into_iter()
            .map(|mut f| {
                tokio::spawn(async move {
                    let mut last = None;
                    while let Some((j, _)) = f.next().await {
                        last = Some(j.state);
                    }
                    last
                })
            })
            .collect();
        drop(tx);
        assert!(matches!(upload.await.unwrap(), Ok(Stored::Now(_))));
        for end in futures_util::future::join_all(watchers).await {
            assert_eq!(end.unwrap(), Some(sluice_store::JobState::Succeeded));
        }
        t.stop().await;
    }
}
