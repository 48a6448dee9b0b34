//! The cri collector against a real private containerd (healthy, SIGSTOPped,
//! SIGCONTed, killed, restarted; pods and containers created through the CRI
//! API by a test-side client; a SIGSTOPped shim), a containerd without its
//! CRI plugin (Docker's), bad peers on unix sockets (silent, HTTP/1 garbage),
//! and the "not installed" rule: no runtime, no series; a runtime appearing
//! later (the kubelet's config, a well-known socket) is picked up. Last, the
//! end-to-end drill: containerd SIGSTOPped → SentinelCriRuntimeHung through a
//! real Prometheus and Alertmanager to a webhook, resolved after SIGCONT.
//!
//! NetworkReady: no CNI is configured for the private containerd, so it
//! reports NetworkReady false; the test checks that value as exported.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::cri::Containerd;
use common::prometheus::{
    ALERTMANAGER, Alertmanager, EVERY_SECOND, PROMETHEUS, Prometheus, Webhook,
};
use common::{Exporter, Metrics, TempDir};
use rustix::process::Signal;

const OPS: [&str; 5] = [
    "version",
    "status",
    "list_pod_sandboxes",
    "list_containers",
    "image_fs_info",
];
/// Short settings so the suite stays quick: interval 1s, hang threshold 3s, timeout 6s.
const INTERVAL: u64 = 1;
const THRESHOLD: u64 = 3;
const TIMEOUT: u64 = 6;
/// Room for a loaded 2-core machine on top of each contract bound.
const SLACK: Duration = Duration::from_secs(3);

fn cri_args(extra: &[String]) -> Vec<String> {
    let mut args = vec![
        "--collector.disable-defaults".to_string(),
        "--collector.cri".into(),
        format!("--collector.cri.interval={INTERVAL}s"),
        format!("--collector.cri.hang-threshold={THRESHOLD}s"),
        format!("--collector.cri.timeout={TIMEOUT}s"),
    ];
    args.extend_from_slice(extra);
    args
}

