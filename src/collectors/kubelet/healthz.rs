//! The kubelet's own health endpoint (`--collector.kubelet.healthz-url`,
//! `http://127.0.0.1:10248/healthz` by default: plain HTTP on loopback), probed
//! the way the runtimes are: one GET at a time in a background task
//! (single-flight, [`OpState`]), whose in-flight age shows a kubelet that
//! accepts and never answers. One hyper HTTP/1.1 client connection per probe
//! (the kubelet answers a 2-byte `ok`; at most [`MAX_RESPONSE`] bytes are read).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

use crate::collector::unix_now;
use crate::collectors::probing::{Ending, FailureReason, OpState};
use crate::metrics::{Family, flag};
use crate::panics;

/// Why a healthz probe failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No answer within the timeout.
    Timeout,
    /// Nothing listens (refused, unreachable).
    Connect,
    /// It answered, but not 200 `ok`.
    HttpStatus,
    /// The connection broke, or the answer was not HTTP.
    Io,
}

impl Reason {
    pub const ALL: [Reason; 4] = [Reason::Timeout, Reason::Connect, Reason::HttpStatus, Reason::Io];

    pub fn label(self) -> &'static str {
        match self {
            Reason::Timeout => "timeout",
            Reason::Connect => "connect",
            Reason::HttpStatus => "http_status",
            Reason::Io => "io",
        }
    }
}

impl FailureReason for Reason {
    fn index(self) -> usize {
        self as usize
    }
    fn is_timeout(self) -> bool {
        self == Reason::Timeout
    }
    fn answered(self) -> bool {
        self == Reason::HttpStatus
    }
}

/// The most of an answer read: healthz says `ok`, or a short failure list.
const MAX_RESPONSE: usize = 8192;

/// A parsed `http://host:port/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `host:port`, as connected to and sent in `Host:`.
    pub authority: String,
    pub path: String,
}

/// Parse the healthz URL: plain `http://` only (the kubelet's healthz port
/// serves no TLS).
pub fn parse_url(s: &str) -> Result<Url, String> {
    let uri: hyper::Uri = s.parse().map_err(|e| format!("'{s}' is not a URL: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err(format!(
            "'{s}' is not an http:// URL (the kubelet's healthz port is plain HTTP)"
        ));
    }
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("'{s}' has no host"))?;
    let authority = uri.authority().map_or("", |a| a.as_str());
    if authority != host && uri.port_u16().is_none() {
        return Err(format!("'{s}' has a bad port or user info"));
    }
    Ok(Url {
        // The host keeps an IPv6 address's brackets.
        authority: format!("{host}:{}", uri.port_u16().unwrap_or(80)),
        path: uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string(),
    })
}

#[derive(Debug, Default)]
struct State {
    op: OpState<4>,
}

/// The healthz probe: started from `collect`, read without waiting.
pub struct Healthz {
    url: Url,
    timeout: Duration,
    shared: Arc<Mutex<State>>,
    task: Option<JoinHandle<()>>,
}

/// One GET; Ok if the answer is 200 with body `ok`.
async fn probe(url: &Url) -> Result<(), Reason> {
    let stream = tokio::net::TcpStream::connect(url.authority.as_str())
        .await
        .map_err(|_| Reason::Connect)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| Reason::Io)?;
    let request = hyper::Request::get(url.path.as_str())
        .header(hyper::header::HOST, url.authority.as_str())
        .header(hyper::header::USER_AGENT, "node-sentinel")
        .body(Empty::<Bytes>::new())
        .map_err(|_| Reason::Io)?;
    let exchange = async move {
        let response = sender.send_request(request).await.map_err(|_| Reason::Io)?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|_| Reason::Io)?
            .to_bytes();
        // `sender` drops here, so the connection future ends too.
        Ok::<_, Reason>((status, body))
    };
    let (answer, _) = tokio::join!(exchange, connection);
    let (status, body) = answer?;
    judge(status, &body)
}

/// Whether an answer is the kubelet's healthy `200 ok`.
pub fn judge(status: StatusCode, body: &[u8]) -> Result<(), Reason> {
    if status == StatusCode::OK && body.trim_ascii() == b"ok" {
        Ok(())
    } else {
        Err(Reason::HttpStatus)
    }
}

impl Healthz {
    pub fn new(url: Url, timeout: Duration) -> Self {
        Healthz {
            url,
            timeout,
            shared: Arc::default(),
            task: None,
        }
    }

