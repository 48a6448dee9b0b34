//! Serving on a shared network, against the real binary: every pod can reach
//! the port (the DaemonSet runs with `hostNetwork`), so no client may starve
//! Prometheus. Attackers connect from other loopback addresses (127.0.0.2,
//! ...), as another pod would from its own address; the scraper from
//! 127.0.0.1.
//!
//! Each flood has its false-positive case beside it: a scraper coming back
//! every second on a kept-alive connection is never cut and never 503'd.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::prometheus::{PROMETHEUS, Prometheus};
use common::{Metrics, TempDir};

/// The exporter, optionally under `prlimit` (which execs it: same PID); killed on drop.
struct Served {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: TempDir,
}

impl Served {
    fn start(nofile: Option<&str>, args: &[&str]) -> Served {
        let dir = TempDir::new("http");
        let port = common::free_port();
        let log = dir.path().join("exporter.log");
        let mut command = match nofile {
            Some(limit) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={limit}"))
                    .arg("--")
                    .arg(common::binary());
                c
            }
            None => Command::new(common::binary()),
        };
        let child = command
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start exporter");
        let mut served = Served {
            child,
            port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = served.child.try_wait() {
                panic!("exporter exited with {status}: {}", served.logs());
            }
            if served.logs().contains("listening") {
                return served;
            }
            assert!(
                Instant::now() < deadline,
                "did not start: {}",
                served.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn metrics(&self) -> Metrics {
        let (status, body) = common::http_get(self.port, "/metrics").unwrap();
        assert_eq!(status, 200, "{body}");
        Metrics::parse(&body)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Collectors cheap enough for a loaded 2-core machine, sampling every second.
const COLLECTORS: &[&str] = &[
    "--collector.disable-defaults",
    "--collector.processes",
    "--collector.processes.interval=1s",
];

/// This test process may need more fds than its soft limit.
fn raise_own_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    limit.current = limit.maximum;
    let _ = setrlimit(Resource::Nofile, limit);
}

/// A TCP connection to the exporter from `source` (any 127/8 address is local).
fn connect_from(source: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    use rustix::net::{AddressFamily, SocketType, bind, connect, socket};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None)?;
    bind(&fd, &SocketAddrV4::new(source, 0))?;
    connect(&fd, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))?;
    Ok(TcpStream::from(fd))
}

/// One request from `source` with `Connection: close`: (status, time taken).
fn request_from(source: Ipv4Addr, port: u16, path: &str, extra: &str) -> (u16, Duration) {
    let started = Instant::now();
    let status = (|| -> std::io::Result<u16> {
        let mut s = connect_from(source, port)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n"
        )?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        Ok(String::from_utf8_lossy(&raw)
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0))
    })()
    .unwrap_or(0);
    (status, started.elapsed())
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Authorization: Basic {token}\r\n")
}

#[test]
fn silent_partial_requests_do_not_starve_scrapes_at_1024_fds() {
    if common::require("prlimit").is_none() {
        return;
    }
    raise_own_fd_limit();
    // Soft and hard at 1024: the exporter cannot raise it, so only its
    // connection limits stand between the flood and the scrape.
    let served = Served::start(Some("1024:1024"), COLLECTORS);
    assert_eq!(served.metrics().get("process_max_fds", &[]), Some(1024.0));
    let attacker = Ipv4Addr::new(127, 0, 0, 2);
    let mut silent = Vec::new();
    for _ in 0..1100 {
        // The exporter closes what it will not hold; the kernel may refuse too.
        if let Ok(mut s) = connect_from(attacker, served.port) {
            let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ");
            silent.push(s);
        }
    }
    assert!(silent.len() > 1000, "only {} connected", silent.len());
    // Scrapes meanwhile: each answered at once.
    for _ in 0..5 {
        let (status, took) = request_from(Ipv4Addr::LOCALHOST, served.port, "/metrics", "");
        assert_eq!(status, 200, "{}", served.logs());
        assert!(took < Duration::from_secs(2), "scrape took {took:?}");
    }
    let m = served.metrics();
    assert_eq!(
        m.get("sentinel_collector_success", &[("collector", "processes")]),
        Some(1.0),
        "{}",
        m.text
    );
    let open = m.get("process_open_fds", &[]).unwrap();
    assert!(open < 200.0, "the flood holds {open} fds");
    assert!(
        served
            .logs()
            .contains("too many connections from one address")
    );

    // Every silent connection ends: the held ones after the header-read timeout.
    let started = Instant::now();
    for mut s in silent {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut buf = [0u8; 512];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                    panic!(
                        "a silent connection is still open after {:?}",
                        started.elapsed()
                    )
                }
                Err(_) => break,
            }
        }
    }
    assert!(started.elapsed() < Duration::from_secs(25));
    let open_after = served.metrics().get("process_open_fds", &[]).unwrap();
    assert!(open_after <= open, "{open_after} fds after, {open} during");
}