fn start_exporter(extra: &[String]) -> Exporter {
    let args = cri_args(extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Exporter::start(&args)
}

fn value(m: &Metrics, name: &str, labels: &[(&str, &str)]) -> f64 {
    m.get(name, labels).unwrap_or(f64::NAN)
}

fn failures(m: &Metrics, op: &str, reason: &str) -> f64 {
    value(
        m,
        "sentinel_cri_probe_failures_total",
        &[("operation", op), ("reason", reason)],
    )
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

fn has_containerd() -> bool {
    common::require("containerd").is_some()
        && common::require("ctr").is_some()
        && common::require_root()
}

#[test]
fn real_containerd_healthy_hung_recovered_killed_restarted() {
    if !has_containerd() {
        return;
    }
    let dir = TempDir::new("cri");
    let mut ctd = Containerd::start(dir.path(), None);
    let e = start_exporter(&[format!("--collector.cri.endpoint={}", ctd.endpoint())]);

    // Healthy: every runtime-wide probe answered at least twice.
    let m = e.wait_for(Duration::from_secs(30), "two answered rounds", |m| {
        OPS.iter()
            .all(|op| {
                value(
                    m,
                    "sentinel_cri_probe_duration_seconds_count",
                    &[("operation", op)],
                ) >= 2.0
            })
            .then(|| m.clone())
    });
    assert_eq!(value(&m, "sentinel_cri_up", &[]), 1.0);
    assert_eq!(value(&m, "sentinel_cri_hung", &[]), 0.0);
    let info = m.find("sentinel_cri_info", &[("runtime_name", "containerd")]);
    assert_eq!(info.len(), 1, "{}", m.text);
    assert_eq!(
        info[0]
            .labels
            .get("runtime_api_version")
            .map(String::as_str),
        Some("v1")
    );
    assert_eq!(
        value(
            &m,
            "sentinel_cri_runtime_condition",
            &[("condition", "RuntimeReady")]
        ),
        1.0
    );
    // No CNI config for this containerd: the network is not ready, and says so.
    assert_eq!(
        value(
            &m,
            "sentinel_cri_runtime_condition",
            &[("condition", "NetworkReady")]
        ),
        0.0
    );
    for state in ["ready", "notready"] {
        assert_eq!(
            value(&m, "sentinel_cri_pod_sandboxes", &[("state", state)]),
            0.0
        );
    }
    for state in ["created", "running", "exited", "unknown"] {
        assert_eq!(
            value(&m, "sentinel_cri_containers", &[("state", state)]),
            0.0
        );
    }
    assert!(
        m.has("sentinel_cri_image_filesystem_used_bytes"),
        "{}",
        m.text
    );
    let root = dir.path().join("root").to_string_lossy().to_string();
    let fs = m.find("sentinel_cri_image_filesystem_used_bytes", &[]);
    assert!(
        fs.iter().any(|s| s
            .labels
            .get("mountpoint")
            .is_some_and(|p| p.starts_with(&root))),
        "{}",
        m.text
    );
    assert_eq!(value(&m, "sentinel_cri_runtime_restarts_total", &[]), 0.0);
    let start = value(&m, "sentinel_cri_runtime_start_time_seconds", &[]);
    assert!(start > 1.0e9, "{}", m.text);
    for op in OPS {
        assert_eq!(failures(&m, op, "timeout"), 0.0, "{op}");
    }
    let healthy_fds = unix_socket_fds(e.pid());

    // SIGSTOP: hung within threshold + 2 intervals, scrapes stay fast, and at
    // most one outstanding call per operation over a full timeout.
    common::signal(ctd.pid(), Signal::STOP);
    let stopped = Instant::now();
    e.wait_for(
        Duration::from_secs(THRESHOLD + 2 * INTERVAL) + SLACK,
        "hung",
        |m| (value(m, "sentinel_cri_hung", &[]) == 1.0).then_some(()),
    );
    let took = stopped.elapsed();
    let mut max_fds = 0;
    let mut max_scrape = Duration::ZERO;
    let watch_until = stopped + Duration::from_secs(TIMEOUT + 3);
    while Instant::now() < watch_until {
        let t = Instant::now();
        let m = e.metrics();
        max_scrape = max_scrape.max(t.elapsed());
        max_fds = max_fds.max(unix_socket_fds(e.pid()));
        assert_eq!(value(&m, "sentinel_cri_hung", &[]), 1.0, "{}", m.text);
        assert_eq!(value(&m, "sentinel_cri_up", &[]), 0.0, "{}", m.text);
        for op in OPS {
            let age = value(
                &m,
                "sentinel_cri_probe_in_flight_seconds",
                &[("operation", op)],
            );
            // Single-flight: an outstanding call is never older than the timeout (plus a round).
            assert!(age <= (TIMEOUT + 2 * INTERVAL) as f64, "{op}: {age}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let m = e.metrics();
    for op in OPS {
        assert!(failures(&m, op, "timeout") >= 1.0, "{op}: {}", m.text);
    }
    assert!(
        max_scrape < Duration::from_secs(1),
        "a scrape took {max_scrape:?}"
    );
    // All calls share one HTTP/2 connection: a hang adds no descriptors beyond the socket check's.
    assert!(
        max_fds <= healthy_fds + 1,
        "unix sockets: {healthy_fds} healthy, {max_fds} while hung"
    );
    eprintln!(
        "hung after {took:?}; slowest scrape {max_scrape:?}; unix fds {healthy_fds} -> {max_fds}"
    );

    // SIGCONT: recovers within 2 intervals.
    common::signal(ctd.pid(), Signal::CONT);
    e.wait_for(
        Duration::from_secs(2 * INTERVAL) + SLACK,
        "recovered",
        |m| {
            (value(m, "sentinel_cri_hung", &[]) == 0.0 && value(m, "sentinel_cri_up", &[]) == 1.0)
                .then_some(())
        },
    );

    // Killed: down, not hung, reason connect.
    let before = e.metrics();
    let connect_before = failures(&before, "version", "connect");
    ctd.kill();
    let m = e.wait_for(Duration::from_secs(15), "down with reason connect", |m| {
        (value(m, "sentinel_cri_up", &[]) == 0.0
            && failures(m, "version", "connect") > connect_before)
            .then(|| m.clone())
    });
    assert_eq!(value(&m, "sentinel_cri_hung", &[]), 0.0, "{}", m.text);
    std::thread::sleep(Duration::from_secs(THRESHOLD + 1));
    assert_eq!(value(&e.metrics(), "sentinel_cri_hung", &[]), 0.0);

    // Restarted: one restart seen, up again.
    ctd.restart();
    e.wait_for(Duration::from_secs(20), "restart counted", |m| {
        (value(m, "sentinel_cri_runtime_restarts_total", &[]) == 1.0
            && value(m, "sentinel_cri_up", &[]) == 1.0)
            .then_some(())
    });
    assert_no_panic(&e);
}

#[test]
fn pods_and_containers_by_state_and_a_hung_shim_is_that_container_stuck() {
    if !has_containerd() || common::require("python3").is_none() {
        return;
    }
    let dir = TempDir::new("cri-pods");
    let ctd = Containerd::start(dir.path(), None);
    // The sandbox ("pause") image is busybox sleeping; the config names it.
    ctd.import(&common::cri::busybox_image(
        dir.path(),
        "docker.io/sentinel/pause:latest",
        &["sleep", "3600"],
    ));
    let image = "docker.io/sentinel/bb:latest";
    ctd.import(&common::cri::busybox_image(dir.path(), image, &["sh"]));
    let cri = common::cri::Client::new(&ctd.socket);
    // Host-network sandboxes: no CNI is needed to run them.
    let web = cri.run_pod(dir.path(), "shop", "web");
    let db = cri.run_pod(dir.path(), "shop", "db");
    let forever = [
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 1; done",
    ];
    cri.container(&web, "api", image, &forever, true);
    cri.container(&web, "made", image, &forever, false);
    cri.container(&web, "done", image, &["true"], true);
    cri.container(&db, "pg", image, &forever, true);

    let e = start_exporter(&[format!("--collector.cri.endpoint={}", ctd.endpoint())]);
    let stuck = |m: &Metrics, pod: &str, container: &str| {
        value(
            m,
            "sentinel_cri_container_stuck",
            &[
                ("namespace", "shop"),
                ("pod", pod),
                ("container", container),
            ],
        )
    };
    let m = e.wait_for(Duration::from_secs(30), "containers by state", |m| {
        let c = |s| value(m, "sentinel_cri_containers", &[("state", s)]);
        (c("running") == 2.0
            && c("created") == 1.0
            && c("exited") == 1.0
            && value(
                m,
                "sentinel_cri_probe_duration_seconds_count",
                &[("operation", "container_stats")],
            ) >= 2.0)
            .then(|| m.clone())
    });
    assert_eq!(
        value(&m, "sentinel_cri_pod_sandboxes", &[("state", "ready")]),
        2.0,
        "{}",
        m.text
    );
    assert_eq!(
        value(&m, "sentinel_cri_pod_sandboxes", &[("state", "notready")]),
        0.0
    );
    assert_eq!(stuck(&m, "web", "api"), 0.0, "{}", m.text);
    assert_eq!(stuck(&m, "db", "pg"), 0.0, "{}", m.text);
    // Only running containers get a stuck series.
    assert_eq!(
        m.find("sentinel_cri_container_stuck", &[]).len(),
        2,
        "{}",
        m.text
    );

    // SIGSTOP web's shim: its container is stuck, the runtime is not hung,
    // and db's stats keep answering.
    let shim = ctd.shim_of(&web.0).expect("the web pod's shim");
    common::signal(shim, Signal::STOP);
    let m = e.wait_for(
        Duration::from_secs(THRESHOLD + TIMEOUT + 4 * INTERVAL) + SLACK,
        "web/api stuck",
        |m| {
            assert_eq!(value(m, "sentinel_cri_hung", &[]), 0.0, "{}", m.text);
            (stuck(m, "web", "api") == 1.0).then(|| m.clone())
        },
    );
    assert_eq!(stuck(&m, "db", "pg"), 0.0, "{}", m.text);
    let answered = |m: &Metrics| {
        value(
            m,
            "sentinel_cri_probe_duration_seconds_count",
            &[("operation", "container_stats")],
        )
    };
    let before = answered(&m);
    e.wait_for(
        Duration::from_secs(TIMEOUT + 4 * INTERVAL) + SLACK,
        "db's stats answered",
        |m| {
            assert_eq!(value(m, "sentinel_cri_hung", &[]), 0.0, "{}", m.text);
            assert_eq!(value(m, "sentinel_cri_up", &[]), 1.0, "{}", m.text);
            (answered(m) > before && stuck(m, "web", "api") == 1.0).then_some(())
        },
    );

    // SIGCONT: no longer stuck once its stats answer again.
    common::signal(shim, Signal::CONT);
    e.wait_for(
        Duration::from_secs(TIMEOUT + 4 * INTERVAL) + SLACK,
        "web/api answers",
        |m| (stuck(m, "web", "api") == 0.0).then_some(()),
    );
    assert_no_panic(&e);
    drop(e);
    cri.remove_pod(&web.0);
    cri.remove_pod(&db.0);
}

/// A fake peer on a unix socket for bad input.
#[derive(Clone, Copy)]
enum Peer {
    /// Accepts and reads, never answers.
    Silent,
    /// Answers every connection with an HTTP/1 response.
    Http1Garbage,
}

fn fake_peer(path: &Path, peer: Peer, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let listener = UnixListener::bind(path).expect("bind fake peer");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let mut open = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
                    if let Peer::Http1Garbage = peer {
                        let mut buf = [0u8; 1024];
                        let _ = s.read(&mut buf);
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
                    }
                    open.push(s);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
            for s in &mut open {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
            }
        }
    })
}

#[test]
fn bad_peers_give_the_right_reason_and_no_panic() {
    let dir = TempDir::new("cri-peers");
    for (peer, reason, hung) in [
        (Peer::Silent, "timeout", true),
        (Peer::Http1Garbage, "decode", false),
    ] {
        let sock = dir.path().join(format!("{}.sock", reason));
        let stop = Arc::new(AtomicBool::new(false));
        let server = fake_peer(&sock, peer, stop.clone());
        let e = start_exporter(&[format!(
            "--collector.cri.endpoint=unix://{}",
            sock.display()
        )]);
        let m = e.wait_for(
            Duration::from_secs(TIMEOUT + 2 * INTERVAL) + SLACK * 2,
            reason,
            |m| (failures(m, "version", reason) >= 1.0).then(|| m.clone()),
        );
        assert_eq!(value(&m, "sentinel_cri_up", &[]), 0.0, "{}", m.text);
        if hung {
            e.wait_for(Duration::from_secs(5), "hung", |m| {
                (value(m, "sentinel_cri_hung", &[]) == 1.0).then_some(())
            });
        } else {
            assert_eq!(value(&m, "sentinel_cri_hung", &[]), 0.0, "{}", m.text);
        }
        assert_no_panic(&e);
        drop(e);
        stop.store(true, Ordering::Relaxed);
        let _ = server.join();
    }
}

#[test]
fn no_runtime_no_series_and_a_runtime_appearing_is_picked_up() {
    if !has_containerd() {
        return;
    }
    let dir = TempDir::new("cri-absent");
    let rootfs = dir.path().join("host");
    std::fs::create_dir_all(rootfs.join("run")).unwrap();
    let rootfs_arg = format!("--path.rootfs={}", rootfs.display());
    let e = start_exporter(&[rootfs_arg]);
    std::thread::sleep(Duration::from_secs(3 * INTERVAL));
    let m = e.metrics();
    assert!(
        !m.text.lines().any(|l| l.starts_with("sentinel_cri_")),
        "series without a runtime:\n{}",
        m.text
    );
    let (_, page) = common::http_get(e.port, "/").unwrap();
    assert!(page.contains("not installed"), "{page}");

    // A containerd appears at the well-known socket under the rootfs.
    let sock = rootfs.join("run/containerd/containerd.sock");
    let _ctd = Containerd::start(&dir.path().join("ctd"), Some(&sock));
    e.wait_for(Duration::from_secs(20), "the runtime picked up", |m| {
        (value(m, "sentinel_cri_up", &[]) == 1.0).then_some(())
    });
    assert_no_panic(&e);
}

#[test]
fn a_containerd_without_cri_is_no_runtime_and_answers_grpc_status() {
    if !has_containerd() {
        return;
    }
    let dir = TempDir::new("cri-nocri");
    let rootfs = dir.path().join("host");
    // Docker's own containerd at the first well-known path: no CRI plugin...
    let plain = rootfs.join("run/containerd/containerd.sock");
    let plain_ctd = Containerd::start_without_cri(&dir.path().join("plain"), Some(&plain));
    // ...and the node's CRI runtime at a later one.
    let k3s = rootfs.join("run/k3s/containerd/containerd.sock");
    let _ctd = Containerd::start(&dir.path().join("k3s"), Some(&k3s));
    let e = start_exporter(&[format!("--path.rootfs={}", rootfs.display())]);
    e.wait_for(Duration::from_secs(20), "the CRI runtime picked", |m| {
        (value(m, "sentinel_cri_up", &[]) == 1.0).then_some(())
    });
    assert!(
        e.logs().contains("/run/k3s/containerd/containerd.sock"),
        "{}",
        e.logs()
    );

    // Pointed at the plain containerd on purpose: its unimplemented answers are grpc_status, not a hang.
    let direct = start_exporter(&[format!("--collector.cri.endpoint={}", plain_ctd.endpoint())]);
    let m = direct.wait_for(Duration::from_secs(15), "grpc_status", |m| {
        (failures(m, "version", "grpc_status") >= 2.0).then(|| m.clone())
    });
    assert_eq!(value(&m, "sentinel_cri_up", &[]), 0.0, "{}", m.text);
    std::thread::sleep(Duration::from_secs(THRESHOLD + 1));
    assert_eq!(value(&direct.metrics(), "sentinel_cri_hung", &[]), 0.0);
    assert_no_panic(&e);
    assert_no_panic(&direct);
}

#[test]
fn the_kubelets_endpoint_is_the_one_watched() {
    if !has_containerd() {
        return;
    }
    let dir = TempDir::new("cri-kubelet");
    let rootfs = dir.path().join("host");
    // A containerd at the well-known path that the kubelet does not use...
    let other = rootfs.join("run/containerd/containerd.sock");
    let _decoy = Containerd::start(&dir.path().join("decoy"), Some(&other));
    // ...and the kubelet's own, named by its config.
    let kubelet_sock = rootfs.join("run/k8s/cri.sock");
    let _ctd = Containerd::start(&dir.path().join("ctd"), Some(&kubelet_sock));
    std::fs::create_dir_all(rootfs.join("var/lib/kubelet")).unwrap();
    std::fs::write(
        rootfs.join("var/lib/kubelet/config.yaml"),
        "kind: KubeletConfiguration\ncontainerRuntimeEndpoint: unix:///run/k8s/cri.sock\n",
    )
    .unwrap();
    let e = start_exporter(&[format!("--path.rootfs={}", rootfs.display())]);
    let m = e.wait_for(Duration::from_secs(20), "up", |m| {
        (value(m, "sentinel_cri_up", &[]) == 1.0).then(|| m.clone())
    });
    let want = dir.path().join("ctd/root").to_string_lossy().to_string();
    let fs = e.wait_for(Duration::from_secs(10), "image fs", |m| {
        let fs = m.find("sentinel_cri_image_filesystem_used_bytes", &[]);
        (!fs.is_empty()).then(|| {
            fs.iter()
                .filter_map(|s| s.labels.get("mountpoint").cloned())
                .collect::<Vec<_>>()
        })
    });
    assert!(
        fs.iter().all(|p| p.starts_with(&want)),
        "{fs:?} not under {want}\n{}",
        m.text
    );
    assert!(e.logs().contains("/run/k8s/cri.sock"), "{}", e.logs());
}

/// containerd SIGSTOPped → SentinelCriRuntimeHung at the webhook, through the
/// shipped rules (durations shortened: `common::rules`) in a real Prometheus and
/// Alertmanager; SIGCONT → resolved. Nothing else fires on the way.
#[test]
fn drill_runtime_hung_reaches_the_webhook_and_resolves() {
    if !has_containerd()
        || common::require(PROMETHEUS).is_none()
        || common::require(ALERTMANAGER).is_none()
    {
        return;
    }
    let dir = TempDir::new("cri-drill");
    let d = dir.path();
    let ctd = Containerd::start(&d.join("ctd"), None);
    let e = start_exporter(&[format!("--collector.cri.endpoint={}", ctd.endpoint())]);
    let hook = Webhook::start();
    let am = Alertmanager::start(d, &hook);
    std::fs::write(d.join("rules.yml"), common::rules::shortened_shipped()).unwrap();
    let _prom = Prometheus::start(
        d,
        &format!(
            "{EVERY_SECOND}rule_files: [{}/rules.yml]\n{}\
             scrape_configs:\n  - job_name: node-sentinel\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            d.display(),
            am.alerting(),
            e.port
        ),
    );
    e.wait_for(Duration::from_secs(20), "up", |m| {
        (value(m, "sentinel_cri_up", &[]) == 1.0).then_some(())
    });
    // A quiet spell first: the healthy runtime pages nothing. (NetworkReady
    // is false without CNI and would page after its `for:`: that alert is
    // the one expected exception, checked by name below.)
    std::thread::sleep(Duration::from_secs(8));

    common::signal(ctd.pid(), Signal::STOP);
    let stopped = Instant::now();
    let fired = |status: &str| {
        hook.since(stopped)
            .iter()
            .find(|d| d.status == status && d.name() == "SentinelCriRuntimeHung")
            .map(|d| d.at)
    };
    let at = common::wait_until(
        Duration::from_secs(60),
        "SentinelCriRuntimeHung at the webhook",
        || fired("firing"),
    );
    eprintln!(
        "containerd SIGSTOPped -> SentinelCriRuntimeHung at the webhook in {:?}",
        at - stopped
    );
    common::signal(ctd.pid(), Signal::CONT);
    let cont = Instant::now();
    let resolved = common::wait_until(
        Duration::from_secs(60),
        "SentinelCriRuntimeHung resolved",
        || fired("resolved"),
    );
    eprintln!("SIGCONT -> resolved in {:?}", resolved - cont);
    let others: Vec<String> = hook
        .since(stopped)
        .iter()
        // Before Prometheus's first scrape, SentinelExporterAbsent may page: not this drill's.
        .filter(|d| {
            d.status == "firing"
                && d.name() != "SentinelCriRuntimeHung"
                && d.name() != "SentinelCriNetworkNotReady"
                // The calls that hung are answered after SIGCONT, seconds
                // late: with the window cut to 20 s they are the p99.
                && d.name() != "SentinelCriRuntimeSlow"
        })
        .map(|d| d.name().to_string())
        .collect();
    assert!(others.is_empty(), "other alerts fired: {others:?}");
    assert_no_panic(&e);
}

/// CPU seconds (user + system) the exporter used so far, from /proc/PID/stat
/// (clock ticks of 1/100 s on Linux).
fn cpu(e: &Exporter) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", e.pid())).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // Fields 14 and 15 of stat, counted after the comm field: 12 and 13 here.
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

/// Wall time of one `ctr` call against the socket, killed after 10 s: what a
/// user's own tool sees of the same runtime.
fn ctr_time(ctd: &Containerd) -> Duration {
    let t = Instant::now();
    let _ = std::process::Command::new("timeout")
        .args(["10", "ctr", "--address"])
        .arg(&ctd.socket)
        .args(["-n", "k8s.io", "containers", "ls", "-q"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    t.elapsed()
}

/// Benchmark (run on demand: `cargo test --test cri benchmark -- --ignored
/// --nocapture`; `NODE_SENTINEL_HUNG_SECS` sets the hung phase, default 60):
/// CPU per probe round and scrape latency with 50 running containers,
/// healthy and while containerd is SIGSTOPped, beside `ctr`'s timing.
#[test]
#[ignore]
fn benchmark_50_containers_healthy_and_hung() {
    if !has_containerd() || common::require("python3").is_none() {
        return;
    }
    let dir = TempDir::new("cri-bench");
    let ctd = Containerd::start(dir.path(), None);
    ctd.import(&common::cri::busybox_image(
        dir.path(),
        "docker.io/sentinel/pause:latest",
        &["sleep", "3600"],
    ));
    let image = "docker.io/sentinel/bb:latest";
    ctd.import(&common::cri::busybox_image(dir.path(), image, &["sh"]));
    let cri = common::cri::Client::new(&ctd.socket);
    let mut pods = Vec::new();
    for p in 0..5 {
        let pod = cri.run_pod(dir.path(), "bench", &format!("pod{p}"));
        for c in 0..10 {
            cri.container(&pod, &format!("c{c}"), image, &["sleep", "3600"], true);
        }
        pods.push(pod);
    }
    let e = start_exporter(&[format!("--collector.cri.endpoint={}", ctd.endpoint())]);
    e.wait_for(Duration::from_secs(30), "50 running", |m| {
        (value(m, "sentinel_cri_containers", &[("state", "running")]) == 50.0).then_some(())
    });
    let phase = |secs: u64| {
        let (c0, t0) = (cpu(&e), Instant::now());
        let mut scrapes = Vec::new();
        while t0.elapsed() < Duration::from_secs(secs) {
            let t = Instant::now();
            let _ = e.scrape();
            scrapes.push(t.elapsed());
            std::thread::sleep(Duration::from_millis(500));
        }
        scrapes.sort();
        let rounds = t0.elapsed().as_secs_f64() / INTERVAL as f64;
        let per_round = (cpu(&e) - c0) / rounds;
        let p99 = scrapes[(scrapes.len() * 99 / 100).min(scrapes.len() - 1)];
        (per_round, p99, scrapes.last().copied().unwrap_or_default())
    };
    let ctr_healthy = ctr_time(&ctd);
    let (cpu_ok, p99_ok, max_ok) = phase(30);
    common::signal(ctd.pid(), Signal::STOP);
    let hung_secs = std::env::var("NODE_SENTINEL_HUNG_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let (cpu_hung, p99_hung, max_hung) = phase(hung_secs);
    let ctr_hung = ctr_time(&ctd);
    let fds = unix_socket_fds(e.pid());
    common::signal(ctd.pid(), Signal::CONT);
    eprintln!(
        "BENCH 50 containers, interval {INTERVAL}s: healthy {:.2} ms CPU/round, scrape p99 {p99_ok:?} max {max_ok:?}; \
         hung {hung_secs}s: {:.2} ms CPU/round, scrape p99 {p99_hung:?} max {max_hung:?}, unix fds {fds}; \
         ctr containers ls: healthy {ctr_healthy:?}, hung {ctr_hung:?} (killed at 10s)",
        cpu_ok * 1000.0,
        cpu_hung * 1000.0
    );
    drop(e);
    for pod in &pods {
        cri.remove_pod(&pod.0);
    }
}
