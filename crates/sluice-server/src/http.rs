//! The connection loop: HTTP/1.1 on hyper, with the protections axum's own
//! `serve` does not set.
//!
//! - **Connection limit**: at most `max_connections` are served at once; the
//!   next is accepted only when one closes (the rest wait in the kernel's
//!   listen backlog), so file descriptors and per-connection memory stay
//!   bounded.
//! - **Header-read timeout**: a client must send a request's head within
//!   `header_timeout` (slow-loris); it also closes idle keep-alive
//!   connections after that long. A head larger than `max_header_bytes`
//!   is refused by hyper (431).
//! - **Write-idle timeout**: a socket write that makes no progress for
//!   `write_idle` (a client that stopped reading its download) fails and
//!   ends the connection, which drops the response body and ends its
//!   transfer. A client reading slowly is not cut: each write that
//!   completes starts the clock again. Nothing waits on a thread for it.
//! - **Shutdown**: on the signal the listener closes, each connection
//!   finishes its current request and closes; [`serve`] returns when all
//!   have, or after the drain period (an event stream never finishes).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_io_timeout::TimeoutStream;

/// Unsent bytes a connection's socket may hold before a write waits.
#[cfg(any(target_os = "linux", target_os = "android"))]
const UNSENT_LOW_WATER: u32 = 128 << 10;

/// How the connections are served.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time to send a request's head.
    pub header_timeout: Duration,
    /// Largest request head.
    pub max_header_bytes: usize,
    /// Longest a socket write may make no progress.
    pub write_idle: Duration,
    /// How long shutdown waits for open connections (SSE streams, long
    /// transfers) before it drops them.
    pub drain: Duration,
    /// Which face the listener serves (`native`, `s3`), for the metrics.
    pub face: &'static str,
}

/// Serves `app` on `listener` until `shutdown` completes, then waits for
/// the open connections to finish their requests.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, shutdown: impl Future<Output = ()>) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // hyper's read buffer bounds the head; it cannot be below 8 KiB.
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        // Little unsent data waits in the kernel: a write completes as the
        // client takes bytes, so the write-idle clock measures the client,
        // not how much the send buffer had grown to (megabytes, which a
        // slow reader takes minutes to drain). Throughput is kept: what is
        // in flight on the wire is not limited, only what waits behind it.
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let _ = socket2::SockRef::from(&stream).set_tcp_notsent_lowat(UNSENT_LOW_WATER);
        let service = TowerToHyperService::new(app.clone());
        let mut stream = TimeoutStream::new(stream);
        stream.set_write_timeout(Some(limits.write_idle));
        let conn = graceful.watch(http.serve_connection(TokioIo::new(Box::pin(stream)), service));
        let face = limits.face;
        metrics::counter!("sluice_http_connections_total", "face" => face).increment(1);
        metrics::gauge!("sluice_http_connections_open", "face" => face).increment(1.0);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                // Slow-loris heads end here as timeouts, malformed heads as parse errors.
                let kind = if write_stalled(&e) {
                    metrics::counter!("sluice_transfers_cut_total", "reason" => "idle_timeout", "direction" => "download")
                        .increment(1);
                    "write_idle_timeout"
                } else if e.is_timeout() {
                    "header_timeout"
                } else if e.is_parse() || e.is_parse_too_large() {
                    "bad_request_head"
                } else {
                    "other"
                };
                metrics::counter!("sluice_http_connection_errors_total", "face" => face, "kind" => kind).increment(1);
                tracing::debug!(error = %e, "connection ended with an error");
            }
            metrics::gauge!("sluice_http_connections_open", "face" => face).decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain, graceful.shutdown()).await.is_err() {
        tracing::info!("connections still open after the grace period: closing them");
    }
}

/// Whether a connection ended because a write made no progress in time.
fn write_stalled(e: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::TimedOut;
        }
        source = s.source();
    }
    false
}
