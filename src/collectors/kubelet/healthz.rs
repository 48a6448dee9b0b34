//! The kubelet's own health endpoint (`--collector.kubelet.healthz-url`,
//! `http://127.0.0.1:10248/healthz` by default: plain HTTP on loopback), probed
//! the way the runtimes are: one GET at a time in a background task
//! (single-flight, [`OpState`]), whose in-flight age shows a kubelet that
//! accepts and never answers. The request is written by hand (HTTP/1.1,
//! `Connection: close`, at most [`MAX_RESPONSE`] bytes read): the exporter has
//! no HTTP client, and the kubelet answers a 2-byte `ok`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
    let rest = s
        .strip_prefix("http://")
        .ok_or_else(|| format!("'{s}' is not an http:// URL (the kubelet's healthz port is plain HTTP)"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("'{s}' has no host"));
    }
    let authority = if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        authority.to_string()
    } else if authority.contains(':') && !authority.ends_with(']') {
        return Err(format!("'{s}' has a bad port"));
    } else {
        format!("{authority}:80")
    };
    if path.contains(char::is_whitespace) {
        return Err(format!("'{s}' has whitespace in its path"));
    }
    Ok(Url {
        authority,
        path: path.to_string(),
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
    let mut stream = tokio::net::TcpStream::connect(url.authority.as_str())
        .await
        .map_err(|_| Reason::Connect)?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: node-sentinel\r\nConnection: close\r\n\r\n",
        url.path, url.authority
    );
    stream.write_all(request.as_bytes()).await.map_err(|_| Reason::Io)?;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|_| Reason::Io)?;
        if n == 0 || buf.len() >= MAX_RESPONSE {
            break;
        }
        buf.extend_from_slice(&chunk[..n.min(MAX_RESPONSE - buf.len())]);
    }
    judge(&buf)
}

/// Whether a raw HTTP answer is the kubelet's healthy `200 ok`.
pub fn judge(raw: &[u8]) -> Result<(), Reason> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or(Reason::Io)?;
    let mut status = head.lines().next().unwrap_or_default().split_whitespace();
    if !status.next().is_some_and(|v| v.starts_with("HTTP/")) {
        return Err(Reason::Io);
    }
    let code: u16 = status.next().and_then(|c| c.parse().ok()).ok_or(Reason::Io)?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        // "2\r\nok\r\n0\r\n\r\n": the payload is the second line.
        body.lines().nth(1).unwrap_or_default()
    } else {
        body
    };
    if code == 200 && body.trim() == "ok" {
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
        for bad in ["https://127.0.0.1:10250/healthz", "127.0.0.1:10248", "http:///healthz", "http://h:x/"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn answers() {
        assert_eq!(judge(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), Ok(()));
        assert_eq!(judge(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"), Ok(()));
        assert_eq!(
            judge(b"HTTP/1.1 500 Internal Server Error\r\n\r\n[-]syncloop failed"),
            Err(Reason::HttpStatus)
        );
        assert_eq!(judge(b"HTTP/1.1 200 OK\r\n\r\nnot ok"), Err(Reason::HttpStatus));
        assert_eq!(judge(b"garbage"), Err(Reason::Io));
        assert_eq!(judge(b"SSH-2.0\r\n\r\nok"), Err(Reason::Io));
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
