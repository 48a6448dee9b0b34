//! The HTTP side: `/metrics`, the landing page, health. It knows nothing of
//! Docker or systemd: it only serves the store.
//!
//! - `/metrics` answers in OpenMetrics 1.0 when the `Accept` header asks for
//!   it (Prometheus does), else in the classic text format 0.0.4; gzip when
//!   `Accept-Encoding` allows. The body is the collectors' blocks as encoded
//!   when they were published, sent as they are (no copy), then the
//!   exporter's own families and the `process_*` self-metrics (`process`,
//!   read per scrape). At most `--web.max-requests` are served at once;
//!   more get 503 at once, as node_exporter does.
//! - `--web.config.file` adds basic auth, `rate_limit` (`auth`) and headers
//!   as layers over the same router (`with_web_config`).
//! - `serve` speaks plain HTTP or TLS, with the connection limits that keep
//!   a flood of clients from starving the scraper (`serve`, `stall`, `tls`).

mod auth;
mod landing;
mod peers;
pub mod process;
mod serve;
mod stall;
mod tls;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::sync::Semaphore;

use crate::metrics::Format;
use crate::store::Store;
use crate::web_config::WebConfig;

pub use crate::metrics::{OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE};
pub use auth::LOGIN_QUEUE;
pub use landing::landing_page;
pub use serve::{
    HEADER_READ_TIMEOUT, IDLE_TIMEOUT, MAX_BUF_SIZE, MAX_CONNECTIONS, MAX_CONNECTIONS_PER_PEER,
    serve,
};
pub use stall::WRITE_STALL_TIMEOUT;
pub use tls::{HANDSHAKE_TIMEOUT, HANDSHAKES_PER_PEER};

/// node_exporter's `--web.max-requests` default.
pub const DEFAULT_MAX_REQUESTS: usize = 40;

#[derive(Clone)]
pub struct AppState {
    store: Arc<Store>,
    telemetry_path: Arc<str>,
    scrapes: Arc<Semaphore>,
}

impl AppState {
    /// `max_requests`: scrapes served at once (`--web.max-requests`); 0 means no limit.
    pub fn new(store: Arc<Store>, telemetry_path: &str, max_requests: usize) -> Self {
        let permits = if max_requests == 0 {
            Semaphore::MAX_PERMITS
        } else {
            max_requests
        };
        AppState {
            store,
            telemetry_path: telemetry_path.into(),
            scrapes: Arc::new(Semaphore::new(permits)),
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
        // gzip when the client accepts it; tiny bodies (health) stay as they are.
        .layer(tower_http::compression::CompressionLayer::new())
}

/// The format the `Accept` header asks for: OpenMetrics when it rates
/// `application/openmetrics-text` at least as high as `text/plain`, else
/// text 0.0.4 (also for no header, `*/*`, or nothing we know).
pub fn negotiate(headers: &HeaderMap) -> Format {
    let (mut openmetrics, mut text) = (0.0f32, 0.0f32);
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let mut params = range.split(';');
            let media = params.next().unwrap_or("").trim();
            let q = params
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if media.eq_ignore_ascii_case("application/openmetrics-text") {
                openmetrics = openmetrics.max(q);
            } else if media.eq_ignore_ascii_case("text/plain") {
                text = text.max(q);
            }
        }
    }
    if openmetrics > 0.0 && openmetrics >= text {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

/// A scrape's body goes out in pieces this big, so that hyper (whose write
/// buffer `max_buf_size` bounds) pulls the next only as the client reads.
const BODY_CHUNK: usize = 16 * 1024;

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Ok(permit) = state.scrapes.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "Limit of concurrent requests reached (--web.max-requests), try again later.\n",
        )
            .into_response();
    };
    let format = negotiate(&headers);
    let body = state.store.exposition(format, &process::families());
    // The scrape counts against --web.max-requests until its body is sent
    // (or the client goes away), as node_exporter's limit does, but never
    // longer than WRITE_STALL_TIMEOUT: a client that reads a byte now and
    // then must not hold a place for ever.
    let (sent, body_done) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = tokio::time::timeout(WRITE_STALL_TIMEOUT, body_done).await;
        drop(permit);
    });
    let chunks = body.into_iter().flat_map(|piece| {
        (0..piece.len()).step_by(BODY_CHUNK).map(move |at| {
            Ok::<_, std::convert::Infallible>(piece.slice(at..(at + BODY_CHUNK).min(piece.len())))
        })
    });
    let release = futures_util::stream::poll_fn(move |_| {
        let _held = &sent;
        std::task::Poll::Ready(None)
    });
    let stream = futures_util::StreamExt::chain(futures_util::stream::iter(chunks), release);
    let mut response = axum::body::Body::from_stream(stream).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response
}

async fn landing(State(state): State<AppState>) -> Html<String> {
    Html(landing_page(&state.store, &state.telemetry_path))
}

