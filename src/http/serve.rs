//! Serving connections on a network every pod can reach (the DaemonSet runs
//! with `hostNetwork`), so that no client can starve Prometheus:
//!
//! - a new connection must complete its first request head within
//!   [`HEADER_READ_TIMEOUT`]: a silent or trickling client is closed then.
//! - after a response, hyper's `header_read_timeout` (it needs a timer,
//!   [`TokioTimer`]) runs until the next request head is complete, so it is
//!   the idle keep-alive timeout: [`IDLE_TIMEOUT`], longer than scrape
//!   intervals, so that Prometheus keeps one connection, as it does with
//!   node_exporter. A client that once sent a request gains nothing it could
//!   not have by sending one every few seconds; the caps below bound both.
//! - `max_buf_size` bounds what a client can make us buffer per connection.
//! - at most [`MAX_CONNECTIONS`] connections, [`MAX_CONNECTIONS_PER_PEER`]
//!   from one client address. Past either, a new connection is accepted and
//!   closed at once rather than left in the kernel's backlog, where it would
//!   queue Prometheus behind the flood.
//! - a write that waits [`super::WRITE_STALL_TIMEOUT`] for a client that
//!   stopped reading closes the connection (`stall`).
//! - TLS handshakes: see `tls`.
//!
//! Each connection's task holds its fd; the caps keep the total far below
//! the fd limit `main` raises at start-up.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::peers::PerPeer;
use super::stall::StallTimeout;
use super::tls;

/// From a connection's opening to its first complete request head.
/// Prometheus sends its head in one packet.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// From the end of a response to the next complete request head: above the
/// usual scrape intervals (15 s to 1 min), below Prometheus's own idle
/// timeout (5 min), so the scraper, not the exporter, ends a connection.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(150);
/// What hyper may buffer of one connection's request (head included).
pub const MAX_BUF_SIZE: usize = 32 * 1024;
/// Connections open at once (a few fds each at most).
pub const MAX_CONNECTIONS: usize = 512;
/// Connections open at once from one client address.
pub const MAX_CONNECTIONS_PER_PEER: usize = 32;
/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Warns at most once a minute: a flood must not flood the log too.
struct Throttled(Option<Instant>);

impl Throttled {
    fn ready(&mut self) -> bool {
        let now = Instant::now();
        if self
            .0
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(60))
        {
            return false;
        }
        self.0 = Some(now);
        true
    }
}

/// Serve `app` on `listener` until `shutdown` completes, over TLS when `tls`
/// is given; requests in flight get [`SHUTDOWN_GRACE`] to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    let total = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let connections = PerPeer::new(MAX_CONNECTIONS_PER_PEER);
    let handshakes = PerPeer::new(tls::HANDSHAKES_PER_PEER);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(IDLE_TIMEOUT)
        .max_buf_size(MAX_BUF_SIZE)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut refused_log = Throttled(None);
    let mut accept_log = Throttled(None);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of fds (EMFILE/ENFILE) or a connection reset before we
                // took it: pause briefly so a persistent error cannot spin.
                if accept_log.ready() {
                    tracing::warn!(error = %e, "accepting a connection failed");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = total.clone().try_acquire_owned() else {
            if refused_log.ready() {
                tracing::warn!(%peer, limit = MAX_CONNECTIONS, "too many connections; closing new ones");
            }
            continue;
        };
        let Some(peer_guard) = connections.take(peer.ip()) else {
            if refused_log.ready() {
                tracing::warn!(%peer, limit = MAX_CONNECTIONS_PER_PEER, "too many connections from one address; closing new ones");
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let first_request = Arc::new(Notify::new());
        let service = service(&app, peer, first_request.clone());
        let http = http.clone();
        let watcher = graceful.watcher();
        match &acceptor {
            None => {
                tokio::spawn(async move {
                    let io = TokioIo::new(StallTimeout::new(stream));
                    let connection = watcher.watch(http.serve_connection(io, service));
                    served(connection, &first_request, peer).await;
                    drop((permit, peer_guard));
                });
            }
            Some(acceptor) => {
                let Some(handshake_guard) = handshakes.take(peer.ip()) else {
                    tracing::debug!(%peer, "too many TLS handshakes from one address");
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let tls = tls::accept(acceptor, stream).await;
                    drop(handshake_guard);
                    match tls {
                        Ok(stream) => {
                            let io = TokioIo::new(StallTimeout::new(stream));
                            let connection = watcher.watch(http.serve_connection(io, service));
                            served(connection, &first_request, peer).await;
                        }
                        // Debug only, or a port scanner could fill the log.
                        Err(e) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    }
                    drop((permit, peer_guard));
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("connections still open after the shutdown grace period");
    }
    Ok(())
}

/// Serve one connection to its end, or drop it (closing it) when its first
/// request head is not complete within [`HEADER_READ_TIMEOUT`].
async fn served<E: std::fmt::Display>(
    connection: impl Future<Output = Result<(), E>>,
    first_request: &Notify,
    peer: SocketAddr,
) {
    tokio::pin!(connection);
    let ended = tokio::select! {
        ended = &mut connection => ended,
        () = first_request.notified() => connection.await,
        () = tokio::time::sleep(HEADER_READ_TIMEOUT) => {
            tracing::debug!(%peer, "no complete request head in time; closing");
            return;
        }
    };
    // Per-connection errors (timeouts, resets) are the client's.
    if let Err(e) = ended {
        tracing::debug!(%peer, error = %e, "connection ended");
    }
}

/// The router for one connection, with the client's address for the
/// handlers (`ConnectInfo`, as axum's own server provides it); each request
/// head, once complete, wakes `first_request`.
fn service(
    app: &Router,
    peer: SocketAddr,
    first_request: Arc<Notify>,
) -> TowerToHyperService<
    impl tower::Service<
        Request<Incoming>,
        Response = axum::response::Response,
        Error = std::convert::Infallible,
        Future: Send,
    > + Clone
    + Send
    + 'static,
> {
    TowerToHyperService::new(
        app.clone()
            .map_request(move |mut request: Request<Incoming>| {
                first_request.notify_one();
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            }),
    )
}
