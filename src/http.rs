//! The HTTP side: `/metrics` (OpenMetrics text), the landing page, health.
//! It knows nothing of Docker or systemd: it only encodes the store.
//!
//! `--web.config.file` adds basic auth and headers as layers over the same
//! router (`with_web_config`), and `serve` speaks plain HTTP or TLS.

use std::fmt::Write;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::collector;
use crate::findings;
use crate::store::{self, Store};
use crate::web_config::{BasicAuth, WebConfig};

pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone)]
pub struct AppState {
    store: Arc<Store>,
    registry: Arc<Registry>,
    telemetry_path: Arc<str>,
}

impl AppState {
    pub fn new(store: Arc<Store>, telemetry_path: &str) -> Self {
        AppState {
            registry: Arc::new(store::registry(store.clone())),
            store,
            telemetry_path: telemetry_path.into(),
        }
    }
}

/// The exporter's routes, testable in-process with `tower::ServiceExt::oneshot`.
pub fn router(state: AppState) -> Router {
    let path = state.telemetry_path.to_string();
    Router::new()
        .route(&path, get(metrics))
        .route("/", get(landing))
        .route(
            "/-/healthy",
            get(|State(s): State<AppState>| async move {
                s.store
                    .healthy()
                    .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e))
            }),
        )
        .route(
            "/-/ready",
            get(|State(s): State<AppState>| async move {
                s.store
                    .ready()
                    .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e))
            }),
        )
        .with_state(state)
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut body = String::with_capacity(64 * 1024);
    match crate::metrics::encode_registry(&mut body, &state.registry) {
        Ok(()) => {
            let mut response = body.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE),
            );
            response
        }
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "encoding metrics failed\n",
        )
            .into_response(),
    }
}

async fn landing(State(state): State<AppState>) -> Html<String> {
    Html(landing_page(&state.store, &state.telemetry_path))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The landing page: version, links, current findings, and each collector's
/// status and freshness.
pub fn landing_page(store: &Store, telemetry_path: &str) -> String {
    let now = collector::unix_now();
    let current: Vec<_> = store.slots().iter().map(|s| s.current()).collect();
    let found = findings::evaluate(current.iter().flat_map(|p| p.families.iter()));
    let mut findings_html = String::new();
    if found.is_empty() {
        findings_html.push_str("<p class=\"ok\">Nothing wrong right now.</p>");
    } else {
        findings_html.push_str("<ul>");
        for f in &found {
            let class = match f.severity {
                findings::Severity::Critical => "bad",
                findings::Severity::Warning => "warn",
                findings::Severity::Info => "",
            };
            let _ = write!(
                findings_html,
                "<li><span class=\"{class}\">{}</span>: {}</li>",
                f.severity.as_str(),
                escape(&f.text)
            );
        }
        findings_html.push_str("</ul>");
    }
    let mut rows = String::new();
    for (slot, p) in store.slots().iter().zip(&current) {
        let (status, class) = match (p.success, p.last_success) {
            _ if !collector::installed(&p.families) => ("not installed", ""),
            (true, _) => ("ok", "ok"),
            (false, None) if p.last_error.is_none() => ("starting", "warn"),
            _ => ("failing", "bad"),
        };
        let fresh = p
            .last_success
            .map(|t| format!("{:.0}s ago", (now - t).max(0.0)))
            .unwrap_or_else(|| "never".into());
        let series: usize = p.families.iter().map(|f| f.samples.len()).sum();
        let _ = write!(
            rows,
            "<tr><td>{}</td><td class=\"{class}\">{status}</td><td>{}s</td><td>{fresh}</td><td>{:.3}s</td><td>{series}</td><td>{}</td></tr>",
            slot.name,
            slot.interval.as_secs_f64(),
            p.duration.as_secs_f64(),
            escape(p.last_error.as_deref().unwrap_or("")),
        );
    }
    let path = escape(telemetry_path);
    format!(
        r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>node-sentinel</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em .8em;text-align:left}}.ok{{color:#080}}.warn{{color:#a60}}.bad{{color:#c00}}</style>
</head><body>
<h1>node-sentinel</h1>
<p>Prometheus exporter that sees Kubernetes/Docker node outages coming. Version {version} (revision {revision}, rustc {rustc}).</p>
<ul><li><a href="{path}">Metrics</a></li><li><a href="/-/healthy">Health</a></li></ul>
<h2>Findings</h2>
{findings_html}
<h2>Collectors</h2>
<p>Collectors sample in the background; a scrape returns their latest results.</p>
<table><tr><th>collector</th><th>status</th><th>interval</th><th>last success</th><th>last duration</th><th>series</th><th>last error</th></tr>
{rows}
</table>
</body></html>
"#,
        version = crate::build_info::VERSION,
        revision = crate::build_info::REVISION,
        rustc = crate::build_info::RUSTC,
    )
}

/// `router` behind the web config: its headers on every response, then basic
/// auth on every path (`/-/healthy` too, as exporter-toolkit does).
pub fn with_web_config(router: Router, web: &WebConfig) -> Router {
    let router = match &web.basic_auth {
        Some(auth) => router.layer(middleware::from_fn_with_state(
            auth.clone(),
            require_basic_auth,
        )),
        None => router,
    };
    if web.headers.is_empty() {
        return router;
    }
    let headers: Arc<[(HeaderName, HeaderValue)]> = web.headers.clone().into();
    router.layer(middleware::map_response_with_state(
        headers,
        |State(headers): State<Arc<[(HeaderName, HeaderValue)]>>, mut response: Response| async move {
            for (name, value) in headers.iter() {
                response.headers_mut().insert(name.clone(), value.clone());
            }
            response
        },
    ))
}

/// `Authorization: Basic base64(user:password)`, as Go's `Request.BasicAuth` reads it.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, Vec<u8>)> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, encoded) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

async fn require_basic_auth(
    State(auth): State<Arc<BasicAuth>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some((user, password)) = basic_credentials(request.headers())
        && auth.check(user, password).await
    {
        return next.run(request).await;
    }
    let mut response = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"node-sentinel\""),
    );
    response
}