/// `router` behind the web config: its headers on every response, then
/// `rate_limit` and basic auth on every path but the health checks
/// (`auth::OPEN_PATHS`, which probes reach without credentials).
pub fn with_web_config(router: Router, web: &WebConfig) -> Router {
    let router = if web.basic_auth.is_some() || web.rate_limit.is_some() {
        router.layer(middleware::from_fn_with_state(
            auth::Gate {
                logins: web.basic_auth.clone().map(auth::Logins::new),
                rate_limit: web.rate_limit.clone(),
            },
            auth::gate,
        ))
    } else {
        router
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::Request;
    use base64::Engine;
    use tower::ServiceExt;

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn negotiation_follows_accept() {
        // Prometheus 2.x and 3.x defaults.
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(negotiate(&accept(prometheus)), Format::OpenMetrics);
        let prefers_text =
            "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5";
        assert_eq!(negotiate(&accept(prefers_text)), Format::Text);
        assert_eq!(
            negotiate(&accept("application/openmetrics-text")),
            Format::OpenMetrics
        );
        assert_eq!(
            negotiate(&accept("application/openmetrics-text;q=0")),
            Format::Text
        );
        assert_eq!(negotiate(&accept("*/*")), Format::Text);
        assert_eq!(negotiate(&HeaderMap::new()), Format::Text);
    }

    async fn get(app: &Router, uri: &str, headers: &[(&str, &str)]) -> Response {
        let mut request = Request::builder().uri(uri);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        app.clone()
            .oneshot(request.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn body(response: Response) -> Vec<u8> {
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec()
    }

    #[tokio::test]
    async fn formats_and_gzip() {
        let store = crate::scheduler::Scheduler::new().store();
        let app = router(AppState::new(store, "/metrics", 40));
        let om = get(
            &app,
            "/metrics",
            &[("accept", "application/openmetrics-text")],
        )
        .await;
        assert_eq!(om.headers()[header::CONTENT_TYPE], OPENMETRICS_CONTENT_TYPE);
        let om = String::from_utf8(body(om).await).unwrap();
        assert!(om.ends_with("# EOF\n"), "{om}");
        assert!(om.contains("# TYPE process_cpu_seconds counter\n"), "{om}");
        let text = get(&app, "/metrics", &[]).await;
        assert_eq!(text.headers()[header::CONTENT_TYPE], TEXT_CONTENT_TYPE);
        let text = String::from_utf8(body(text).await).unwrap();
        assert!(!text.contains("# EOF"), "{text}");
        assert!(
            text.contains("# TYPE process_cpu_seconds_total counter\n"),
            "{text}"
        );
        assert!(text.contains("\nprocess_open_fds "), "{text}");
        let gz = get(&app, "/metrics", &[("accept-encoding", "gzip")]).await;
        assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(&body(gz).await[..2], &[0x1f, 0x8b]);
    }

    #[tokio::test]
    async fn past_max_requests_503_at_once() {
        let store = crate::scheduler::Scheduler::new().store();
        let state = AppState::new(store, "/metrics", 1);
        let held = state.scrapes.clone().try_acquire_owned().unwrap();
        let app = router(state);
        assert_eq!(
            get(&app, "/metrics", &[]).await.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            get(&app, "/-/healthy", &[]).await.status(),
            StatusCode::OK,
            "only scrapes count"
        );
        drop(held);
        // A scrape holds its place until its body is consumed.
        let unread = get(&app, "/metrics", &[]).await;
        assert_eq!(unread.status(), StatusCode::OK);
        assert_eq!(
            get(&app, "/metrics", &[]).await.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert!(!body(unread).await.is_empty());
        // Given back by a task of its own, a moment later.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(get(&app, "/metrics", &[]).await.status(), StatusCode::OK);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unread_scrape_holds_its_place_no_longer_than_the_stall_timeout() {
        let store = crate::scheduler::Scheduler::new().store();
        let app = router(AppState::new(store, "/metrics", 1));
        let _unread = get(&app, "/metrics", &[]).await;
        tokio::time::sleep(WRITE_STALL_TIMEOUT - std::time::Duration::from_secs(1)).await;
        assert_eq!(
            get(&app, "/metrics", &[]).await.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        assert_eq!(get(&app, "/metrics", &[]).await.status(), StatusCode::OK);
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
        let app = with_web_config(router(AppState::new(store, "/metrics", 40)), &web);
        let denied = get(&app, "/metrics", &[]).await;
        assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(denied.headers()["x-content-type-options"], "nosniff");
        assert_eq!(
            denied.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"node-sentinel\""
        );
        let creds = format!("Basic {}", b64(b"u:pw"));
        let allowed = get(
            &app,
            "/metrics",
            &[
                ("authorization", &creds),
                ("accept", "application/openmetrics-text"),
            ],
        )
        .await;
        assert_eq!(allowed.status(), StatusCode::OK);
        assert_eq!(allowed.headers()["x-content-type-options"], "nosniff");
        assert_eq!(
            allowed.headers()[header::CONTENT_TYPE],
            OPENMETRICS_CONTENT_TYPE
        );
    }

    #[tokio::test]
    async fn rate_limit_spares_cached_credentials() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let web = WebConfig::parse(
            &format!("basic_auth_users:\n  u: {hash}\nrate_limit:\n  interval: 1h\n  burst: 2\n"),
            std::path::Path::new("."),
        )
        .unwrap();
        let store = crate::scheduler::Scheduler::new().store();
        let app = with_web_config(router(AppState::new(store, "/metrics", 40)), &web);
        let right = format!("Basic {}", b64(b"u:pw"));
        let wrong = format!("Basic {}", b64(b"u:nope"));
        // The first login spends a token (bcrypt), the wrong one the last.
        assert_eq!(
            get(&app, "/metrics", &[("authorization", &right)])
                .await
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            get(&app, "/metrics", &[("authorization", &wrong)])
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
        let limited = get(&app, "/metrics", &[("authorization", &wrong)]).await;
        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(limited.headers()[header::RETRY_AFTER], "3600");
        assert_eq!(
            get(&app, "/metrics", &[]).await.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        // Known-good credentials never wait for a token.
        for _ in 0..5 {
            assert_eq!(
                get(&app, "/metrics", &[("authorization", &right)])
                    .await
                    .status(),
                StatusCode::OK
            );
        }
    }
}
