//! The sluice service: uploads become jobs in a persistent queue, a pool of
//! workers runs them through the engine, and results are served back —
//! whole containers, restored content, or byte ranges of it.
//!
//! One multi-thread Tokio runtime carries HTTP, the workers and the
//! database pool; the engine's CPU work runs on its own pool, reached
//! through `spawn_blocking`, never on the async workers. State lives only in
//! the database and the object store ([`sluice_store`]).
//!
//! The CLI's `sluice serve` calls [`serve`], `sluice worker` [`work`] and
//! `sluice admin` [`admin`]. Any number of them may share one database and
//! one object store.

#![forbid(unsafe_code)]

pub mod admin;
mod auth;
mod bridge;
pub mod config;
mod http;
mod inline;
mod json;
pub mod jwt;
mod keys;
pub mod limits;
mod problem;
mod query;
mod routes;
mod sink;
mod source;
mod state;
mod telemetry;
mod ui;
mod watch;
mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use sluice_engine::{Engine, EngineConfig};
use sluice_store::{Db, Objects};
use tokio::sync::Notify;

pub use config::{Config, LogFormat, Settings};
pub use routes::{health::OPENAPI, ROUTES};

use crate::keys::Keys;
use crate::limits::Limits;
use crate::source::OpenedCache;
use crate::state::{AppState, Running};

/// Sets up logging (`RUST_LOG` filters, default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// What a process of the service does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `sluice serve`: the HTTP API and dashboard, and (unless
    /// `--workers 0`) jobs.
    Serve,
    /// `sluice worker`: jobs only (and `/metrics` on `--metrics-listen`).
    Worker,
}

/// Builds the runtime described by `config` and serves until SIGTERM or
/// SIGINT, then drains: stops accepting, lets running jobs finish within
/// the grace period, releases the rest.
pub fn serve(config: Config) -> anyhow::Result<()> {
    start(config, Role::Serve)
}

/// Runs jobs from the shared queue without serving the API, until SIGTERM
/// or SIGINT; then lets running jobs finish within the grace period and
/// releases the rest.
pub fn work(config: Config) -> anyhow::Result<()> {
    if config.max_running_jobs == 0 {
        anyhow::bail!("a worker runs at least one job at a time (--workers N, N >= 1)");
    }
    start(config, Role::Worker)
}

fn start(config: Config, role: Role) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.runtime_threads)
        .max_blocking_threads(config.max_blocking_threads)
        .thread_stack_size(config.thread_stack_size)
        .thread_name("sluice-rt")
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(config, role))
}

/// Most valid tokens kept in memory.
const PRINCIPAL_CACHE: u64 = 100_000;

async fn open_state(config: Config) -> anyhow::Result<AppState> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("{}: cannot create the data directory", config.data_dir.display()))?;
    let engine = Engine::new(EngineConfig {
        threads: Some(config.cpu_threads),
        shared_memory: Some(config.engine_memory),
        ..EngineConfig::default()
    })?;
    let key_path = config.master_key.clone();
    let key_engine = engine.clone();
    let (keys, created) = tokio::task::spawn_blocking(move || Keys::load_or_create(&key_path, key_engine)).await??;
    if created {
        tracing::warn!(path = %config.master_key.display(), "generated a new server master key (mode 0600): back it up, every stored object depends on it");
    }
    let db = Db::open(&config.database, &config.db)
        .await
        .context("opening the database")?;
    let objects = Objects::open(&config.objects, config.store).context("opening the object store")?;
    let job_slots = config.max_running_jobs;
    let part_buffer_mib = config.part_buffer_mib as usize;
    let opened = OpenedCache::new(config.index_cache);
    let jwt = match &config.jwt {
        Some(j) => Some(Arc::new(jwt::JwtVerifier::new(j.clone())?)),
        None => None,
    };
    let limits = Arc::new(Limits::new(config.limits));
    let metrics_token = match &config.metrics_token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read the metrics token", path.display()))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let telemetry = Arc::new(telemetry::Telemetry::new(metrics_token)?);
    Ok(AppState {
        config: Arc::new(config),
        db,
        objects,
        engine,
        keys: Arc::new(keys),
        opened,
        principals: moka::future::Cache::builder()
            .max_capacity(PRINCIPAL_CACHE)
            .time_to_live(std::time::Duration::from_secs(300))
            .build(),
        limits,
        auth_revision: Arc::new(std::sync::atomic::AtomicI64::new(-1)),
        jwt,
        running: Arc::new(Running::default()),
        job_slots: Arc::new(tokio::sync::Semaphore::new(job_slots)),
        part_buffers: Arc::new(tokio::sync::Semaphore::new(part_buffer_mib)),
        requests_in_flight: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        job_queued: Arc::new(Notify::new()),
        shutting_down: Arc::new(AtomicBool::new(false)),
        telemetry,
    })
}

async fn run(config: Config, role: Role) -> anyhow::Result<()> {
    tracing::info!(role = ?role, config = %serde_json::to_string(&config).unwrap_or_default(), "effective configuration");
    let listen = config.listen;
    let grace = config.shutdown_grace;
    let state = open_state(config).await?;
    let listener = match role {
        Role::Serve => {
            let l = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            tracing::info!(address = %l.local_addr()?, "listening");
            Some(l)
        }
        Role::Worker => None,
    };
    let watcher = watch::start(&state).await?;
    if let Some(jwt) = &state.jwt {
        jwt.prefetch().await;
    }
    let sampler = telemetry::start_sampler(&state);
    let metrics_listener = match state.config.metrics_listen {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for /metrics"))?;
            tracing::info!(address = %l.local_addr()?, "metrics listening");
            Some(tokio::spawn(telemetry::serve_separately(l, state.clone())))
        }
        None => None,
    };
    // `--workers 0`: this node serves; others run the jobs.
    let dispatcher = (state.config.max_running_jobs > 0).then(|| worker::start(&state));
    if dispatcher.is_none() {
        tracing::info!("--workers 0: jobs are left to worker nodes");
    }
    let reaper = worker::start_reaper(&state);
    // PostgreSQL: a node that runs jobs wakes on jobs other nodes queue,
    // instead of at its next poll.
    let waker = dispatcher
        .as_ref()
        .and_then(|_| state.db.wake_on_queued_jobs(state.job_queued.clone()));
    let stopping = state.shutting_down.clone();
    let notify = state.job_queued.clone();
    let stop = async move {
        shutdown_signal().await;
        tracing::info!("shutdown: no new requests or jobs");
        stopping.store(true, Ordering::SeqCst);
        notify.notify_waiters();
    };
    match listener {
        Some(listener) => {
            let app = routes::router(state.clone());
            let limits = http::Limits {
                max_connections: state.config.max_connections,
                header_timeout: state.config.header_timeout,
                max_header_bytes: state.config.max_header_bytes,
                drain: grace,
            };
            http::serve(listener, app, limits, stop).await;
        }
        None => stop.await,
    }
    // Running jobs get the grace period, then are cancelled and released.
    let deadline = tokio::time::Instant::now() + grace;
    while !state.running.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    if !state.running.is_empty() {
        tracing::info!(jobs = state.running.len(), "grace period over: releasing running jobs");
        state.running.cancel_all();
    }
    if let Some(d) = dispatcher {
        let _ = d.await;
    }
    reaper.abort();
    if let Some(w) = waker {
        w.abort();
    }
    watcher.abort();
    sampler.abort();
    if let Some(m) = metrics_listener {
        m.abort();
    }
    state.db.close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
