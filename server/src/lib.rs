//! custos server mode: the HTTP(S) face of [`custos_platform::Platform`].
//!
//! - One **writer thread** owns the write-side `Platform` (it is not `Sync`, and
//!   SQLite has one writer) and group-commits every append request waiting in its
//!   bounded queue into one transaction; each request is answered after the commit.
//! - Reads (authentication, listing, verify) run on a small pool of read-side
//!   connections in the blocking pool; SQLite's WAL lets them run beside the writer.
//! - Bearer tokens are the CLI's actors and roles; denials are recorded as `access_denied`.
//! - TLS (rustls, ring provider) when a PEM certificate and key are given.
//! - SIGTERM/SIGINT stop accepting, let in-flight requests finish (their commits
//!   included), then the writer drains its queue and the server returns.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bench;
mod body;
mod capabilities;
mod error;
pub mod metrics;
mod pool;
mod routes;
mod tls;
mod writer;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use custos_platform::Platform;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub use body::{parse as parse_body, Format};
pub use error::{ApiError, ServerError};
pub use routes::{op, router, Access, AppState, OpFn, OpInput};

/// Default body limit of `POST /v1/events`: 16 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 16 << 20;
/// Default maximum events gathered into one group commit.
pub const DEFAULT_MAX_BATCH: usize = 10_000;
/// Default depth of the writer's queue (requests); senders wait when it is full.
pub const DEFAULT_QUEUE: usize = 1024;

/// How to run the server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Store location.
    pub store: String,
    /// Root key file.
    pub root_key: PathBuf,
    /// Address to listen on (`127.0.0.1:8080`; port 0 picks a free one).
    pub listen: String,
    /// PEM certificate chain and private key: serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Largest accepted append body, bytes.
    pub body_limit: usize,
    /// Most events gathered into one group commit.
    pub max_batch: usize,
    /// Writer queue depth, requests.
    pub queue: usize,
    /// How long a graceful shutdown waits for in-flight requests.
    pub grace: Duration,
    /// Defaults from the config file (key rotation days, alert thresholds) for settings
    /// the log has not recorded — the same the CLI applies.
    pub defaults: custos_platform::Defaults,
}

impl Config {
    /// Defaults for `store` and its root key, listening on `listen`.
    pub fn new(store: &str, root_key: PathBuf, listen: &str) -> Self {
        Self {
            store: store.to_string(),
            root_key,
            listen: listen.to_string(),
            tls: None,
            body_limit: DEFAULT_BODY_LIMIT,
            max_batch: DEFAULT_MAX_BATCH,
            queue: DEFAULT_QUEUE,
            grace: Duration::from_secs(30),
            defaults: custos_platform::Defaults::default(),
        }
    }
}

/// What a finished server reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// Events appended while it ran.
    pub events_appended: u64,
    /// True when every in-flight request finished within the grace period.
    pub drained: bool,
}

/// A future that resolves on SIGTERM or SIGINT. Call it early (inside the
/// runtime): the handlers are installed when it is created, not when polled.
pub fn shutdown_signal() -> Result<impl Future<Output = ()>, ServerError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(|e| ServerError::Io(format!("installing SIGTERM handler: {e}")))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| ServerError::Io(format!("installing SIGINT handler: {e}")))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
    })
}

/// Runs the server until `shutdown` resolves. `ready` is called with the bound
/// address once the socket accepts connections.
pub async fn serve(cfg: Config, ready: impl FnOnce(SocketAddr), shutdown: impl Future<Output = ()>) -> Result<Summary, ServerError> {
    let tls = match &cfg.tls {
        Some((cert, key)) => Some(tls::acceptor(cert, key)?),
        None => None,
    };
    // The writer opens its own platform; a bad store or key fails here, before binding.
    // Opened off the async threads: the PostgreSQL backend's synchronous client runs its
    // own runtime, which cannot start inside this one.
    let (store, key, defaults) = (cfg.store.clone(), cfg.root_key.clone(), cfg.defaults.clone());
    let writer_platform = tokio::task::spawn_blocking(move || Platform::open(&store, &key).map(|p| p.with_defaults(defaults)))
        .await
        .map_err(|e| ServerError::Io(format!("opening the store: {e}")))??;
    let pool = pool::Pool::new(&cfg.store, cfg.root_key.clone(), cfg.defaults.clone(), routes::SHORT_READS + routes::LONG_READS);
    let metrics = Arc::new(metrics::Metrics::default());
    let (tx, rx) = mpsc::channel(cfg.queue.max(1));
    let writer = writer::spawn(writer_platform, rx, cfg.max_batch.max(1), metrics.clone())
        .map_err(|e| ServerError::Io(format!("starting the writer thread: {e}")))?;
    let state = AppState::new(pool, tx.clone(), metrics.clone(), cfg.body_limit);
    let app = router(state.clone());

    let listener = TcpListener::bind(&cfg.listen).await.map_err(|e| ServerError::Io(format!("cannot listen on {}: {e}", cfg.listen)))?;
    let addr = listener.local_addr().map_err(|e| ServerError::Io(e.to_string()))?;
    ready(addr);

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let svc = TowerToHyperService::new(app);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            r = listener.accept() => {
                let (stream, _peer) = match r {
                    Ok(x) => x,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let svc = svc.clone();
                let watcher = graceful.watcher();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let mut b = hyper::server::conn::http1::Builder::new();
                    // Slow-header clients (slowloris) are cut off.
                    b.timer(TokioTimer::new()).header_read_timeout(Duration::from_secs(30));
                    let r = match tls {
                        Some(acc) => match tokio::time::timeout(Duration::from_secs(10), acc.accept(stream)).await {
                            Ok(Ok(s)) => watcher.watch(b.serve_connection(TokioIo::new(s), svc)).await,
                            Ok(Err(e)) => {
                                tracing::debug!("TLS handshake failed: {e}");
                                return;
                            }
                            Err(_) => return,
                        },
                        None => watcher.watch(b.serve_connection(TokioIo::new(stream), svc)).await,
                    };
                    if let Err(e) = r {
                        tracing::debug!("connection ended: {e}");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    // Stop accepting, then let every open connection finish its current request.
    drop(listener);
    state.set_stopping();
    let drained = tokio::time::timeout(cfg.grace, graceful.shutdown()).await.is_ok();
    if !drained {
        tracing::warn!("grace period over; {} requests did not finish", "some");
    }
    // Everything queued before Stop is committed and answered before the writer returns.
    let _ = tx.send(writer::Msg::Stop).await;
    drop(tx);
    drop(state);
    tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|e| ServerError::Io(format!("writer: {e}")))?
        .map_err(|_| ServerError::Io("the writer thread panicked".into()))?;
    Ok(Summary { events_appended: metrics.events_appended(), drained })
}
