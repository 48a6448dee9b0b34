//! `--web.config.file` against the real binary and a real HTTP client (curl):
//! basic auth on every path, TLS (plain HTTP refused, HTTPS verified against
//! the test-only CA), client certificates, graceful shutdown under TLS, and
//! every bad file exiting 2 with the flag, the file and the problem.
//!
//! The certificates in tests/fixtures/web_config are test-only (gen.sh).
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;
use common::prometheus::{EVERY_SECOND, PROMETHEUS, Prometheus};

const PASSWORD: &str = "s3cret pass:with colon";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/web_config")
}

/// A temp dir holding the test-only certs and `web.yml` with `config`.
fn config_dir(tag: &str, config: &str) -> TempDir {
    let dir = TempDir::new(tag);
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(dir.path().join("web.yml"), config).unwrap();
    dir
}

fn bcrypt_hash(password: &str) -> String {
    // Cost 5 keeps the debug build fast; the cost does not change the logic.
    bcrypt::hash(password, 5).unwrap()
}

/// The exporter started with `--web.config.file`; killed on drop.
struct Served {
    child: Child,
    port: u16,
    log: PathBuf,
    dir: TempDir,
}

impl Served {
    /// Start with `dir/web.yml`, from `/` as working directory so that only
    /// resolution against the file's directory can find the relative paths.
    fn start(dir: TempDir) -> Served {
        let port = common::free_port();
        let log = dir.path().join("exporter.log");
        let child = Command::new(common::binary())
            .current_dir("/")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--web.config.file={}",
                dir.path().join("web.yml").display()
            ))
            .arg("--collector.disable-defaults")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start exporter");
        let mut served = Served {
            child,
            port,
            log,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = served.child.try_wait() {
                panic!("exporter exited with {status}: {}", served.logs());
            }
            if served.logs().contains("listening") {
                return served;
            }
            assert!(
                Instant::now() < deadline,
                "exporter did not start: {}",
                served.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What curl got: its exit code, the status, the headers (lowercased names) and the body.
#[derive(Debug)]
struct Reply {
    exit: i32,
    status: u16,
    headers: String,
    body: String,
}

fn curl(args: &[&str]) -> Reply {
    // Ask for OpenMetrics as Prometheus does (curl's own `*/*` gets text 0.0.4).
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10"])
        .args(["-H", "Accept: application/openmetrics-text; version=1.0.0"])
        .args(args)
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Reply {
        exit: out.status.code().unwrap_or(-1),
        status: head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        headers: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

fn assert_openmetrics(reply: &Reply) {
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(
        reply
            .headers
            .contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{reply:?}"
    );
    assert!(reply.body.contains("sentinel_build_info"), "{reply:?}");
    assert!(reply.body.trim_end().ends_with("# EOF"), "{reply:?}");
}

#[test]
fn basic_auth_protects_every_path_but_the_health_checks() {
    if common::require("curl").is_none() {
        return;
    }
    let config = format!(
        "basic_auth_users:\n  alice: {}\n  bob: {}\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n",
        bcrypt_hash(PASSWORD),
        bcrypt_hash("bobs password"),
    );
    let served = Served::start(config_dir("webcfg-auth", &config));
    let right = format!("alice:{PASSWORD}");
    for path in ["/metrics", "/", "/nowhere"] {
        let url = served.url("http", path);
        for creds in [
            None,
            Some("alice:wrong"),
            Some("alice:"),
            Some("mallory:s3cret"),
            Some(&format!("bob:{PASSWORD}")),
        ] {
            let mut args = vec![url.as_str()];
            if let Some(c) = creds {
                args.extend(["-u", c]);
            }
            let reply = curl(&args);
            assert_eq!(reply.status, 401, "{path} with {creds:?}: {reply:?}");
            assert!(
                reply
                    .headers
                    .contains("www-authenticate: basic realm=\"node-sentinel\""),
                "{reply:?}"
            );
            assert!(reply.headers.contains("x-frame-options: deny"), "{reply:?}");
            assert!(!reply.body.contains("sentinel_"), "{reply:?}");
        }
    }
    // Twice: the second answer comes from the verification cache.
    for _ in 0..2 {
        let reply = curl(&[&served.url("http", "/metrics"), "-u", &right]);
        assert_openmetrics(&reply);
        assert!(reply.headers.contains("x-frame-options: deny"), "{reply:?}");
    }
    let reply = curl(&[&served.url("http", "/-/healthy"), "-u", &right]);
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK\n"));
    // The kubelet's probes carry no credentials: the health checks are open.
    for path in ["/-/healthy", "/-/ready"] {
        let reply = curl(&[&served.url("http", path)]);
        assert_eq!((reply.status, reply.body.as_str()), (200, "OK\n"), "{path}");
        let reply = curl(&[&served.url("http", path), "-u", "mallory:s3cret"]);
        assert_eq!(reply.status, 200, "{path} {reply:?}");
    }
    let reply = curl(&[&served.url("http", "/-/healthy"), "-u", "bob:bobs password"]);
    assert_eq!(reply.status, 200, "{reply:?}");
    // A password that verified once is not a wildcard for others.
    let reply = curl(&[&served.url("http", "/metrics"), "-u", "alice:s3cret"]);
    assert_eq!(reply.status, 401, "{reply:?}");
    assert!(!served.logs().contains(PASSWORD), "password in the log");
}

#[test]
fn tls_serves_https_only_and_shuts_down_cleanly() {
    if common::require("curl").is_none() {
        return;
    }
    let config =
        "tls_server_config:\n  cert_file: test-only-server.pem\n  key_file: test-only-server.key\n";
    let mut served = Served::start(config_dir("webcfg-tls", config));
    let ca = served.dir.path().join("test-only-ca.pem");
    let ca = ca.to_str().unwrap();

    let reply = curl(&["--cacert", ca, &served.url("https", "/metrics")]);
    assert_openmetrics(&reply);
    let reply = curl(&["--cacert", ca, &served.url("https", "/-/healthy")]);
    assert_eq!(reply.status, 200, "{reply:?}");
    // Verified against the test-only CA, not merely encrypted: without it curl refuses.
    let reply = curl(&[&served.url("https", "/metrics")]);
    assert_ne!(reply.exit, 0, "{reply:?}");

    // Plain HTTP on the TLS port gets Go's plain-text 400, never metrics.
    let plain = curl(&[&served.url("http", "/metrics")]);
    assert_eq!(plain.status, 400, "{plain:?}");
    assert!(plain.body.contains("HTTPS server"), "{plain:?}");
    let (status, body) = common::http_get(served.port, "/metrics").unwrap();
    assert_eq!(status, 400);
    assert!(!body.contains("sentinel_"));
    // A failed handshake does not hurt the next client.
    let reply = curl(&["--cacert", ca, &served.url("https", "/metrics")]);
    assert_openmetrics(&reply);

    // An idle client mid-handshake must not hold up shutdown.
    let _idle = std::net::TcpStream::connect(("127.0.0.1", served.port)).unwrap();
    common::signal(served.child.id(), rustix::process::Signal::TERM);
    let status = common::wait_until(Duration::from_secs(10), "exit after SIGTERM", || {
        served.child.try_wait().ok().flatten()
    });
    assert_eq!(status.code(), Some(0), "{}", served.logs());
    assert!(served.logs().contains("shut down"), "{}", served.logs());
}

#[test]
fn tls_client_certificates_and_min_version() {
    if common::require("curl").is_none() {
        return;
    }
    let config = format!(
        "tls_server_config:\n  cert_file: test-only-server.pem\n  key_file: ./test-only-server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: test-only-ca.pem\n  min_version: TLS13\nbasic_auth_users:\n  alice: {}\n",
        bcrypt_hash(PASSWORD)
    );
    let served = Served::start(config_dir("webcfg-mtls", &config));
    let file = |name: &str| served.dir.path().join(name).display().to_string();
    let (ca, cert, key) = (
        file("test-only-ca.pem"),
        file("test-only-client.pem"),
        file("test-only-client.key"),
    );
    let url = served.url("https", "/metrics");
    let creds = format!("alice:{PASSWORD}");

    let reply = curl(&["--cacert", &ca, "-u", &creds, &url]);
    assert!(
        reply.exit != 0 && reply.status == 0,
        "no client cert: {reply:?}"
    );
    // A client certificate the CA did not sign is refused too.
    let (scert, skey) = (
        file("test-only-rogue-client.pem"),
        file("test-only-rogue-client.key"),
    );
    let reply = curl(&[
        "--cacert", &ca, "--cert", &scert, "--key", &skey, "-u", &creds, &url,
    ]);
    assert!(reply.status != 200, "foreign client cert: {reply:?}");
    let with_cert = ["--cacert", &ca, "--cert", &cert, "--key", &key];
    let reply = curl(&[&with_cert[..], &["--tls-max", "1.2", "-u", &creds, &url]].concat());
    assert!(reply.exit != 0 && reply.status == 0, "TLS 1.2: {reply:?}");
    // The client certificate does not replace basic auth.
    let reply = curl(&[&with_cert[..], &[url.as_str()]].concat());
    assert_eq!(reply.status, 401, "{reply:?}");
    let reply = curl(&[&with_cert[..], &["-u", &creds, &url]].concat());
    assert_openmetrics(&reply);
}

/// Run the binary with `dir/web.yml` (or `file` if given) and return (exit code, stderr).
fn run_bad(file: &Path) -> (i32, String) {
    let out = Command::new(common::binary())
        .current_dir("/")
        .arg(format!(
            "--web.listen-address=127.0.0.1:{}",
            common::free_port()
        ))
        .arg(format!("--web.config.file={}", file.display()))
        .output()
        .expect("run exporter");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn bad_config_files_exit_2_naming_flag_file_and_problem() {
    let tls = |rest: &str| format!("tls_server_config:\n{rest}");
    let cases: Vec<(String, &[&str])> = vec![
        ("a: b: c\n".into(), &["cannot parse"]),
        (
            "tls_server_config: 5\n".into(),
            &["cannot parse", "tls_server_config"],
        ),
        ("basic_auth: {}\n".into(), &["unknown field `basic_auth`"]),
        (
            tls("  cert_file: test-only-server.pem\n  keyfile: test-only-server.key\n"),
            &["unknown field `keyfile`"],
        ),
        (
            tls("  cert_file: missing.pem\n  key_file: test-only-server.key\n"),
            &["tls_server_config.cert_file", "missing.pem", "cannot read"],
        ),
        (
            tls("  cert_file: web.yml\n  key_file: test-only-server.key\n"),
            &[
                "tls_server_config.cert_file",
                "web.yml",
                "no PEM certificate",
            ],
        ),
        (
            tls("  cert_file: test-only-server.pem\n  key_file: test-only-ca.pem\n"),
            &[
                "tls_server_config.key_file",
                "test-only-ca.pem",
                "private key",
            ],
        ),
        (
            tls("  cert_file: test-only-server.pem\n  key_file: test-only-client.key\n"),
            &[
                "test-only-client.key",
                "does not match",
                "test-only-server.pem",
            ],
        ),
        (
            tls("  cert_file: test-only-server.pem\n"),
            &["key_file", "missing"],
        ),
        (
            tls(
                "  cert_file: test-only-server.pem\n  key_file: test-only-server.key\n  min_version: TLS10\n",
            ),
            &["min_version", "TLS10"],
        ),
        (
            "rate_limit:\n  interval: 1s\n".into(),
            &["rate_limit.burst", "at least 1"],
        ),
        (
            "basic_auth_users:\n  alice: hunter2\n".into(),
            &["basic_auth_users.alice", "not a bcrypt hash"],
        ),
    ];
    for (config, wants) in &cases {
        let dir = config_dir("webcfg-bad", config);
        let file = dir.path().join("web.yml");
        let (code, stderr) = run_bad(&file);
        check_bad(code, &stderr, &file, wants, config);
    }
    let missing = std::env::temp_dir().join(format!("sentinel-no-such-{}.yml", std::process::id()));
    let (code, stderr) = run_bad(&missing);
    check_bad(code, &stderr, &missing, &["cannot read"], "missing file");
}

fn check_bad(code: i32, stderr: &str, file: &Path, wants: &[&str], what: &str) {
    assert_eq!(code, 2, "{what}: {stderr}");
    let first = stderr.lines().next().unwrap_or("");
    assert!(first.contains("--web.config.file"), "{what}: {stderr}");
    assert!(
        first.contains(&file.display().to_string()),
        "{what}: {stderr}"
    );
    for want in wants {
        assert!(first.contains(want), "{what}: {want:?} not in {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    // Nothing started: the problem is found before listening or collecting.
    assert_eq!(stderr.lines().count(), 1, "{what}: {stderr}");
}

#[test]
fn prometheus_scrapes_over_tls_with_basic_auth() {
    if common::require(PROMETHEUS).is_none() {
        return;
    }
    let config = format!(
        "tls_server_config:\n  cert_file: test-only-server.pem\n  key_file: test-only-server.key\nbasic_auth_users:\n  alice: {}\n",
        bcrypt_hash(PASSWORD)
    );
    let served = Served::start(config_dir("webcfg-prom", &config));
    let dir = TempDir::new("webcfg-prometheus");
    let ca = fixtures().join("test-only-ca.pem");
    let job = |name: &str, password: &str| {
        format!(
            "  - job_name: {name}\n    scheme: https\n    tls_config: {{ca_file: '{}'}}\n    basic_auth: {{username: alice, password: '{password}'}}\n    static_configs: [{{targets: ['127.0.0.1:{}']}}]\n",
            ca.display(),
            served.port
        )
    };
    let prom_config = format!(
        "{EVERY_SECOND}scrape_configs:\n{}{}",
        job("right", PASSWORD),
        job("wrong", "nope"),
    );
    let prom = Prometheus::start(dir.path(), &prom_config);
    // Prometheus's own verdict per job (a comparison returns only the series
    // for which it holds): the right password scrapes and parses our
    // OpenMetrics, the wrong one is refused.
    common::wait_until(
        Duration::from_secs(60),
        "up=1 for right, up=0 for wrong",
        || {
            let right = !prom.query(r#"up{job="right"} == 1"#).is_empty();
            let wrong = !prom.query(r#"up{job="wrong"} == 0"#).is_empty();
            (right && wrong).then_some(())
        },
    );
    let jobs: Vec<_> = prom
        .query("sentinel_build_info")
        .iter()
        .map(|r| r["metric"]["job"].clone())
        .collect();
    assert_eq!(jobs, ["right"], "sentinel_build_info scraped by");
}
