//! The docker collector against a real dockerd (healthy, SIGSTOPped, killed,
//! restarted) and against small fake servers on unix sockets for bad input
//! (garbage, HTTP 500, closed at once, silent, trickling) and a socket the
//! exporter may not open.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Exporter, Metrics, TempDir};
use rustix::process::Signal;

const OPS: [&str; 5] = ["ping", "version", "info", "containers", "inspect"];
/// Short settings so the suite stays quick: interval 1s, hang threshold 3s, timeout 6s.
const INTERVAL: u64 = 1;
const THRESHOLD: u64 = 3;
const TIMEOUT: u64 = 6;

fn exporter_args(host: &str) -> Vec<String> {
    vec![
        "--collector.disable-defaults".into(),
        "--collector.docker".into(),
        format!("--collector.docker.host={host}"),
        format!("--collector.docker.interval={INTERVAL}s"),
        format!("--collector.docker.hang-threshold={THRESHOLD}s"),
        format!("--collector.docker.timeout={TIMEOUT}s"),
        // The daemon's PID must come from SO_PEERCRED, not from the host's pidfile.
        "--collector.docker.pidfile=".into(),
    ]
}

fn start_exporter(host: &str) -> Exporter {
    start_exporter_with(host, &[])
}

fn start_exporter_with(host: &str, extra: &[String]) -> Exporter {
    let mut args = exporter_args(host);
    args.extend_from_slice(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Exporter::start(&args)
}

fn value(m: &Metrics, name: &str, labels: &[(&str, &str)]) -> f64 {
    m.get(name, labels).unwrap_or(f64::NAN)
}

fn failures(m: &Metrics, op: &str, reason: &str) -> f64 {
    value(
        m,
        "sentinel_docker_probe_failures_total",
        &[("operation", op), ("reason", reason)],
    )
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn assert_no_panic(e: &Exporter) {
    let logs = e.logs();
    assert!(
        !logs.contains("panicked"),
        "panic in the exporter log:\n{logs}"
    );
}

/// Unix-socket descriptors the process holds (its fds whose inode is in /proc/net/unix).
fn unix_socket_fds(pid: u32) -> usize {
    let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    let unix: HashSet<&str> = table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(6))
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().to_string();
            let inode = t.strip_prefix("socket:[")?.strip_suffix(']')?.to_string();
            unix.contains(inode.as_str()).then_some(())
        })
        .count()
}

/// A dockerd of our own in a temp dir, with its own socket; stopped on drop.
struct Dockerd {
    dir: PathBuf,
    child: Option<Child>,
}