/// Serve `app` on `listener` until `shutdown` completes, over TLS when `tls`
/// is given; in-flight requests finish before this returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match tls {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(config) => {
            axum::serve(TlsListener::new(listener, config)?, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; past this, new connections wait in the
/// kernel's backlog, so a flood of idle connections cannot grow memory.
const MAX_HANDSHAKES: usize = 64;

/// A TLS listener for `axum::serve`: a background task accepts TCP
/// connections and runs each handshake in its own task, so one slow or
/// silent client never holds up the others.
struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    acceptor: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    fn new(mut tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(MAX_HANDSHAKES);
        let acceptor = TlsAcceptor::from(config);
        let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        let acceptor = tokio::spawn(async move {
            loop {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                // axum's accept retries and backs off on errors (EMFILE) itself.
                let (stream, peer) = axum::serve::Listener::accept(&mut tcp).await;
                let (tx, acceptor) = (tx.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(acceptor, stream));
                    match handshake.await {
                        Ok(Ok(tls)) => {
                            drop(slot);
                            let _ = tx.send((tls, peer)).await;
                        }
                        // Per-connection trouble is the client's; debug only, or a
                        // port scanner could fill the log.
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            ready,
            local,
            acceptor,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

/// A TLS record starts with its content type; a handshake is 0x16.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

async fn handshake(
    acceptor: TlsAcceptor,
    mut stream: TcpStream,
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    stream.peek(&mut first).await?;
    if first[0] != TLS_HANDSHAKE_RECORD && first[0].is_ascii_uppercase() {
        // Plain HTTP on the TLS port: say so, as Go's server does, instead of
        // a TLS alert that HTTP clients show as garbage.
        let _ = stream
            .write_all(b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
            .await;
        let _ = stream.shutdown().await;
        // Read what the client sent before closing: closing with unread data
        // would reset the connection, and the client might lose our answer.
        let mut sink = [0u8; 4096];
        let drain = async {
            let mut total = 0;
            while total < 64 * 1024 {
                match stream.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => total += n,
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
        return Err(std::io::Error::other("plain HTTP request on the TLS port"));
    }
    acceptor.accept(stream).await
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The acceptor task only ends when aborted by our Drop, so this
            // cannot happen while we are alive; never hand back a connection.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    fn authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn basic_credentials_like_go() {
        let ok = |v: &str| basic_credentials(&authorization(v));
        assert_eq!(
            ok(&format!("Basic {}", b64(b"alice:pa:ss"))),
            Some(("alice".into(), b"pa:ss".to_vec()))
        );
        assert_eq!(
            ok(&format!("bAsIc {}", b64(b"alice:"))),
            Some(("alice".into(), vec![]))
        );
        assert_eq!(ok(&format!("Basic {}", b64(b"alice"))), None, "no colon");
        assert_eq!(ok(&format!("Bearer {}", b64(b"a:b"))), None);
        assert_eq!(ok("Basic !!!"), None);
        assert_eq!(ok("Basic"), None);
        assert_eq!(
            ok(&format!("Basic {}", b64(b"\xff:x"))),
            None,
            "non-UTF-8 user"
        );
        assert_eq!(basic_credentials(&HeaderMap::new()), None);
    }

    #[tokio::test]
    async fn web_config_layers_in_process() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let web = WebConfig::parse(
            &format!(
                "basic_auth_users:\n  u: {hash}\nhttp_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n"
            ),
            std::path::Path::new("."),
        )
        .unwrap();
        let store = crate::scheduler::Scheduler::new().store();
        let app = with_web_config(router(AppState::new(store, "/metrics")), &web);
        let get = |auth: Option<String>| {
            let mut request = Request::builder().uri("/metrics");
            if let Some(a) = auth {
                request = request.header(header::AUTHORIZATION, a);
            }
            app.clone()
                .oneshot(request.body(axum::body::Body::empty()).unwrap())
        };
        let denied = get(None).await.unwrap();
        assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(denied.headers()["x-content-type-options"], "nosniff");
        assert_eq!(
            denied.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"node-sentinel\""
        );
        let allowed = get(Some(format!("Basic {}", b64(b"u:pw")))).await.unwrap();
        assert_eq!(allowed.status(), StatusCode::OK);
        assert_eq!(allowed.headers()["x-content-type-options"], "nosniff");
        assert_eq!(
            allowed.headers()[header::CONTENT_TYPE],
            OPENMETRICS_CONTENT_TYPE
        );
    }
}
