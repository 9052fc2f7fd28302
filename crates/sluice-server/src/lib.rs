//! The native HTTP face of the sluice service: routes that parse a
//! request, call one [`sluice_service::Service`] method and map its answer
//! (errors through [`problem::Problem`], built in one place); server-sent
//! events, the web dashboard's assets, the OpenAPI document, request ids
//! and HTTP metrics; and the process that hosts it (runtime, listeners,
//! signals, drain).
//!
//! The CLI's `sluice serve` calls [`serve`] and `sluice worker` [`work`].
//! Any number of them may share one database and one object store.

#![forbid(unsafe_code)]

pub mod api;
pub mod extract;
mod http;
mod jwks;
pub mod observe;
pub mod openapi;
pub mod problem;
mod routes;
mod ui;

use std::net::SocketAddr;
use std::sync::Arc;

use sluice_service::settings::LogFormat;
use sluice_service::{Config, Service, SettingsError};

pub use routes::{router, ROUTES};

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

/// Why serving stopped before it began, or could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A setting does not allow this role.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The service could not open or start.
    #[error(transparent)]
    Service(#[from] sluice_service::Error),
    /// An address cannot be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The JWKS client could not start.
    #[error("{0}")]
    Jwks(String),
}

/// What a process of the service does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `sluice serve`: the HTTP API and dashboard, and (unless it has no
    /// job slots) jobs.
    Serve,
    /// `sluice worker`: jobs only (and `/metrics` on `metrics_listen`).
    Worker,
}

/// Builds the runtime described by `config` and serves until SIGTERM or
/// SIGINT, then drains: stops accepting, lets running jobs finish within
/// the grace period, releases the rest.
pub fn serve(config: Config) -> Result<(), ServeError> {
    start(config, Role::Serve)
}

/// Runs jobs from the shared queue without serving the API, until SIGTERM
/// or SIGINT; then lets running jobs finish within the grace period and
/// releases the rest.
pub fn work(config: Config) -> Result<(), ServeError> {
    if config.max_running_jobs == 0 {
        return Err(config
            .invalid(
                "max_running_jobs",
                "a worker runs at least one job at a time (1 or more)",
            )
            .into());
    }
    start(config, Role::Worker)
}

fn start(config: Config, role: Role) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.runtime_threads)
        .max_blocking_threads(config.max_blocking_threads)
        .thread_stack_size(config.thread_stack_size)
        .thread_name("sluice-rt")
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    runtime.block_on(run(config, role))
}

/// Opens the service `config` describes, with what this face provides
/// (the HTTP client that fetches a JWT issuer's keys).
pub async fn open(config: Config) -> Result<Service, ServeError> {
    let mut builder = Service::builder(config.clone());
    if let Some(jwt) = &config.jwt {
        builder = builder.jwks(Arc::new(jwks::HttpJwks::new(jwt.timeout).map_err(ServeError::Jwks)?));
    }
    Ok(builder.open().await?)
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, ServeError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen { addr, source })
}

async fn run(config: Config, role: Role) -> Result<(), ServeError> {
    tracing::info!(role = ?role, config = %serde_json::to_string(&config).unwrap_or_default(), "effective configuration");
    let listen = config.listen;
    let grace = config.shutdown_grace;
    let service = open(config).await?;
    let listener = match role {
        Role::Serve => {
            let l = bind(listen).await?;
            tracing::info!(address = %l.local_addr().unwrap_or(listen), "listening");
            Some(l)
        }
        Role::Worker => None,
    };
    let background = service.start().await?;
    let metrics_listener = match service.config().metrics_listen {
        Some(addr) => {
            let l = bind(addr).await?;
            tracing::info!(address = %l.local_addr().unwrap_or(addr), "metrics listening");
            Some(tokio::spawn(observe::serve_separately(l, service.clone())))
        }
        None => None,
    };
    let s3_listener = match (role, service.config().s3_listen) {
        (Role::Serve, Some(addr)) => {
            let l = bind(addr).await?;
            tracing::info!(address = %l.local_addr().unwrap_or(addr), "S3 API listening");
            Some(l)
        }
        _ => None,
    };
    let (stopped_tx, stopped) = tokio::sync::watch::channel(false);
    let stopping = service.clone();
    let stop = async move {
        shutdown_signal().await;
        tracing::info!("shutdown: no new requests or jobs");
        stopping.begin_shutdown();
        let _ = stopped_tx.send(true);
    };
    let limits = {
        let c = service.config();
        http::Limits {
            max_connections: c.max_connections,
            header_timeout: c.header_timeout,
            max_header_bytes: c.max_header_bytes,
            write_idle: c.idle_body_timeout,
            drain: grace,
            face: "native",
        }
    };
    // The S3 face: the same limits and shutdown as the native API.
    let s3_face = s3_listener.map(|l| {
        let mut stopped = stopped.clone();
        let router = sluice_s3::router(service.clone());
        tokio::spawn(async move {
            let limits = http::Limits { face: "s3", ..limits };
            http::serve(l, router, limits, async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await;
        })
    });
    match listener {
        Some(listener) => http::serve(listener, router(service.clone()), limits, stop).await,
        None => stop.await,
    }
    if let Some(face) = s3_face {
        let _ = face.await;
    }
    background.stop(&service, grace).await;
    if let Some(m) = metrics_listener {
        m.abort();
    }
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
