//! Bad input end to end: the real exporter binary reading a procfs that lies
//! (tests/fixtures/bad-input/procfs: truncated, garbage and oversized files,
//! a 10 MB mountinfo) and a Docker peer answering 100 MB. Each is a clear
//! error or a counted failure; the exporter keeps serving, never panics, and
//! its peak resident memory (VmHWM) stays far below the size of the input.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Exporter, TempDir};

const PATIENCE: Duration = Duration::from_secs(60);

/// Peak resident memory of `pid` in bytes (VmHWM of /proc/PID/status).
fn vm_hwm(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

const HWM_BOUND: u64 = 60 * 1024 * 1024;

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The fixture tree in a fresh directory, plus a 1 MB `103/stat`.
fn procfs_tree(tag: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new(tag);
    let root = dir.path().join("proc");
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad-input/procfs");
    copy_tree(&fixture, &root);
    std::fs::create_dir_all(root.join("103")).unwrap();
    let mut huge = b"103 (huge) S 1 103 103 0 -1 4194560 ".to_vec();
    huge.resize(1024 * 1024, b'7');
    std::fs::write(root.join("103/stat"), huge).unwrap();
    std::fs::write(root.join("103/comm"), "huge\n").unwrap();
    (dir, root)
}

fn procfs_exporter(root: &Path) -> Exporter {
    Exporter::start(&[
        "--collector.disable-defaults",
        "--collector.processes",
        "--collector.processes.interval=1s",
        "--collector.processes.deleted-files-budget=0s",
        "--collector.filesystem",
        "--collector.filesystem.interval=1s",
        &format!("--path.procfs={}", root.display()),
    ])
}

#[test]
fn a_lying_procfs_gives_errors_naming_the_file_and_no_panic() {
    let (_dir, root) = procfs_tree("bad-procfs");
    let exp = procfs_exporter(&root);
    // Only the well-formed zombie counts: the cut, garbage and oversized
    // stat files are skipped like a process that vanished.
    exp.wait_for(PATIENCE, "the one well-formed zombie", |m| {
        (m.get("sentinel_processes", &[("state", "zombie")]) == Some(1.0)).then_some(())
    });
    exp.wait_for(PATIENCE, "the filesystem round failing", |m| {
        (m.get("sentinel_collector_success", &[("collector", "filesystem")]) == Some(0.0))
            .then_some(())
    });
    let m = exp.metrics();
    assert_eq!(
        m.get("sentinel_collector_success", &[("collector", "processes")]),
        Some(1.0)
    );
    let logs = exp.logs();
    let mountinfo = root.join("1/mountinfo");
    assert!(
        logs.contains(&format!("{} line 3", mountinfo.display())),
        "the error names the file and line:\n{logs}"
    );
    assert!(!logs.contains("panicked"), "{logs}");
    assert!(vm_hwm(exp.pid()) < HWM_BOUND, "VmHWM {}", vm_hwm(exp.pid()));
}

#[test]
fn a_10_mb_mountinfo_is_refused_with_bounded_memory() {
    let (_dir, root) = procfs_tree("huge-mountinfo");
    // Well-formed lines, each a distinct mountpoint, 10 MB in all.
    let mut text = String::with_capacity(10 * 1024 * 1024 + 200);
    let mut i = 0u64;
    while text.len() < 10 * 1024 * 1024 {
        text.push_str(&format!(
            "{} 22 0:{} / /var/lib/kubelet/pods/{i:032x}/volumes/kubernetes.io~secret/token rw,relatime - tmpfs tmpfs rw\n",
            100 + i,
            30 + i % 200
        ));
        i += 1;
    }
    std::fs::write(root.join("1/mountinfo"), text).unwrap();
    let exp = procfs_exporter(&root);
    exp.wait_for(PATIENCE, "the filesystem round failing", |m| {
        (m.get("sentinel_collector_success", &[("collector", "filesystem")]) == Some(0.0))
            .then_some(())
    });
    // A few more rounds: every one refuses the table again, none grows memory.
    std::thread::sleep(Duration::from_secs(3));
    let logs = exp.logs();
    assert!(
        logs.contains("1/mountinfo") && logs.contains("larger than"),
        "{logs}"
    );
    assert!(!logs.contains("panicked"), "{logs}");
    let hwm = vm_hwm(exp.pid());
    eprintln!("VmHWM reading a 10 MB mountinfo: {hwm} bytes");
    assert!(hwm < HWM_BOUND, "VmHWM {hwm} reading a 10 MB mountinfo");
}

/// A Docker API peer on a unix socket: small, valid answers to everything but
/// `/containers/json`, which gets a 100 MB well-formed JSON list (chunked,
/// as dockerd sends large bodies), written as fast as the client reads.
fn serve_huge_docker(listener: UnixListener) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { return };
        std::thread::spawn(move || {
            let _ = answer(stream);
        });
    }
}