#[test]
fn a_client_trickling_its_head_byte_by_byte_is_cut_off_and_scrapes_go_on() {
    let served = Served::start(None, COLLECTORS);
    let mut s = TcpStream::connect(("127.0.0.1", served.port)).unwrap();
    let opened = Instant::now();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    // A byte every 200 ms: never idle, never a complete head.
    let cut = loop {
        std::thread::sleep(Duration::from_millis(200));
        if s.write_all(b"a").is_err() {
            break opened.elapsed();
        }
        assert!(
            opened.elapsed() < Duration::from_secs(30),
            "still open after 30 s"
        );
        let (status, took) = request_from(Ipv4Addr::LOCALHOST, served.port, "/-/healthy", "");
        assert_eq!(status, 200);
        assert!(
            took < Duration::from_secs(1),
            "a scrape beside it took {took:?}"
        );
    };
    let limit = node_sentinel::http::HEADER_READ_TIMEOUT;
    // The peer's close shows on a write only a round trip later.
    assert!(
        cut >= limit && cut < limit + Duration::from_secs(3),
        "cut after {cut:?}"
    );
}

#[test]
fn an_oversized_head_gets_431_and_no_memory_grows() {
    let served = Served::start(None, COLLECTORS);
    let rss = |m: &Metrics| m.get("process_resident_memory_bytes", &[]).unwrap();
    let before = rss(&served.metrics());
    let head = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    for _ in 0..200 {
        let mut s = TcpStream::connect(("127.0.0.1", served.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // The exporter answers and closes before reading it all: the rest of
        // the write may fail, and a reset may follow the answer.
        let _ = s.write_all(head.as_bytes());
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = s.read(&mut buf) {
            answer.extend_from_slice(&buf[..n]);
        }
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with("HTTP/1.1 431"),
            "{answer:?} {}",
            served.logs()
        );
    }
    let after = rss(&served.metrics());
    // 200 heads of 64 KiB each would be 12.5 MiB if any were kept.
    assert!(
        after - before < 4.0 * 1024.0 * 1024.0,
        "RSS {before} -> {after} bytes"
    );
}

#[test]
fn soft_fd_limit_is_raised_to_the_hard_one() {
    if common::require("prlimit").is_none() {
        return;
    }
    let served = Served::start(Some("1024:4096"), COLLECTORS);
    let m = served.metrics();
    assert_eq!(m.get("process_max_fds", &[]), Some(4096.0), "{}", m.text);
}

#[test]
fn a_kept_alive_scraper_every_second_is_never_cut() {
    let served = Served::start(None, COLLECTORS);
    let mut s = TcpStream::connect(("127.0.0.1", served.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // Longer than the header-read timeout, on one connection.
    let rounds = node_sentinel::http::HEADER_READ_TIMEOUT.as_secs() + 4;
    for round in 0..rounds {
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text\r\n\r\n"
        )
        .unwrap_or_else(|e| panic!("round {round}: connection cut: {e}"));
        let body = read_chunked_response(&mut s)
            .unwrap_or_else(|e| panic!("round {round}: connection cut: {e}"));
        assert!(body.ends_with("# EOF\n"), "round {round}: {body}");
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Read one `200` chunked response from a kept-alive connection.
fn read_chunked_response(s: &mut TcpStream) -> std::io::Result<String> {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            return Err(ErrorKind::UnexpectedEof.into());
        }
        raw.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    let mut body = Vec::new();
    loop {
        let mut line = Vec::new();
        while !line.ends_with(b"\r\n") {
            if s.read(&mut byte)? == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
            line.push(byte[0]);
        }
        let size = usize::from_str_radix(String::from_utf8_lossy(&line).trim(), 16)
            .map_err(|_| std::io::Error::from(ErrorKind::InvalidData))?;
        let mut chunk = vec![0u8; size + 2];
        s.read_exact(&mut chunk)?;
        if size == 0 {
            return Ok(String::from_utf8_lossy(&body).to_string());
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

#[test]
fn past_max_requests_scrapes_get_503_at_once() {
    let served = Served::start(None, &[COLLECTORS, &["--web.max-requests=1"]].concat());
    let port = served.port;
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                (0..40)
                    .map(|_| request_from(Ipv4Addr::LOCALHOST, port, "/metrics", ""))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let results: Vec<(u16, Duration)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let refused: Vec<_> = results.iter().filter(|(s, _)| *s == 503).collect();
    let served_ok = results.iter().filter(|(s, _)| *s == 200).count();
    assert!(
        !refused.is_empty(),
        "8 concurrent scrapers never exceeded 1"
    );
    assert!(served_ok > 0);
    assert_eq!(refused.len() + served_ok, results.len(), "{results:?}");
    assert!(
        refused
            .iter()
            .all(|(_, took)| *took < Duration::from_secs(2))
    );

    // The default (40) never refuses one scraper, nor eight at once.
    let served = Served::start(None, COLLECTORS);
    let port = served.port;
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                (0..10)
                    .map(|_| request_from(Ipv4Addr::LOCALHOST, port, "/metrics", "").0)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap().iter().all(|s| *s == 200));
    }
}

fn curl(args: &[&str]) -> (String, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-D", "-", "-o", "/dev/stderr"])
        .args(args)
        .output()
        .expect("run curl");
    assert!(out.status.success(), "curl {args:?}: {:?}", out);
    (
        String::from_utf8_lossy(&out.stdout).to_ascii_lowercase(),
        out.stderr,
    )
}

#[test]
fn gzip_and_identity_parse_alike_in_both_formats() {
    if common::require("curl").is_none() {
        return;
    }
    let served = Served::start(None, COLLECTORS);
    served.metrics();
    std::thread::sleep(Duration::from_secs(2));
    let url = format!("http://127.0.0.1:{}/metrics", served.port);
    for accept in ["application/openmetrics-text; version=1.0.0", "text/plain"] {
        let accept = format!("Accept: {accept}");
        let (head, plain) = curl(&["-H", &accept, &url]);
        assert!(!head.contains("content-encoding"), "{head}");
        // --compressed asks for gzip and decodes it: the same families come out.
        let (head_gz, unzipped) = curl(&["-H", &accept, "--compressed", &url]);
        assert!(head_gz.contains("content-encoding: gzip"), "{head_gz}");
        let names = |body: &[u8]| {
            let m = Metrics::parse(&String::from_utf8_lossy(body));
            let mut n: Vec<String> = m.series.into_iter().map(|s| s.name).collect();
            n.dedup();
            n
        };
        assert_eq!(names(&plain), names(&unzipped), "{accept}");
        assert!(
            names(&plain)
                .iter()
                .any(|n| n == "process_cpu_seconds_total")
        );
        let (_, raw_gz) = curl(&["-H", &accept, "-H", "Accept-Encoding: gzip", &url]);
        assert_eq!(&raw_gz[..2], &[0x1f, 0x8b], "gzip magic");
        assert!(
            raw_gz.len() * 3 < plain.len(),
            "{} vs {}",
            raw_gz.len(),
            plain.len()
        );
    }
}

#[test]
fn wrong_password_flood_never_locks_out_the_right_credentials() {
    // Cost 8: the debug build's bcrypt is slow; the queue logic is the same.
    let config = format!(
        "basic_auth_users:\n  alice: {}\n  bob: {}\n",
        bcrypt::hash("alice pw", 8).unwrap(),
        bcrypt::hash("bob pw", 8).unwrap()
    );
    let dir = TempDir::new("http-auth");
    let file = dir.path().join("web.yml");
    std::fs::write(&file, config).unwrap();
    let served = Served::start(
        None,
        &[
            COLLECTORS,
            &[&format!("--web.config.file={}", file.display())],
        ]
        .concat(),
    );
    let port = served.port;
    let alice = basic("alice", "alice pw");
    // Alice logged in before the flood (the cache has her).
    assert_eq!(
        request_from(Ipv4Addr::LOCALHOST, port, "/metrics", &alice).0,
        200
    );

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood: Vec<_> = (0..6)
        .map(|n| {
            let stop = stop.clone();
            // Two attacking pods, three clients each.
            let source = Ipv4Addr::new(127, 0, 0, 2 + (n % 2) as u8);
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let wrong = basic(
                        if n % 3 == 0 { "mallory" } else { "alice" },
                        &format!("guess{n}"),
                    );
                    statuses.push(request_from(source, port, "/metrics", &wrong).0);
                    std::thread::sleep(Duration::from_millis(5));
                }
                statuses
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let (status, took) = request_from(Ipv4Addr::LOCALHOST, port, "/metrics", "");
    assert_eq!(status, 401, "no credentials: {took:?}\n{}", served.logs());
    let before = served
        .metrics_with(&alice)
        .get(
            "sentinel_collector_last_success_timestamp_seconds",
            &[("collector", "processes")],
        )
        .unwrap();
    // The cached login is answered at once, every time.
    for _ in 0..20 {
        let (status, took) = request_from(Ipv4Addr::LOCALHOST, port, "/metrics", &alice);
        assert_eq!(status, 200);
        assert!(took < Duration::from_secs(2), "{took:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Bob has not logged in yet: he still gets his bcrypt within a few tries.
    let bob = basic("bob", "bob pw");
    let tries = (1..=10)
        .find(|_| {
            let ok = request_from(Ipv4Addr::LOCALHOST, port, "/metrics", &bob).0 == 200;
            if !ok {
                std::thread::sleep(Duration::from_millis(200));
            }
            ok
        })
        .expect("bob never got in during the flood");
    // The collectors keep their rounds.
    let after = served
        .metrics_with(&alice)
        .get(
            "sentinel_collector_last_success_timestamp_seconds",
            &[("collector", "processes")],
        )
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let statuses: Vec<u16> = flood.into_iter().flat_map(|t| t.join().unwrap()).collect();
    assert!(
        after > before + 1.0,
        "collector rounds stalled: {before} → {after}"
    );
    assert!(
        statuses.iter().all(|s| [401, 503].contains(s)),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&503),
        "the queue never filled: {statuses:?}"
    );
    eprintln!(
        "bob in after {tries} tries; flood: {} requests",
        statuses.len()
    );
}

impl Served {
    fn metrics_with(&self, authorization: &str) -> Metrics {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\n{authorization}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw).to_string();
        let (_, body) = text.split_once("\r\n\r\n").unwrap();
        // Chunk-size lines parse as junk series and are ignored by lookups.
        Metrics::parse(body)
    }
}

/// The subject of the certificate served on `port` (curl -k, `%{certs}`).
fn served_subject(port: u16) -> String {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-k",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{certs}",
        ])
        .arg(format!("https://127.0.0.1:{port}/-/healthy"))
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("Subject:"))
        .unwrap_or("")
        .to_string()
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/web_config")
        .join(name)
}

/// A Kubernetes Secret volume: `tls.crt -> ..data/tls.crt`, `..data -> ..v1`;
/// an update writes `..vN` and swaps `..data` atomically.
fn secret_version(dir: &Path, version: &str, cert: &str, key: &str) {
    let v = dir.join(version);
    std::fs::create_dir_all(&v).unwrap();
    std::fs::copy(fixture(cert), v.join("tls.crt")).unwrap();
    std::fs::copy(fixture(key), v.join("tls.key")).unwrap();
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(version, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
}

#[test]
fn a_rotated_certificate_is_served_without_restart() {
    if common::require("curl").is_none() {
        return;
    }
    let dir = TempDir::new("http-tls");
    secret_version(
        dir.path(),
        "..v1",
        "test-only-server.pem",
        "test-only-server.key",
    );
    for f in ["tls.crt", "tls.key"] {
        std::os::unix::fs::symlink(format!("..data/{f}"), dir.path().join(f)).unwrap();
    }
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n",
    )
    .unwrap();
    let served = Served::start(
        None,
        &[
            "--collector.disable-defaults",
            &format!("--web.config.file={}", web.display()),
        ],
    );
    let first = served_subject(served.port);
    assert!(
        first.contains("CN=localhost") || first.contains("CN = localhost"),
        "{first:?}"
    );
    // The rotation: a different certificate (and its key), swapped in at once.
    secret_version(
        dir.path(),
        "..v2",
        "test-only-rogue-client.pem",
        "test-only-rogue-client.key",
    );
    let rotated = common::wait_until(Duration::from_secs(10), "the new certificate", || {
        let subject = served_subject(served.port);
        subject.contains("rogue").then_some(subject)
    });
    assert!(rotated.contains("rogue client"), "{rotated}");
    assert!(
        served.logs().contains("TLS certificate reloaded"),
        "{}",
        served.logs()
    );
    // A broken update (a certificate without its key) keeps the last good pair.
    let v3 = dir.path().join("..v3");
    std::fs::create_dir_all(&v3).unwrap();
    std::fs::copy(fixture("test-only-server.pem"), v3.join("tls.crt")).unwrap();
    std::fs::copy(fixture("test-only-rogue-client.key"), v3.join("tls.key")).unwrap();
    let tmp = dir.path().join("..data_tmp");
    std::os::unix::fs::symlink("..v3", &tmp).unwrap();
    std::fs::rename(&tmp, dir.path().join("..data")).unwrap();
    // Files are looked at when a handshake comes, at most once a second.
    common::wait_until(Duration::from_secs(10), "the refused update logged", || {
        assert!(served_subject(served.port).contains("rogue client"));
        served
            .logs()
            .contains("keeping the previous TLS certificate")
            .then_some(())
    });
}

#[test]
fn slow_tls_handshakes_from_one_address_do_not_hold_up_others() {
    if common::require("curl").is_none() {
        return;
    }
    let dir = TempDir::new("http-tls-slow");
    for f in [
        "test-only-server.pem",
        "test-only-server.key",
        "test-only-ca.pem",
    ] {
        std::fs::copy(fixture(f), dir.path().join(f)).unwrap();
    }
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: test-only-server.pem\n  key_file: test-only-server.key\n",
    )
    .unwrap();
    let served = Served::start(
        None,
        &[
            "--collector.disable-defaults",
            &format!("--web.config.file={}", web.display()),
        ],
    );
    // 200 connections that never start their handshake.
    let silent: Vec<_> = (0..200)
        .filter_map(|_| connect_from(Ipv4Addr::new(127, 0, 0, 2), served.port).ok())
        .collect();
    let ca = dir.path().join("test-only-ca.pem");
    let started = Instant::now();
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--cacert",
        ])
        .arg(&ca)
        .arg(format!("https://127.0.0.1:{}/metrics", served.port))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "{out:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The held handshakes time out (3 s), and all are closed.
    std::thread::sleep(node_sentinel::http::HANDSHAKE_TIMEOUT + Duration::from_secs(2));
    for mut s in silent {
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                panic!("a silent TLS connection is still open")
            }
            Ok(n) if n > 0 => panic!("got {n} bytes from a connection that sent nothing"),
            _ => {}
        }
    }
}

