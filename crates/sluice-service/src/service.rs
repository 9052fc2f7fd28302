//! [`Service`]: the state every face and every background task shares,
//! how it is opened, and the background tasks it runs.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sluice_engine::{Engine, EngineConfig};
use sluice_store::{Db, Objects};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::auth::jwt::{JwksFetch, JwtVerifier};
use crate::auth::Auth;
use crate::jobs::follow::Followed;
use crate::jobs::group_commit::GroupCommit;
use crate::jobs::running::Running;
use crate::keys::Keys;
use crate::objects::read::OpenedCache;
use crate::settings::Config;
use crate::telemetry::Telemetry;
use crate::tenants::limits::Limits;
use crate::transfers::{StreamedShare, TenantLanes, TransferMemory, Transfers};
use crate::{Error, Result};

/// The service: its configuration, database, object store, engine, keys,
/// caches, limits and the jobs running on this node. Cheap to clone (one
/// `Arc`: requests and tasks clone it often); the faces hold one each.
#[derive(Clone, Debug)]
pub struct Service(Arc<Shared>);

impl std::ops::Deref for Service {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What a [`Service`] shares.
#[derive(Debug)]
pub struct Shared {
    pub(crate) config: Arc<Config>,
    pub(crate) db: Db,
    pub(crate) objects: Objects,
    pub(crate) engine: Engine,
    pub(crate) keys: Arc<Keys>,
    /// Opened containers, for range reads without unlocking again.
    pub(crate) opened: OpenedCache,
    pub(crate) auth: Arc<Auth>,
    pub(crate) limits: Arc<Limits>,
    pub(crate) running: Arc<Running>,
    /// One permit per job that may run on this node (queued jobs and
    /// uploads processed as they stream in share them).
    pub(crate) job_slots: Arc<Semaphore>,
    /// MiB of resumable-upload parts held in memory on their way into an
    /// S3 multipart upload (one permit per MiB; none left: refused).
    pub(crate) part_buffers: Arc<Semaphore>,
    /// Requests the faces are handling now (the dispatcher yields to them).
    pub(crate) requests_in_flight: Arc<AtomicUsize>,
    /// Wakes idle dispatchers when a job is queued.
    pub(crate) job_queued: Arc<Notify>,
    /// Set once shutdown began: no new work is claimed.
    pub(crate) shutting_down: Arc<AtomicBool>,
    pub(crate) telemetry: Arc<Telemetry>,
    /// Uploads and downloads in flight, within their caps.
    pub(crate) transfers: Arc<Transfers>,
    /// The memory transfers' chunks are held in.
    pub(crate) memory: Arc<TransferMemory>,
    /// Each tenant's lane in the CPU pool.
    pub(crate) lanes: Arc<TenantLanes>,
    /// Job slots each tenant's streamed uploads may hold.
    pub(crate) streamed: Arc<StreamedShare>,
    /// The jobs followed live on this node, one poller each.
    pub(crate) followed: Arc<Followed>,
    /// Records job successes many to a database commit.
    pub(crate) commits: GroupCommit,
    /// Pipelines' engine settings by tenant and name, kept briefly.
    pub(crate) options: moka::sync::Cache<(String, String), sluice_engine::EncodeOptions>,
    /// Buckets by name, kept briefly (every S3 request names one).
    pub(crate) buckets: moka::sync::Cache<String, sluice_store::Bucket>,
}

/// How to open a [`Service`] beyond its configuration.
pub struct Builder {
    config: Config,
    objects: Option<Objects>,
    jwks: Option<Arc<dyn JwksFetch>>,
}

impl Builder {
    /// Uses `objects` instead of the store the configuration names (tests
    /// use an in-memory store).
    pub fn objects(mut self, objects: Objects) -> Builder {
        self.objects = Some(objects);
        self
    }

    /// How to fetch a JWT issuer's keys, needed when JWTs are accepted
    /// (the service itself speaks no HTTP).
    pub fn jwks(mut self, fetch: Arc<dyn JwksFetch>) -> Builder {
        self.jwks = Some(fetch);
        self
    }