    /// Start a probe unless one is outstanding.
    pub fn start(&mut self, now: Instant) {
        if !panics::lock(&self.shared).op.begin(now) {
            return;
        }
        let url = self.url.clone();
        let timeout = self.timeout;
        let started = Instant::now();
        // Abandoned (the task panicked or was aborted): a failed probe of
        // reason io, never a timeout, so never a hang.
        let ending = Ending::new(self.shared.clone(), move |st: &mut State, panicked| {
            st.op.finish(Err(Reason::Io), started.elapsed(), unix_now());
            if let Some(text) = panicked {
                let detail = format!("the healthz probe {text}; counted as reason io");
                st.op.panic_log.failed("kubelet", "panic", &detail);
            }
        });
        self.task = Some(tokio::spawn(panics::quiet(async move {
            let result = tokio::time::timeout(timeout, probe(&url))
                .await
                .unwrap_or(Err(Reason::Timeout));
            let elapsed = started.elapsed();
            ending.finish(|st| {
                if result.is_ok() {
                    st.op.panic_log.ok("kubelet");
                }
                st.op.finish(result, elapsed, unix_now());
            });
        })));
    }

    /// The healthz families as of `now`.
    pub fn families(&self, now: Instant) -> Vec<Family> {
        let st = panics::lock(&self.shared);
        let mut up = Family::gauge(
            "sentinel_kubelet_healthz_up",
            "1 if the kubelet's healthz answered 200 ok at the latest probe and no probe has waited for the timeout since.",
        );
        up.push(vec![], flag(st.op.last_ok && st.op.in_flight_for(now) < self.timeout));
        let mut duration = Family::histogram(
            "sentinel_kubelet_healthz_duration_seconds",
            "Latency of answered healthz probes.",
        );
        duration.push_histogram(vec![], st.op.duration.clone());
        let mut in_flight = Family::gauge(
            "sentinel_kubelet_healthz_in_flight_seconds",
            "Age of the outstanding healthz probe, 0 when none; grows while the kubelet accepts and does not answer.",
        );
        in_flight.push(vec![], st.op.in_flight_for(now).as_secs_f64());
        let mut failures = Family::counter(
            "sentinel_kubelet_healthz_failures",
            "Failed healthz probes by reason (timeout, connect, http_status, io).",
        );
        for r in Reason::ALL {
            failures.push(vec![("reason", r.label().to_string())], st.op.failures[r.index()] as f64);
        }
        vec![up, duration, in_flight, failures]
    }
}

impl Drop for Healthz {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:10248/healthz").unwrap(),
            Url { authority: "127.0.0.1:10248".into(), path: "/healthz".into() }
        );
        assert_eq!(parse_url("http://localhost").unwrap().authority, "localhost:80");
        assert_eq!(parse_url("http://[::1]:10248/healthz").unwrap().authority, "[::1]:10248");
        for bad in ["https://127.0.0.1:10250/healthz", "127.0.0.1:10248", "http:///healthz", "http://h:x/", "http://h/a b"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn answers() {
        assert_eq!(judge(StatusCode::OK, b"ok"), Ok(()));
        assert_eq!(judge(StatusCode::OK, b"ok\n"), Ok(()));
        assert_eq!(
            judge(StatusCode::INTERNAL_SERVER_ERROR, b"[-]syncloop failed"),
            Err(Reason::HttpStatus)
        );
        assert_eq!(judge(StatusCode::OK, b"not ok"), Err(Reason::HttpStatus));
    }

    /// A one-shot server answering `raw` to the first request.
    async fn answering(raw: &'static [u8]) -> Url {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf).await;
            let _ = conn.write_all(raw).await;
        });
        parse_url(&format!("http://127.0.0.1:{port}/healthz")).unwrap()
    }

    #[tokio::test]
    async fn probes_read_what_the_kubelet_says() {
        let ok = answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
        assert_eq!(probe(&ok).await, Ok(()));
        let chunked =
            answering(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\no\r\n1\r\nk\r\n0\r\n\r\n")
                .await;
        assert_eq!(probe(&chunked).await, Ok(()));
        let failing =
            answering(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 18\r\n\r\n[-]syncloop failed")
                .await;
        assert_eq!(probe(&failing).await, Err(Reason::HttpStatus));
        let ssh = answering(b"SSH-2.0-OpenSSH_9.2\r\n").await;
        assert_eq!(probe(&ssh).await, Err(Reason::Io));
    }

    #[tokio::test]
    async fn one_probe_at_a_time_and_its_age_shows_a_silent_kubelet() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(conn);
            }
        });
        let url = parse_url(&format!("http://127.0.0.1:{port}/healthz")).unwrap();
        let mut h = Healthz::new(url, Duration::from_secs(30));
        let t0 = Instant::now();
        for _ in 0..5 {
            h.start(Instant::now());
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
        let text = crate::metrics::render(&h.families(t0 + Duration::from_secs(3)));
        assert!(text.contains("sentinel_kubelet_healthz_up 0"), "{text}");
        let age = text
            .lines()
            .find_map(|l| l.strip_prefix("sentinel_kubelet_healthz_in_flight_seconds "))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap();
        assert!(age > 2.5, "{text}");
        server.abort();
    }
}
