//! The HTTP side: `/metrics` (OpenMetrics text), the landing page, health.
//! It knows nothing of Docker or systemd: it only encodes the store.

use std::fmt::Write;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;

use crate::collector::{self, Store};

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
            registry: Arc::new(collector::registry(store.clone())),
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
        .route("/-/healthy", get(|| async { "OK\n" }))
        .route("/-/ready", get(|| async { "OK\n" }))
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

/// The landing page: version, links, and each collector's status and freshness.
pub fn landing_page(store: &Store, telemetry_path: &str) -> String {
    let now = collector::unix_now();
    let mut rows = String::new();
    for slot in store.slots() {
        let p = slot.current();
        let (status, class) = match (p.success, p.last_success) {
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