/// A real Prometheus scraping `served` every `interval` seconds.
struct Scraper {
    prometheus: Prometheus,
    _dir: TempDir,
}

impl Scraper {
    fn start(served: &Served, interval: u64) -> Scraper {
        let dir = TempDir::new("http-prometheus");
        let prometheus = Prometheus::start(
            dir.path(),
            &format!(
                "global: {{scrape_interval: {interval}s, scrape_timeout: 1s}}\nscrape_configs:\n  - job_name: sentinel\n    static_configs: [{{targets: ['127.0.0.1:{}']}}]\n",
                served.port
            ),
        );
        Scraper {
            prometheus,
            _dir: dir,
        }
    }

    /// Once `up` has at least `at_least` samples over the last `window`
    /// seconds: that count, after checking every one of them was 1.
    fn successful_scrapes(&self, window: u64, at_least: f64) -> f64 {
        let scrapes = common::wait_until(
            Duration::from_secs(window + 60),
            "a full window of scrapes",
            || {
                let n = self
                    .prometheus
                    .value(&format!("count_over_time(up[{window}s])"))?;
                (n >= at_least).then_some(n)
            },
        );
        let worst = self
            .prometheus
            .value(&format!("min_over_time(up[{window}s])"));
        assert_eq!(worst, Some(1.0), "some scrapes failed");
        scrapes
    }