fn answer(mut stream: UnixStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if header == "\r\n" || header.is_empty() {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let path = request_line.split(' ').nth(1).unwrap_or("/");
        let small = |body: &str| {
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nApi-Version: 1.43\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        if path.contains("/containers/json") {
            stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nApi-Version: 1.43\r\nTransfer-Encoding: chunked\r\n\r\n",
            )?;
            let item =
                r#"{"Id":"0123456789ab","Names":["/flood"],"State":"running","Labels":{"a":"b"}},"#;
            let chunk = format!("[{}", item.repeat(64 * 1024 / item.len()));
            let mut sent = 0;
            let mut first = true;
            while sent < 100 * 1024 * 1024 {
                let data = if first { chunk.as_str() } else { &chunk[1..] };
                first = false;
                write!(stream, "{:x}\r\n{data}\r\n", data.len())?;
                sent += data.len();
            }
            let end = r#"{"Id":"end","Names":["/end"]}]"#;
            write!(stream, "{:x}\r\n{end}\r\n0\r\n\r\n", end.len())?;
        } else if path.contains("/version") {
            stream.write_all(
                small(r#"{"Version":"24.0.7","ApiVersion":"1.43","MinAPIVersion":"1.12","Os":"linux"}"#)
                    .as_bytes(),
            )?;
        } else if path.contains("/info") {
            stream
                .write_all(small(r#"{"Driver":"overlay2","ServerVersion":"24.0.7"}"#).as_bytes())?;
        } else if path.contains("/_ping") {
            stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nApi-Version: 1.43\r\nContent-Length: 2\r\n\r\nOK",
            )?;
        } else {
            stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?;
        }
    }
}

#[test]
fn a_docker_peer_answering_100_mb_is_a_counted_failure_with_bounded_memory() {
    let dir = TempDir::new("docker-100mb");
    let socket = dir.path().join("docker.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    std::thread::spawn(move || serve_huge_docker(listener));
    let exp = Exporter::start(&[
        "--collector.disable-defaults",
        "--collector.docker",
        &format!("--collector.docker.host=unix://{}", socket.display()),
        "--collector.docker.interval=1s",
        "--collector.docker.timeout=10s",
        "--collector.docker.hang-threshold=30s",
        "--collector.docker.pidfile=",
    ]);
    exp.wait_for(PATIENCE, "a containers probe ended", |m| {
        let answered = m.get(
            "sentinel_docker_probe_duration_seconds_count",
            &[("operation", "containers")],
        );
        let failed: f64 = m
            .find(
                "sentinel_docker_probe_failures_total",
                &[("operation", "containers")],
            )
            .iter()
            .map(|s| s.value)
            .sum();
        (answered.unwrap_or(0.0) + failed > 0.0).then_some(())
    });
    let hwm = vm_hwm(exp.pid());
    eprintln!("VmHWM after a 100 MB answer: {hwm} bytes");
    assert!(hwm < HWM_BOUND, "VmHWM {hwm} after a 100 MB answer");
    let failed = exp.wait_for(PATIENCE, "the containers list counted as a failure", |m| {
        m.find(
            "sentinel_docker_probe_failures_total",
            &[("operation", "containers")],
        )
        .iter()
        .filter(|s| s.value > 0.0)
        .map(|s| s.labels.get("reason").cloned().unwrap_or_default())
        .next()
    });
    assert_eq!(failed, "decode", "{}", exp.scrape());
    let m = exp.metrics();
    // The small answers still work: the peer is not down, only lying.
    assert_eq!(
        m.get(
            "sentinel_docker_probe_failures_total",
            &[("operation", "ping"), ("reason", "decode")]
        ),
        Some(0.0)
    );
    let hwm = vm_hwm(exp.pid());
    assert!(hwm < HWM_BOUND, "VmHWM {hwm} after a 100 MB answer");
    assert!(!exp.logs().contains("panicked"), "{}", exp.logs());
}
