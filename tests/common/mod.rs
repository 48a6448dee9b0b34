//! Shared harness for integration tests: start the real exporter binary,
//! scrape it, read values, and find the real components the tests drive.
//!
//! Under CI=true a missing component fails the test; elsewhere it is skipped
//! with a note on stderr.
#![allow(dead_code, clippy::disallowed_methods, clippy::unwrap_used)]

pub mod cri;
pub mod deployed;
pub mod prometheus;
pub mod rules;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The exporter binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_node-sentinel"))
}

/// Whether we run under CI, where nothing may be skipped.
pub fn ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Find `program` on PATH (or as an absolute path). Under CI a missing one
/// panics; elsewhere returns None so the test can return early.
pub fn require(program: &str) -> Option<PathBuf> {
    let found = if program.starts_with('/') {
        Path::new(program).exists().then(|| PathBuf::from(program))
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(program))
                .find(|p| p.is_file())
        })
    };
    if found.is_none() {
        assert!(
            !ci(),
            "{program} is required under CI but was not found (run tests/run.sh, which installs it)"
        );
        eprintln!("SKIP: {program} not found; tests/run.sh installs it");
    }
    found
}

/// Whether we are root; most real-component tests need it. Under CI, not being root fails.
pub fn require_root() -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        assert!(!ci(), "integration tests must run as root under CI");
        eprintln!("SKIP: not root");
    }
    root
}

/// A free TCP port on 127.0.0.1, below the kernel's ephemeral range: a port
/// from that range can be taken by any outgoing connection on the machine
/// between this check and the listener's bind (an exporter once failed to
/// start with EADDRINUSE that way). Ports are handed out in turn from a
/// start that differs per test binary, so two tests never get the same one.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let low = 10_000;
    let span = ephemeral_low.saturating_sub(low);
    if span < 1000 {
        // No room below the ephemeral range: let the kernel pick.
        return TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("no free port");
    }
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (low + (start + n) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {low}..{ephemeral_low}");
}

/// A temporary directory removed on drop (best effort).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let base = std::env::temp_dir();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = base.join(format!("sentinel-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running exporter; killed on drop.
pub struct Exporter {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Exporter {
    /// Start the exporter on a free loopback port with `args`, and wait until it serves.
    pub fn start(args: &[&str]) -> Exporter {
        Exporter::start_with_env(&[], args)
    }

    /// [`Exporter::start`] with extra environment variables. A port taken
    /// between [`free_port`]'s check and the exporter's bind is retried on
    /// another one (what held it is printed, for the record).
    pub fn start_with_env(env: &[(&str, &str)], args: &[&str]) -> Exporter {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let port = free_port();
            let log = std::env::temp_dir().join(format!("sentinel-exporter-{port}.log"));
            let logfile = std::fs::File::create(&log).expect("create log");
            let child = Command::new(binary())
                .envs(env.iter().copied())
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .args(args)
                .stdout(Stdio::null())
                .stderr(logfile)
                .spawn()
                .expect("start exporter");
            let mut exporter = Exporter { child, port, log };
            let deadline = Instant::now() + Duration::from_secs(10);
            let exited = loop {
                if let Ok(Some(status)) = exporter.child.try_wait() {
                    break status;
                }
                if http_get(port, "/-/healthy").is_ok() {
                    return exporter;
                }
                assert!(
                    Instant::now() < deadline,
                    "exporter did not start: {}",
                    exporter.logs()
                );
                std::thread::sleep(Duration::from_millis(50));
            };
            let logs = exporter.logs();
            if logs.contains("Address already in use") && attempts < 3 {
                let held = Command::new("ss")
                    .args(["-tanp", &format!("sport = :{port}")])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .unwrap_or_default();
                eprintln!("port {port} was taken before the exporter bound it; retrying:\n{held}");
                continue;
            }
            panic!("exporter exited with {exited}: {logs}");
        }
    }

    /// Everything the exporter logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// GET /metrics and return the body.
    pub fn scrape(&self) -> String {
        http_get(self.port, "/metrics").expect("scrape").1
    }

    /// Scrape and parse.
    pub fn metrics(&self) -> Metrics {
        Metrics::parse(&self.scrape())
    }

    /// Scrape until `check` returns Some, or panic after `timeout` with `what`.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut(&Metrics) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        let mut last = Metrics::default();
        while Instant::now() < deadline {
            last = self.metrics();
            if let Some(v) = check(&last) {
                return v;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "timed out after {timeout:?} waiting for {what}\nlast scrape:\n{}\nexporter log:\n{}",
            last.text,
            self.logs()
        );
    }

    /// The exporter's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A plain HTTP/1.1 GET on loopback; returns (status, body). No client crate needed.
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/openmetrics-text\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// One parsed series.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed scrape (a small parser for assertions; CI also checks the output
/// with Python's prometheus_client OpenMetrics parser).
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    pub series: Vec<Series>,
    pub text: String,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let mut series = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (name_labels, value) = match line.rsplit_once(' ') {
                Some(x) => x,
                None => continue,
            };
            let value = match value {
                "+Inf" | "inf" | "+inf" => f64::INFINITY,
                "-Inf" | "-inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or(f64::NAN),
            };
            let (name, labels) = match name_labels.split_once('{') {
                Some((n, rest)) => (n.to_string(), parse_labels(rest.trim_end_matches('}'))),
                None => (name_labels.to_string(), BTreeMap::new()),
            };
            series.push(Series {
                name,
                labels,
                value,
            });
        }
        Metrics {
            series,
            text: text.to_string(),
        }
    }

    /// All series named `name` whose labels include every pair in `want`.
    pub fn find(&self, name: &str, want: &[(&str, &str)]) -> Vec<&Series> {
        self.series
            .iter()
            .filter(|s| {
                s.name == name
                    && want
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The value of the single series matching, if exactly one matches.
    pub fn get(&self, name: &str, want: &[(&str, &str)]) -> Option<f64> {
        match self.find(name, want).as_slice() {
            [one] => Some(one.value),
            _ => None,
        }
    }

    /// Whether any series of this name exists.
    pub fn has(&self, name: &str) -> bool {
        self.series.iter().any(|s| s.name == name)
    }
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let key = key.trim_start_matches(',').trim().to_string();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('"') {
            break;
        }
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.insert(key, value);
    }
    out
}

/// Run a command to completion and return stdout; panics with stderr on failure.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Poll `f` until it returns Some, or panic after `timeout` naming `what`.
pub fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(v) = f() {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// Send a signal to a process (SIGSTOP/SIGCONT/SIGKILL...), by number.
pub fn signal(pid: u32, sig: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// A process a test started, its output in a log file; stopped on drop
/// (SIGCONT in case the test stopped it, SIGTERM, SIGKILL after 15 s).
pub struct Daemon {
    name: String,
    child: Child,
}

impl Daemon {
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Daemon {
        let out = std::fs::File::create(log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Daemon {
            name: name.to_string(),
            child,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = self.child.id();
        signal(pid, rustix::process::Signal::CONT);
        signal(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{} did not stop on SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