    /// TCP connections Prometheus opened to the exporter.
    fn dials(&self) -> f64 {
        Metrics::parse(&self.prometheus.own_metrics())
            .get(
                "net_conntrack_dialer_conn_established_total",
                &[("dialer_name", "sentinel")],
            )
            .expect("Prometheus's dialer counter")
    }
}

#[test]
fn prometheus_scraping_every_second_keeps_one_connection_and_never_sees_503() {
    if common::require(PROMETHEUS).is_none() {
        return;
    }
    let served = Served::start(None, COLLECTORS);
    let scraper = Scraper::start(&served, 1);
    // Past the first-head timeout, so a cut keep-alive connection would show.
    let window = node_sentinel::http::HEADER_READ_TIMEOUT.as_secs() + 8;
    let scrapes = scraper.successful_scrapes(window, window as f64 - 2.0);
    // One TCP connection for every scrape: none was cut by the exporter.
    let dials = scraper.dials();
    assert_eq!(dials, 1.0, "{scrapes} scrapes needed {dials} connections");
    assert!(!served.logs().contains("too many"), "{}", served.logs());
}

#[test]
fn prometheus_scraping_every_15s_keeps_its_connection_between_scrapes() {
    if common::require(PROMETHEUS).is_none() {
        return;
    }
    let served = Served::start(None, COLLECTORS);
    let scraper = Scraper::start(&served, 15);
    // Three scrapes: two idle gaps longer than the first-head timeout.
    let scrapes = scraper.successful_scrapes(45, 3.0);
    let dials = scraper.dials();
    assert_eq!(dials, 1.0, "{scrapes} scrapes needed {dials} connections");
}