    /// Opens the service: the data directory, the master key (created if
    /// missing), the database (migrated), the object store.
    pub async fn open(self) -> Result<Service> {
        let config = self.config;
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            Error::Setup(format!(
                "{}: cannot create the data directory: {e}",
                config.data_dir.display()
            ))
        })?;
        let engine = Engine::new(EngineConfig {
            threads: Some(config.threads),
            shared_memory: Some(config.max_memory),
            ..EngineConfig::default()
        })
        .map_err(|e| Error::Setup(format!("cannot start the engine: {e}")))?;
        let key_path = config.master_key.clone();
        let key_engine = engine.clone();
        let (keys, created) = sluice_store::blocking::spawn(move || Keys::load_or_create(&key_path, key_engine))
            .await
            .map_err(Error::internal)?
            .map_err(|e| Error::Setup(e.to_string()))?;
        if created {
            tracing::warn!(path = %config.master_key.display(), "generated a new server master key (mode 0600): back it up, every stored object depends on it");
        }
        let db = Db::open(&config.database, &config.db)
            .await
            .map_err(|e| Error::Setup(format!("opening the database: {e}")))?;
        let objects = match self.objects {
            Some(o) => o,
            None => Objects::open(&config.objects, config.store)
                .map_err(|e| Error::Setup(format!("opening the object store: {e}")))?,
        };
        let jwt = match (&config.jwt, self.jwks) {
            (Some(j), Some(fetch)) => Some(JwtVerifier::new(j.clone(), fetch)),
            (Some(_), None) => return Err(Error::internal("JWTs are accepted but no JWKS fetcher was given")),
            (None, _) => None,
        };
        let metrics_token = match &config.metrics_token_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| Error::Setup(format!("{}: cannot read the metrics token: {e}", path.display())))?
                    .trim()
                    .to_string(),
            ),
            None => None,
        };
        Ok(Service(Arc::new(Shared {
            db: db.clone(),
            objects,
            engine,
            keys: Arc::new(keys),
            opened: OpenedCache::new(config.index_cache),
            auth: Arc::new(Auth::new(jwt)),
            limits: Arc::new(Limits::new(config.limits)),
            running: Arc::new(Running::default()),
            job_slots: Arc::new(Semaphore::new(config.max_running_jobs)),
            part_buffers: Arc::new(Semaphore::new(config.part_buffer_mib as usize)),
            requests_in_flight: Arc::new(AtomicUsize::new(0)),
            job_queued: Arc::new(Notify::new()),
            shutting_down: Arc::new(AtomicBool::new(false)),
            telemetry: Arc::new(Telemetry::new(metrics_token)),
            transfers: Arc::new(Transfers::new(config.max_transfers, config.max_transfers_per_tenant)),
            memory: Arc::new(TransferMemory::new(config.transfer_memory)),
            lanes: Arc::new(TenantLanes::default()),
            streamed: Arc::new(StreamedShare::new(config.max_running_jobs)),
            followed: Arc::new(Followed::default()),
            commits: GroupCommit::start(db.clone(), config.commit_batch_max, config.commit_delay),
            options: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(crate::pipelines::OPTIONS_TTL)
                .build(),
            buckets: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(crate::buckets::BUCKET_TTL)
                .build(),
            config: Arc::new(config),
        })))
    }
}

/// The service's background tasks on this node, stopped by
/// [`Background::stop`].
pub struct Background {
    dispatcher: Option<JoinHandle<()>>,
    others: Vec<JoinHandle<()>>,
}

/// A request a face is handling, counted while this lives.
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Service {
    /// Starts opening a service with `config`.
    pub fn builder(config: Config) -> Builder {
        Builder {
            config,
            objects: None,
            jwks: None,
        }
    }

    /// Opens a service with `config` (see [`Builder::open`]).
    pub async fn open(config: Config) -> Result<Service> {
        Service::builder(config).open().await
    }

    /// The effective configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Metrics.
    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// Starts the background work of this node: following changes made
    /// elsewhere (tokens, limits), metrics sampling, the reaper, and (if
    /// this node runs jobs) the dispatcher.
    pub async fn start(&self) -> Result<Background> {
        let mut others = vec![crate::refresh::start(self).await?];
        if let Some(jwt) = &self.auth.jwt {
            jwt.prefetch().await;
        }
        others.push(crate::telemetry::start_sampler(self));
        others.push(crate::jobs::reaper::start(self));
        let dispatcher = (self.config.max_running_jobs > 0).then(|| crate::jobs::dispatcher::start(self));
        match &dispatcher {
            // PostgreSQL: a node that runs jobs wakes on jobs other nodes
            // queue, instead of at its next poll.
            Some(_) => others.extend(self.db.wake_on_queued_jobs(self.job_queued.clone())),
            None => tracing::info!("no job slots on this node: jobs are left to worker nodes"),
        }
        Ok(Background { dispatcher, others })
    }

    /// Begins shutdown: no new job is claimed, idle dispatchers wake up.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.job_queued.notify_waiters();
    }

    /// Whether shutdown began.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Counts a request a face handles until the guard is dropped (while
    /// many are in flight, queued jobs yield to them).
    pub fn request_started(&self) -> InFlight {
        self.requests_in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(&self.requests_in_flight))
    }

    /// Requests in flight now.
    pub fn requests_in_flight(&self) -> usize {
        self.requests_in_flight.load(Ordering::Relaxed)
    }

    /// Requests in flight other than uploads and downloads (which have
    /// their own caps and may stay open for as long as a slow client
    /// takes): what tells the dispatcher that requests crowd in.
    pub(crate) fn short_requests_in_flight(&self) -> usize {
        self.requests_in_flight().saturating_sub(self.transfers.total())
    }

    /// Whether the object store is taking calls (its breaker is not open).
    pub fn storage_available(&self) -> bool {
        self.objects.available()
    }

    /// Refused while the object store's breaker is open.
    pub(crate) fn require_storage(&self) -> Result<()> {
        if self.objects.available() {
            Ok(())
        } else {
            Err(crate::tenants::limits::Refusal::StorageUnavailable {
                retry_after: self.config.store.breaker_open,
            }
            .into())
        }
    }
}

impl Background {
    /// Lets running jobs finish within `grace`, cancels (and releases) the
    /// rest, stops every task and closes the database. Call after
    /// [`Service::begin_shutdown`].
    pub async fn stop(self, service: &Service, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        while !service.running.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !service.running.is_empty() {
            tracing::info!(
                jobs = service.running.len(),
                "grace period over: releasing running jobs"
            );
            service.running.cancel_all();
        }
        if let Some(d) = self.dispatcher {
            let _ = d.await;
        }
        for task in self.others {
            task.abort();
        }
        service.db.close().await;
    }
}