impl Dockerd {
    fn start(dir: &Path) -> Dockerd {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("dockerd.log"))
            .expect("dockerd log");
        let d = |p: &str| dir.join(p).to_string_lossy().to_string();
        let child = Command::new("/usr/sbin/dockerd")
            .args([
                "--host",
                &format!("unix://{}", d("docker.sock")),
                "--data-root",
                &d("root"),
                "--exec-root",
                &d("exec"),
                "--pidfile",
                &d("docker.pid"),
                "--iptables=false",
                "--bridge=none",
                "--storage-driver=vfs",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let mut dockerd = Dockerd {
            dir: dir.to_path_buf(),
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ok = Command::new("docker")
                .args(["-H", &dockerd.host(), "version"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return dockerd;
            }
            if let Some(c) = dockerd.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("dockerd exited with {status}: {}", dockerd.log());
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer: {}",
                dockerd.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    fn host(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    fn docker(&self, args: &[&str]) -> String {
        let host = self.host();
        let mut all = vec!["-H", host.as_str()];
        all.extend_from_slice(args);
        common::run("docker", &all)
    }

    /// SIGTERM (after SIGCONT, in case it is stopped) and wait for the exit.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        common::signal(child.id(), Signal::CONT);
        common::signal(child.id(), Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The busybox image, imported without a registry (RECIPES.md).
fn import_busybox(d: &Dockerd, dir: &Path) {
    let rootfs = dir.join("image");
    std::fs::create_dir_all(rootfs.join("bin")).expect("image dir");
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy /bin/busybox");
    for c in ["sh", "echo", "sleep", "true", "cat"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(c)).expect("symlink");
    }
    let tar = dir.join("image.tar");
    common::run(
        "tar",
        &[
            "-C",
            &rootfs.to_string_lossy(),
            "-cf",
            &tar.to_string_lossy(),
            ".",
        ],
    );
    d.docker(&["import", &tar.to_string_lossy(), "bb:latest"]);
}

/// A loop that ends at once on SIGTERM, so stopping the daemon stays quick.
const LOOP: &str = "trap 'exit 0' TERM; while true; do sleep 1; done";

#[test]
fn real_dockerd_healthy_hung_killed_restarted() {
    if common::require("/usr/sbin/dockerd").is_none()
        || common::require("docker").is_none()
        || !common::require_root()
    {
        return;
    }
    let dir = TempDir::new("docker");
    let mut dockerd = Dockerd::start(dir.path());
    import_busybox(&dockerd, dir.path());
    let run = |args: &[&str]| {
        let mut all = vec!["run", "-d", "--network", "none"];
        all.extend_from_slice(args);
        dockerd.docker(&all)
    };
    run(&["--name", "web", "bb:latest", "sh", "-c", LOOP]);
    run(&[
        "--name",
        "checked",
        "--health-cmd",
        "true",
        "--health-interval",
        "1s",
        "bb:latest",
        "sh",
        "-c",
        LOOP,
    ]);
    dockerd.docker(&[
        "create",
        "--name",
        "made",
        "--network",
        "none",
        "bb:latest",
        "true",
    ]);
    dockerd.docker(&[
        "run",
        "--name",
        "done",
        "--network",
        "none",
        "bb:latest",
        "true",
    ]);

    let started = unix_now();
    let exporter = start_exporter(&dockerd.host());

    // Healthy: up, not hung, states right, every probe answered.
    let want_states = [
        ("running", 2.0),
        ("paused", 0.0),
        ("restarting", 0.0),
        ("exited", 1.0),
        ("created", 1.0),
        ("dead", 0.0),
    ];
    exporter.wait_for(Duration::from_secs(20), "a healthy picture", |m| {
        let states_ok = want_states
            .iter()
            .all(|(s, n)| m.get("sentinel_docker_containers", &[("state", s)]) == Some(*n));
        let probes_ok = OPS.iter().all(|op| {
            value(
                m,
                "sentinel_docker_probe_duration_seconds_count",
                &[("operation", op)],
            ) >= 1.0
        });
        let health = m.get(
            "sentinel_docker_container_health",
            &[("name", "checked"), ("status", "healthy")],
        );
        (value(m, "sentinel_docker_up", &[]) == 1.0
            && value(m, "sentinel_docker_hung", &[]) == 0.0
            && states_ok
            && probes_ok
            && health == Some(1.0)
            && m.get(
                "sentinel_docker_container_restarts_total",
                &[("name", "web")],
            ) == Some(0.0))
        .then_some(())
    });
    let m = exporter.metrics();
    let info = m.find("sentinel_docker_info", &[("storage_driver", "vfs")]);
    assert_eq!(info.len(), 1, "{}", m.text);
    assert!(
        info[0].labels["api_version"].starts_with("1."),
        "{:?}",
        info[0]
    );
    let start_time = value(&m, "sentinel_docker_daemon_start_time_seconds", &[]);
    assert!(
        start_time > started - 120.0 && start_time <= unix_now() + 1.0,
        "daemon start time {start_time} vs test start {started}"
    );
    assert_eq!(value(&m, "sentinel_docker_daemon_restarts_total", &[]), 0.0);
    assert!(
        m.find("sentinel_docker_container_restarts_total", &[])
            .iter()
            .all(|s| s.labels["name"] != "made" && s.labels["name"] != "done"),
        "only running containers get per-container series"
    );
    for op in OPS {
        assert_eq!(failures(&m, op, "timeout"), 0.0, "{}", m.text);
    }

    // The exporter's own unix sockets (tokio's signal pipe): the fewest seen
    // while healthy, when probes finish in milliseconds.
    let baseline = (0..20)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            unix_socket_fds(exporter.pid())
        })
        .min()
        .unwrap_or(0);

    // Hung: SIGSTOP. The socket still accepts; nothing answers.
    let hang_started = Instant::now();
    common::signal(dockerd.pid(), Signal::STOP);
    exporter.wait_for(
        Duration::from_secs(THRESHOLD + 2 * INTERVAL + 2),
        "hung=1 within threshold + 2 intervals",
        |m| (value(m, "sentinel_docker_hung", &[]) == 1.0).then_some(()),
    );
    let m = exporter.metrics();
    assert_eq!(value(&m, "sentinel_docker_up", &[]), 0.0, "{}", m.text);
    let in_flight = |m: &Metrics| {
        value(
            m,
            "sentinel_docker_probe_in_flight_seconds",
            &[("operation", "containers")],
        )
    };
    let a = in_flight(&m);
    std::thread::sleep(Duration::from_millis(1200));
    let m2 = exporter.metrics();
    let b = in_flight(&m2);
    assert!(
        b > a || failures(&m2, "containers", "timeout") >= 1.0,
        "in-flight age must grow while hung: {a} then {b}"
    );
    // Stay hung past the timeout: probes are abandoned and replaced, never piled up.
    let mut max_fds = 0;
    while hang_started.elapsed() < Duration::from_secs(TIMEOUT + 5) {
        let t = Instant::now();
        let m = exporter.metrics();
        // Not a speed test: a scrape that waited on the daemon would take the timeout.
        assert!(
            t.elapsed() < Duration::from_secs(TIMEOUT / 2),
            "scrape waited on the hung daemon"
        );
        assert_eq!(value(&m, "sentinel_docker_hung", &[]), 1.0, "{}", m.text);
        let fds = unix_socket_fds(exporter.pid()).saturating_sub(baseline);
        max_fds = max_fds.max(fds);
        // One per operation plus the plain connect that tells accepting from down.
        assert!(
            fds <= OPS.len() + 1,
            "{fds} unix sockets (beyond {baseline} of our own) open while hung"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!("unix sockets while hung: at most {max_fds} beyond {baseline} of our own");
    assert!(max_fds >= 1, "probes must be outstanding while hung");
    let m = exporter.metrics();
    assert!(failures(&m, "containers", "timeout") >= 1.0, "{}", m.text);
    assert_eq!(failures(&m, "containers", "connect"), 0.0, "{}", m.text);

    // Resumed: answers again within 2 intervals (plus scheduling slack).
    common::signal(dockerd.pid(), Signal::CONT);
    exporter.wait_for(
        Duration::from_secs(2 * INTERVAL + 3),
        "recovery after SIGCONT",
        |m| {
            (value(m, "sentinel_docker_hung", &[]) == 0.0
                && value(m, "sentinel_docker_up", &[]) == 1.0)
                .then_some(())
        },
    );

    // Killed: down, not hung, failures by connect.
    let connect_before = failures(&exporter.metrics(), "ping", "connect");
    dockerd.stop();
    exporter.wait_for(
        Duration::from_secs(10),
        "down after the daemon stopped",
        |m| {
            (value(m, "sentinel_docker_up", &[]) == 0.0
                && value(m, "sentinel_docker_hung", &[]) == 0.0
                && failures(m, "ping", "connect") > connect_before)
                .then_some(())
        },
    );

    // Started again: one restart seen, up again.
    let dockerd2 = Dockerd::start(dir.path());
    exporter.wait_for(Duration::from_secs(15), "restart counted", |m| {
        (value(m, "sentinel_docker_daemon_restarts_total", &[]) == 1.0
            && value(m, "sentinel_docker_up", &[]) == 1.0
            && value(m, "sentinel_docker_daemon_start_time_seconds", &[]) > start_time)
            .then_some(())
    });
    assert_no_panic(&exporter);
    drop(exporter);
    drop(dockerd2);
}

/// How a fake peer behaves once it accepted a connection.
#[derive(Clone, Copy, Debug)]
enum Peer {
    Garbage,
    Http500,
    CloseAtOnce,
    Silent,
    Trickle,
}

/// A fake daemon on a unix socket, one thread per connection; stopped on drop.
struct FakeServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    open: Arc<AtomicUsize>,
    max_open: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    fn start(path: PathBuf, peer: Peer) -> FakeServer {
        let listener = UnixListener::bind(&path).expect("bind fake socket");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(AtomicUsize::new(0));
        let max_open = Arc::new(AtomicUsize::new(0));
        let (s, o, mo) = (stop.clone(), open.clone(), max_open.clone());
        let thread = std::thread::spawn(move || {
            let mut conns = Vec::new();
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let n = o.fetch_add(1, Ordering::SeqCst) + 1;
                        mo.fetch_max(n, Ordering::SeqCst);
                        let (s, o) = (s.clone(), o.clone());
                        conns.push(std::thread::spawn(move || {
                            serve(stream, peer, &s);
                            o.fetch_sub(1, Ordering::SeqCst);
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
            for c in conns {
                let _ = c.join();
            }
        });
        FakeServer {
            path,
            stop,
            open,
            max_open,
            thread: Some(thread),
        }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.path.display())
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Read whatever arrives until the peer closes or we are told to stop.
fn drain_until_closed(stream: &mut UnixStream, stop: &AtomicBool) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return,
        }
    }
}

fn read_request(stream: &mut UnixStream) {
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

fn serve(mut stream: UnixStream, peer: Peer, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    match peer {
        Peer::CloseAtOnce => {}
        Peer::Garbage => {
            read_request(&mut stream);
            let _ = stream.write_all(b"\x00\x01garbage, not HTTP\xff\xfe\r\n\r\n");
        }
        Peer::Http500 => {
            read_request(&mut stream);
            let body = br#"{"message":"boom"}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(body);
            drain_until_closed(&mut stream, stop);
        }
        Peer::Silent => drain_until_closed(&mut stream, stop),
        Peer::Trickle => {
            read_request(&mut stream);
            let _ = stream.set_nonblocking(true);
            let reply =
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nOK";
            let mut buf = [0u8; 64];
            for byte in reply.iter().cycle() {
                if stop.load(Ordering::Relaxed) || stream.write_all(&[*byte]).is_err() {
                    return;
                }
                // One byte a second; notice a closed peer in between.
                for _ in 0..10 {
                    std::thread::sleep(Duration::from_millis(100));
                    if matches!(stream.read(&mut buf), Ok(0)) {
                        return;
                    }
                }
            }
        }
    }
}

#[test]
fn bad_peers_give_the_right_reason_and_no_panic() {
    let dir = TempDir::new("docker-peers");
    let cases = [
        (Peer::Garbage, "decode", false),
        (Peer::Http500, "http_status", false),
        (Peer::CloseAtOnce, "io", false),
        (Peer::Silent, "timeout", true),
        (Peer::Trickle, "timeout", true),
    ];
    // All at once: the slow cases need the timeout to pass, the others are quick.
    let running: Vec<_> = cases
        .iter()
        .enumerate()
        .map(|(i, (peer, reason, hung))| {
            let server = FakeServer::start(dir.path().join(format!("peer{i}.sock")), *peer);
            let exporter = start_exporter(&server.host());
            (server, exporter, *peer, *reason, *hung)
        })
        .collect();
    for (server, exporter, peer, reason, hung) in &running {
        let what = format!("{peer:?}: reason {reason}, hung={hung}");
        exporter.wait_for(Duration::from_secs(TIMEOUT + 8), &what, |m| {
            (failures(m, "ping", reason) >= 1.0
                && failures(m, "version", reason) >= 1.0
                && value(m, "sentinel_docker_up", &[]) == 0.0
                && value(m, "sentinel_docker_hung", &[]) == f64::from(u8::from(*hung)))
            .then_some(())
        });
        let m = exporter.metrics();
        for other in ["timeout", "connect", "http_status", "io", "decode"] {
            if other != *reason {
                assert_eq!(
                    failures(&m, "ping", other),
                    0.0,
                    "{peer:?} counted as {other}:\n{}",
                    m.text
                );
            }
        }
        if *hung {
            assert!(
                value(
                    &m,
                    "sentinel_docker_probe_in_flight_seconds",
                    &[("operation", "ping")]
                ) < TIMEOUT as f64 + 1.5,
                "{peer:?}: a probe is abandoned after the timeout"
            );
        }
        // Five probes and one plain connect at most, ever. The fake server
        // sees a connection the exporter closed only when its thread next
        // looks (a trickled byte, a poll), which on a loaded machine can be
        // after the next probe of that operation has connected: one more.
        let max_open = server.max_open.load(Ordering::SeqCst);
        assert!(
            max_open <= OPS.len() + 2,
            "{peer:?}: {max_open} connections open at once"
        );
        let _ = server.open.load(Ordering::SeqCst);
        assert_no_panic(exporter);
    }
}

#[test]
fn socket_without_permission_is_down_and_logged_once() {
    if !common::require_root() || common::require("setpriv").is_none() {
        return;
    }
    // Root ignores a socket's mode, so the exporter runs as nobody here.
    let dir = TempDir::new("docker-perm");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = FakeServer::start(dir.path().join("docker.sock"), Peer::Http500);
    std::fs::set_permissions(&server.path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let port = common::free_port();
    let log = dir.path().join("exporter.log");
    let mut args = vec![
        "--reuid=65534".to_string(),
        "--regid=65534".into(),
        "--clear-groups".into(),
        "--".into(),
        common::binary().to_string_lossy().to_string(),
        format!("--web.listen-address=127.0.0.1:{port}"),
    ];
    args.extend(exporter_args(&server.host()));
    let child = Command::new("setpriv")
        .args(&args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("setpriv");
    let exporter = Exporter { child, port, log };
    common::wait_until(Duration::from_secs(10), "exporter serving", || {
        common::http_get(port, "/-/healthy").ok()
    });
    exporter.wait_for(Duration::from_secs(10), "down by connect", |m| {
        (failures(m, "ping", "connect") >= 3.0
            && value(m, "sentinel_docker_up", &[]) == 0.0
            && value(m, "sentinel_docker_hung", &[]) == 0.0)
            .then_some(())
    });
    let logs = exporter.logs();
    assert_eq!(
        logs.matches("permission denied").count(),
        1,
        "one clear line, once:\n{logs}"
    );
    assert_eq!(server.max_open.load(Ordering::SeqCst), 0);
    assert_no_panic(&exporter);
}

#[test]
fn a_path_that_is_not_a_socket_or_missing_is_down() {
    let dir = TempDir::new("docker-nosock");
    let file = dir.path().join("docker.sock");
    std::fs::write(&file, b"not a socket").unwrap();
    let not_socket = start_exporter(&format!("unix://{}", file.display()));
    // A missing socket on a node with Docker's state directory: Docker is
    // there but dead ("down"), not "not installed".
    let rootfs = dir.path().join("host");
    std::fs::create_dir_all(rootfs.join("var/lib/docker")).unwrap();
    let missing = start_exporter_with(
        &format!("unix://{}", dir.path().join("missing.sock").display()),
        &[format!("--path.rootfs={}", rootfs.display())],
    );
    for exporter in [&not_socket, &missing] {
        exporter.wait_for(Duration::from_secs(10), "down by connect", |m| {
            (failures(m, "ping", "connect") >= 2.0
                && value(m, "sentinel_docker_up", &[]) == 0.0
                && value(m, "sentinel_docker_hung", &[]) == 0.0
                && value(m, "sentinel_collector_success", &[("collector", "docker")]) == 1.0)
                .then_some(())
        });
        assert_no_panic(exporter);
    }
}

#[test]
fn no_docker_no_series_and_a_socket_appearing_is_picked_up() {
    let dir = TempDir::new("docker-absent");
    let rootfs = dir.path().join("host");
    std::fs::create_dir_all(&rootfs).unwrap();
    let sock = dir.path().join("docker.sock");
    let e = start_exporter_with(
        &format!("unix://{}", sock.display()),
        &[format!("--path.rootfs={}", rootfs.display())],
    );
    std::thread::sleep(Duration::from_secs(3 * INTERVAL));
    let m = e.metrics();
    assert!(
        !m.text.lines().any(|l| l.starts_with("sentinel_docker_")),
        "docker series without docker:\n{}",
        m.text
    );
    assert_eq!(
        value(
            &m,
            "sentinel_collector_installed",
            &[("collector", "docker")]
        ),
        0.0
    );
    let (_, page) = common::http_get(e.port, "/").unwrap();
    assert!(page.contains("not installed"), "{page}");

    // The socket appears (a listener that never answers): watched from now on.
    let _listener = UnixListener::bind(&sock).unwrap();
    let m = e.wait_for(Duration::from_secs(10), "docker series", |m| {
        m.has("sentinel_docker_up").then(|| m.clone())
    });
    assert_eq!(value(&m, "sentinel_docker_up", &[]), 0.0);
    assert!(!m.has("sentinel_collector_installed"), "{}", m.text);
    let (_, page) = common::http_get(e.port, "/").unwrap();
    assert!(!page.contains("not installed"), "{page}");
    // Once seen, a vanished socket is "down", not "not installed" again.
    std::fs::remove_file(&sock).unwrap();
    e.wait_for(Duration::from_secs(10), "down", |m| {
        (failures(m, "ping", "connect") >= 1.0 && value(m, "sentinel_docker_up", &[]) == 0.0)
            .then_some(())
    });
    assert_no_panic(&e);
}

/// F16, F28: on a Kubernetes node (dockershim, cri-dockerd) the kubelet names
/// containers `k8s_C_P_NS_UID_<attempt>` and keeps their restart count in a
/// label. Their series carry namespace, pod and container and that count;
/// a plain container beside them keeps its name. `version` and `info` are
/// asked once a minute, the list every interval.
#[test]
fn kubelet_containers_by_pod_and_slow_probes_once_a_minute() {
    if common::require("/usr/sbin/dockerd").is_none()
        || common::require("docker").is_none()
        || !common::require_root()
    {
        return;
    }
    let dir = TempDir::new("docker-k8s");
    let dockerd = Dockerd::start(dir.path());
    import_busybox(&dockerd, dir.path());
    let kube = |name: &str, container: &str, restarts: &str, extra: &[&str]| {
        let labels = [
            "io.kubernetes.pod.namespace=prod".to_string(),
            "io.kubernetes.pod.name=web-0".to_string(),
            format!("io.kubernetes.container.name={container}"),
            format!("io.kubernetes.container.restartCount={restarts}"),
        ];
        let mut args = vec!["run", "-d", "--network", "none", "--name", name];
        for l in &labels {
            args.extend(["--label", l.as_str()]);
        }
        args.extend_from_slice(extra);
        args.extend(["bb:latest", "sh", "-c", LOOP]);
        dockerd.docker(&args);
    };
    // The fourth attempt of "app", with a health check; and its sidecar.
    kube(
        "k8s_app_web-0_prod_0a1b2c3d_3",
        "app",
        "3",
        &["--health-cmd", "true", "--health-interval", "1s"],
    );
    kube("k8s_side_web-0_prod_0a1b2c3d_0", "side", "0", &[]);
    dockerd.docker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "plain",
        "bb:latest",
        "sh",
        "-c",
        LOOP,
    ]);

    let exporter = start_exporter(&dockerd.host());
    let exporter_started = Instant::now();
    let pod = |c: &'static str| [("namespace", "prod"), ("pod", "web-0"), ("container", c)];
    exporter.wait_for(Duration::from_secs(30), "pod containers by pod", |m| {
        let app = m.get("sentinel_docker_container_restarts_total", &pod("app"));
        let side = m.get("sentinel_docker_container_restarts_total", &pod("side"));
        let mut healthy = pod("app").to_vec();
        healthy.push(("status", "healthy"));
        let health = m.get("sentinel_docker_container_health", &healthy);
        let plain = m.get(
            "sentinel_docker_container_restarts_total",
            &[("name", "plain")],
        );
        (app == Some(3.0) && side == Some(0.0) && health == Some(1.0) && plain == Some(0.0))
            .then_some(())
    });
    let m = exporter.metrics();
    for family in [
        "sentinel_docker_container_restarts_total",
        "sentinel_docker_container_health",
    ] {
        for s in m.find(family, &[]) {
            let name = s.labels.get("name").map(String::as_str).unwrap_or("");
            assert!(
                !name.starts_with("k8s_"),
                "{family} labelled by the attempt's name: {:?}",
                s.labels
            );
        }
    }
    assert_eq!(
        m.find("sentinel_docker_container_restarts_total", &[])
            .len(),
        3,
        "{}",
        m.text
    );

    // The kubelet restarts "app": a new container, attempt 4, the old one exited.
    dockerd.docker(&["stop", "-t", "1", "k8s_app_web-0_prod_0a1b2c3d_3"]);
    kube("k8s_app_web-0_prod_0a1b2c3d_4", "app", "4", &[]);
    let m = exporter.wait_for(Duration::from_secs(30), "the restart counted", |m| {
        (m.get("sentinel_docker_container_restarts_total", &pod("app")) == Some(4.0))
            .then(|| m.clone())
    });
    assert_eq!(
        m.find(
            "sentinel_docker_container_restarts_total",
            &[("container", "app")]
        )
        .len(),
        1,
        "one series per pod container, not per attempt: {}",
        m.text
    );

    // Over all of this the list ran every second, version and info once.
    let count = |m: &Metrics, op: &str| {
        value(
            m,
            "sentinel_docker_probe_duration_seconds_count",
            &[("operation", op)],
        )
    };
    let m = exporter.wait_for(Duration::from_secs(30), "ten list probes", |m| {
        (count(m, "containers") >= 10.0).then(|| m.clone())
    });
    eprintln!(
        "probes answered: containers {}, ping {}, version {}, info {}",
        count(&m, "containers"),
        count(&m, "ping"),
        count(&m, "version"),
        count(&m, "info")
    );
    // One at the start, and one more per full minute since.
    let allowed = 1.0 + (exporter_started.elapsed().as_secs() / 60) as f64;
    for op in ["info", "version"] {
        assert!(
            (1.0..=allowed).contains(&count(&m, op)),
            "{op}: {} probes in {:?}",
            count(&m, op),
            exporter_started.elapsed()
        );
    }
    assert!(count(&m, "ping") >= 10.0);
    assert_no_panic(&exporter);
    drop(exporter);
    drop(dockerd);
}
