//! The kubelet collector against real filesystems and real files: config
//! fixtures (kubeadm's YAML, a JSON file with drop-ins, a partial
//! evictionHard, soft thresholds, garbage) held against a real tmpfs as the
//! kubelet's root dir, that tmpfs filled at a known rate past a 30 %
//! threshold, the image filesystem a real private containerd reports through
//! ImageFsInfo, pod log directories with real writers, and a healthz.
//!
//! No kubelet can run on these machines (no API server, no cluster), so its
//! healthz endpoint is stood in for by a small HTTP server inside the test
//! that answers as the kubelet's does (`200 ok`), fails, or accepts and never
//! answers.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Exporter, Metrics, TempDir};

const MIB: f64 = 1024.0 * 1024.0;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kubelet")
        .join(name)
}

/// A tmpfs mounted in a temp dir; unmounted on drop.
struct Tmpfs {
    _dir: TempDir,
    mnt: PathBuf,
}

impl Tmpfs {
    fn mount(tag: &str, size: &str) -> Tmpfs {
        let dir = TempDir::new(tag);
        let mnt = dir.path().join("fs");
        std::fs::create_dir_all(&mnt).unwrap();
        common::run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                mnt.to_str().unwrap(),
            ],
        );
        Tmpfs { _dir: dir, mnt }
    }

    fn path(&self) -> &str {
        self.mnt.to_str().unwrap()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
    }
}

/// Appends `rate` bytes per second to `path` in small steps until dropped.
struct Writer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    fn start(path: &Path, rate: usize) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let path = path.to_path_buf();
        let thread = std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap();
            let step = Duration::from_millis(100);
            let chunk = vec![b'x'; rate / 10];
            let start = Instant::now();
            let mut n = 0u32;
            while !flag.load(Ordering::Relaxed) {
                if f.write_all(&chunk).is_err() {
                    break;
                }
                n += 1;
                // Paced against the start, so a late wake-up catches up.
                let next = start + step * n;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        });
        Writer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The kubelet and filesystem collectors, fast rounds, a one-minute trend window.
fn start(extra: &[String]) -> Exporter {
    let mut args: Vec<String> = [
        "--collector.disable-defaults",
        "--collector.kubelet",
        "--collector.kubelet.interval=1s",
        "--collector.filesystem",
        "--collector.filesystem.interval=1s",
        "--collector.filesystem.trend-window=60s",
        // Nothing answers here unless a test says so.
        "--collector.kubelet.healthz-url=http://127.0.0.1:9/healthz",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Exporter::start(&args)
}

fn threshold(m: &Metrics, family: &str, signal: &str, kind: &str) -> Option<f64> {
    m.get(family, &[("signal", signal), ("kind", kind)])
}

fn disabled(m: &Metrics, signal: &str) -> Option<f64> {
    m.get(
        "sentinel_kubelet_eviction_signal_disabled",
        &[("signal", signal)],
    )
}

fn within(v: f64, want: f64, tolerance: f64) -> bool {
    (v - want).abs() <= tolerance * want.abs()
}

/// The tmpfs's size as the filesystem collector reports it.
fn fs_size(m: &Metrics, mountpoint: &str) -> Option<f64> {
    m.get(
        "sentinel_filesystem_size_bytes",
        &[("mountpoint", mountpoint)],
    )
}

fn root_args(root: &Tmpfs, config: &Path) -> Vec<String> {
    vec![
        format!("--collector.kubelet.root-dir={}", root.path()),
        format!("--collector.kubelet.config={}", config.display()),
    ]
}

#[test]
fn kubeadm_yaml_means_the_kubelets_defaults() {
    if !common::require_root() {
        return;
    }
    let root = Tmpfs::mount("kubelet-kubeadm", "100m");
    let e = start(&root_args(&root, &fixture("kubeadm.yaml")));
    let m = e.wait_for(Duration::from_secs(20), "nodefs thresholds", |m| {
        threshold(
            m,
            "sentinel_kubelet_eviction_threshold_bytes",
            "nodefs.available",
            "hard",
        )
        .and_then(|_| fs_size(m, root.path()))
        .map(|_| m.clone())
    });
    let size = fs_size(&m, root.path()).unwrap();
    assert_eq!(size, 100.0 * MIB);
    let t = threshold(
        &m,
        "sentinel_kubelet_eviction_threshold_bytes",
        "nodefs.available",
        "hard",
    )
    .unwrap();
    assert_eq!(t, 10.0 * MIB, "10% of the 100 MiB root dir filesystem");
    let files = m
        .get("sentinel_filesystem_files", &[("mountpoint", root.path())])
        .unwrap();
    let t = threshold(
        &m,
        "sentinel_kubelet_eviction_threshold_inodes",
        "nodefs.inodesFree",
        "hard",
    )
    .unwrap();
    assert!(within(t, files * 0.05, 1e-9), "{t} vs {files}");
    assert_eq!(
        threshold(
            &m,
            "sentinel_kubelet_eviction_threshold_bytes",
            "memory.available",
            "hard"
        ),
        Some(100.0 * MIB)
    );
    for s in [
        "memory.available",
        "nodefs.available",
        "nodefs.inodesFree",
        "imagefs.available",
    ] {
        assert_eq!(disabled(&m, s), Some(0.0), "{s}");
    }
    // imagefs: 15% of whatever filesystem holds the runtime's root here.
    let image = m.find(
        "sentinel_kubelet_eviction_headroom_bytes",
        &[("signal", "imagefs.available")],
    );
    assert_eq!(image.len(), 1, "{}", m.text);
    let image_mp = image[0].labels["mountpoint"].clone();
    let t = threshold(
        &m,
        "sentinel_kubelet_eviction_threshold_bytes",
        "imagefs.available",
        "hard",
    )
    .unwrap();
    if let Some(size) = fs_size(&m, &image_mp) {
        assert!(within(t, size * 0.15, 1e-6), "{t} vs {size}");
    }
    assert_eq!(
        m.get("sentinel_kubelet_image_gc_high_threshold_percent", &[]),
        Some(85.0)
    );
    assert_eq!(
        m.get(
            "sentinel_kubelet_config_info",
            &[("path", fixture("kubeadm.yaml").to_str().unwrap())]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.get("sentinel_kubelet_container_log_max_size_bytes", &[]),
        Some(10.0 * MIB)
    );
    assert_eq!(
        m.get("sentinel_collector_success", &[("collector", "kubelet")]),
        Some(1.0)
    );
}

#[test]
fn json_with_dropins_merged_in_order_and_reread_on_change() {
    if !common::require_root() {
        return;
    }
    let root = Tmpfs::mount("kubelet-json", "100m");
    // A copy, so the test can change a drop-in.
    let dir = TempDir::new("kubelet-json-cfg");
    let config = dir.path().join("config.json");
    std::fs::copy(fixture("config.json"), &config).unwrap();
    let dropins = dir.path().join("config.json.d");
    std::fs::create_dir_all(&dropins).unwrap();
    for f in ["00-nodeadm.conf", "10-logs.conf", "README.md"] {
        std::fs::copy(fixture("config.json.d").join(f), dropins.join(f)).unwrap();
    }
    let e = start(&root_args(&root, &config));
    let m = e.wait_for(Duration::from_secs(20), "merged thresholds", |m| {
        threshold(
            m,
            "sentinel_kubelet_eviction_threshold_bytes",
            "imagefs.available",
            "hard",
        )
        .map(|_| m.clone())
    });
    // 00-nodeadm.conf replaced nodefs.available with a quantity and kept the
    // other keys of the main file's map; README.md is not a drop-in.
    assert_eq!(
        threshold(
            &m,
            "sentinel_kubelet_eviction_threshold_bytes",
            "nodefs.available",
            "hard"
        ),
        Some(20.0 * MIB)
    );
    let headroom = m
        .get(
            "sentinel_kubelet_eviction_headroom_bytes",
            &[("signal", "nodefs.available"), ("mountpoint", root.path())],
        )
        .unwrap();
    assert!(within(headroom, 80.0 * MIB, 0.01), "{headroom}");
    assert_eq!(
        threshold(
            &m,
            "sentinel_kubelet_eviction_threshold_bytes",
            "memory.available",
            "hard"
        ),
        Some(100.0 * MIB)
    );
    let image = m.find(
        "sentinel_kubelet_eviction_headroom_bytes",
        &[("signal", "imagefs.available")],
    );
    let image_mp = image[0].labels["mountpoint"].clone();
    let t = threshold(
        &m,
        "sentinel_kubelet_eviction_threshold_bytes",
        "imagefs.available",
        "hard",
    )
    .unwrap();
    if let Some(size) = fs_size(&m, &image_mp) {
        assert!(
            within(t, size * 0.25, 1e-6),
            "10-logs.conf's 25%: {t} vs {size}"
        );
    }
    assert_eq!(
        m.get("sentinel_kubelet_image_gc_high_threshold_percent", &[]),
        Some(70.0)
    );
    assert_eq!(
        m.get("sentinel_kubelet_container_log_max_size_bytes", &[]),
        Some(50.0 * MIB)
    );
    for s in [
        "memory.available",
        "nodefs.available",
        "nodefs.inodesFree",
        "imagefs.available",
    ] {
        assert_eq!(disabled(&m, s), Some(0.0), "{s}");
    }

    // A new drop-in is picked up without a restart.
    std::fs::write(
        dropins.join("20-tight.conf"),
        "evictionHard:\n  nodefs.available: 50%\n",
    )
    .unwrap();
    e.wait_for(Duration::from_secs(20), "the new drop-in", |m| {
        (threshold(
            m,
            "sentinel_kubelet_eviction_threshold_bytes",
            "nodefs.available",
            "hard",
        ) == Some(50.0 * MIB))
        .then_some(())
    });
}

#[test]
fn a_partial_eviction_hard_leaves_the_other_signals_disabled() {
    if !common::require_root() {
        return;
    }
    let root = Tmpfs::mount("kubelet-partial", "100m");
    let e = start(&root_args(&root, &fixture("partial.yaml")));
    let m = e.wait_for(Duration::from_secs(20), "disabled signals", |m| {
        disabled(m, "nodefs.available").map(|_| m.clone())
    });
    assert_eq!(disabled(&m, "memory.available"), Some(0.0));
    for s in ["nodefs.available", "nodefs.inodesFree", "imagefs.available"] {
        assert_eq!(disabled(&m, s), Some(1.0), "{s}");
    }
    assert_eq!(
        threshold(
            &m,
            "sentinel_kubelet_eviction_threshold_bytes",
            "memory.available",
            "hard"
        ),
        Some(500.0 * MIB)
    );
    assert!(
        m.find(
            "sentinel_kubelet_eviction_threshold_bytes",
            &[("signal", "nodefs.available")]
        )
        .is_empty()
    );
    assert!(
        m.find("sentinel_kubelet_eviction_headroom_bytes", &[])
            .is_empty(),
        "{}",
        m.text
    );
    assert!(
        m.find("sentinel_kubelet_seconds_until_eviction", &[])
            .is_empty()
    );
}

#[test]
fn soft_thresholds_carry_their_grace_periods() {
    if !common::require_root() {
        return;
    }
    let root = Tmpfs::mount("kubelet-soft", "100m");
    let e = start(&root_args(&root, &fixture("soft.yaml")));
    let m = e.wait_for(Duration::from_secs(20), "soft thresholds", |m| {
        threshold(
            m,
            "sentinel_kubelet_eviction_threshold_bytes",
            "nodefs.available",
            "soft",
        )
        .map(|_| m.clone())
    });
    assert_eq!(
        threshold(
            &m,
            "sentinel_kubelet_eviction_threshold_bytes",
            "nodefs.available",
            "soft"
        ),
        Some(40.0 * MIB)
    );
    assert_eq!(
        threshold(
            &m,
            "sentinel_kubelet_eviction_threshold_bytes",
            "nodefs.available",
            "hard"
        ),
        Some(30.0 * MIB)
    );
    assert_eq!(
        threshold(
            &m,
            "sentinel_kubelet_eviction_threshold_bytes",
            "imagefs.available",
            "soft"
        ),
        Some(8.0 * MIB)
    );
    assert_eq!(
        threshold(
            &m,
            "sentinel_kubelet_eviction_threshold_inodes",
            "nodefs.inodesFree",
            "hard"
        ),
        Some(1000.0)
    );
    let grace = |s: &str| {
        m.get(
            "sentinel_kubelet_eviction_soft_grace_period_seconds",
            &[("signal", s)],
        )
    };
    assert_eq!(grace("nodefs.available"), Some(90.0));
    assert_eq!(grace("imagefs.available"), Some(120.0));
}

#[test]
fn a_garbage_config_fails_only_this_collector_with_one_clear_line() {
    if !common::require_root() {
        return;
    }
    let root = Tmpfs::mount("kubelet-garbage", "100m");
    let dir = TempDir::new("kubelet-garbage-cfg");
    let config = dir.path().join("config.yaml");
    std::fs::copy(fixture("garbage.yaml"), &config).unwrap();
    let e = start(&root_args(&root, &config));
    e.wait_for(
        Duration::from_secs(20),
        "kubelet failing, filesystem fine",
        |m| {
            (m.get("sentinel_collector_success", &[("collector", "kubelet")]) == Some(0.0)
                && m.get("sentinel_collector_success", &[("collector", "filesystem")]) == Some(1.0)
                && fs_size(m, root.path()).is_some())
            .then_some(())
        },
    );
    let m = e.metrics();
    assert!(
        !m.series
            .iter()
            .any(|s| s.name.starts_with("sentinel_kubelet_")),
        "{}",
        m.text
    );
    let (_, page) = common::http_get(e.port, "/").unwrap();
    let want = format!("kubelet config {}: ", config.display());
    let line = page
        .lines()
        .find(|l| l.contains(&want))
        .unwrap_or_else(|| panic!("{page}"));
    assert!(line.contains("line 3"), "{line}");
    assert!(e.logs().contains(&want), "{}", e.logs());
    // Fixed, it is read again without a restart.
    std::fs::copy(fixture("soft.yaml"), &config).unwrap();
    e.wait_for(Duration::from_secs(20), "recovery", |m| {
        (m.get("sentinel_collector_success", &[("collector", "kubelet")]) == Some(1.0))
            .then_some(())
    });
}

#[test]
fn not_a_kubernetes_node_no_series_and_not_installed() {
    let rootfs = TempDir::new("kubelet-none");
    let e = start(&[format!("--path.rootfs={}", rootfs.path().display())]);
    let m = e.wait_for(Duration::from_secs(20), "not installed", |m| {
        m.get("sentinel_collector_installed", &[("collector", "kubelet")])
            .map(|_| m.clone())
    });
    assert_eq!(
        m.get("sentinel_collector_installed", &[("collector", "kubelet")]),
        Some(0.0)
    );
    assert!(
        !m.series
            .iter()
            .any(|s| s.name.starts_with("sentinel_kubelet_")),
        "{}",
        m.text
    );
    let (_, page) = common::http_get(e.port, "/").unwrap();
    let row = page
        .lines()
        .find(|l| l.contains(">kubelet<"))
        .unwrap_or_default();
    assert!(row.contains("not installed"), "{page}");
}

#[test]
fn a_root_dir_filling_at_a_known_rate_reaches_its_30_percent_threshold() {
    if !common::require_root() {
        return;
    }
    let root = Tmpfs::mount("kubelet-fill", "100m");
    let cfg = TempDir::new("kubelet-fill-cfg");
    let config = cfg.path().join("config.yaml");
    std::fs::write(
        &config,
        "kind: KubeletConfiguration\nevictionHard:\n  nodefs.available: 30%\n",
    )
    .unwrap();
    let e = start(&root_args(&root, &config));
    let rate = 1024 * 1024;
    let writer = Writer::start(&root.mnt.join("pods-data"), rate);
    let labels = [("signal", "nodefs.available"), ("mountpoint", root.path())];
    // The trend needs a tenth of its 60 s window and settled samples.
    let (until, headroom, avail) =
        e.wait_for(Duration::from_secs(60), "a time until eviction", |m| {
            let until = m.get("sentinel_kubelet_seconds_until_eviction", &labels)?;
            let avail = m.get(
                "sentinel_filesystem_avail_bytes",
                &[("mountpoint", root.path())],
            )?;
            let headroom = m.get("sentinel_kubelet_eviction_headroom_bytes", &labels)?;
            (until.is_finite()
                && m.get(
                    "sentinel_filesystem_fill_rate_bytes_per_second",
                    &[("mountpoint", root.path())],
                )? > 0.0)
                .then_some((until, headroom, avail))
        });
    let m = e.metrics();
    let t = threshold(
        &m,
        "sentinel_kubelet_eviction_threshold_bytes",
        "nodefs.available",
        "hard",
    )
    .unwrap();
    assert_eq!(t, 30.0 * MIB);
    // Headroom is the collector's own statvfs, a moment apart from the
    // filesystem collector's: within two seconds' writes of avail - 30 MiB.
    assert!(
        (headroom - (avail - t)).abs() <= 2.0 * rate as f64,
        "headroom {headroom}, avail {avail}"
    );
    let truth = headroom / rate as f64;
    assert!(
        within(until, truth, 0.15),
        "until eviction {until} s, truth {truth} s"
    );
    eprintln!("time until eviction {until:.1} s, truth {truth:.1} s");

    // Past the threshold: negative headroom, and eviction is now.
    drop(writer);
    let fill = vec![b'y'; (headroom as usize) + 10 * 1024 * 1024];
    std::fs::write(root.mnt.join("burst"), fill).unwrap();
    let (headroom, until) = e.wait_for(Duration::from_secs(20), "negative headroom", |m| {
        let h = m.get("sentinel_kubelet_eviction_headroom_bytes", &labels)?;
        (h < 0.0).then(|| (h, m.get("sentinel_kubelet_seconds_until_eviction", &labels)))
    });
    assert!(within(headroom, -10.0 * MIB, 0.2), "{headroom}");
    if let Some(until) = until {
        assert!(until == 0.0 || until.is_infinite(), "{until}");
    }
}

#[test]
fn imagefs_is_the_filesystem_of_containerds_image_fs_info() {
    if !common::require_root() || common::require("containerd").is_none() {
        return;
    }
    let root = Tmpfs::mount("kubelet-nodefs", "100m");
    // containerd's root on its own tmpfs: ImageFsInfo names a directory on it.
    let images = Tmpfs::mount("kubelet-imagefs", "200m");
    let ctd = common::cri::Containerd::start(&images.mnt.join("containerd"), None);
    let mut args = root_args(&root, &fixture("soft.yaml"));
    args.push("--collector.cri".into());
    args.push(format!("--collector.cri.endpoint={}", ctd.endpoint()));
    args.push("--collector.cri.interval=1s".into());
    let e = start(&args);
    let image_labels = [
        ("signal", "imagefs.available"),
        ("mountpoint", images.path()),
    ];
    let m = e.wait_for(
        Duration::from_secs(60),
        "imagefs on containerd's tmpfs",
        |m| {
            // Two collectors' rounds: wait for both, not just the kubelet's.
            m.get("sentinel_kubelet_eviction_headroom_bytes", &image_labels)?;
            m.get(
                "sentinel_filesystem_avail_bytes",
                &[("mountpoint", images.path())],
            )
            .map(|_| m.clone())
        },
    );
    let used = m.find("sentinel_cri_image_filesystem_used_bytes", &[]);
    assert!(
        used.iter()
            .any(|s| s.labels["mountpoint"].starts_with(images.path())),
        "ImageFsInfo names a path on the image tmpfs: {}",
        m.text
    );
    assert_eq!(
        threshold(
            &m,
            "sentinel_kubelet_eviction_threshold_bytes",
            "imagefs.available",
            "hard"
        ),
        Some(60.0 * MIB)
    );
    let avail = m
        .get(
            "sentinel_filesystem_avail_bytes",
            &[("mountpoint", images.path())],
        )
        .unwrap();
    let headroom = m
        .get("sentinel_kubelet_eviction_headroom_bytes", &image_labels)
        .unwrap();
    assert!(
        (headroom - (avail - 60.0 * MIB)).abs() < MIB,
        "{headroom} vs {avail}"
    );
    let gc = m
        .get(
            "sentinel_kubelet_image_gc_headroom_bytes",
            &[("mountpoint", images.path())],
        )
        .unwrap();
    assert!(
        (gc - (avail - 30.0 * MIB)).abs() < MIB,
        "85% of 200 MiB: {gc} vs {avail}"
    );
    // nodefs stays the root dir's filesystem.
    assert!(
        m.get(
            "sentinel_kubelet_eviction_headroom_bytes",
            &[("signal", "nodefs.available"), ("mountpoint", root.path())]
        )
        .is_some()
    );
    drop(e);
    drop(ctd);
}

/// A pod's log directory under `rootfs` as the kubelet lays it out.
fn pod_log(rootfs: &Path, namespace: &str, pod: &str, uid: &str, container: &str) -> PathBuf {
    let dir = rootfs.join(format!("var/log/pods/{namespace}_{pod}_{uid}/{container}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("0.log")
}

#[test]
fn pod_logs_carry_namespace_pod_and_container_and_an_unrotated_one_is_flagged() {
    let rootfs = TempDir::new("kubelet-pods");
    let kubelet = rootfs.path().join("var/lib/kubelet");
    std::fs::create_dir_all(&kubelet).unwrap();
    std::fs::write(
        kubelet.join("config.yaml"),
        "kind: KubeletConfiguration\ncontainerLogMaxSize: 1Mi\n",
    )
    .unwrap();
    let web = pod_log(
        rootfs.path(),
        "shop",
        "web-7d4b9c-x2x4z",
        "0b7c2a9e-1111-4c1e-9d7a-2f3b4c5d6e7f",
        "nginx",
    );
    let api = pod_log(
        rootfs.path(),
        "shop",
        "api-5f6d8-kq9lp",
        "9e8d7c6b-2222-4a5b-8c7d-6e5f4a3b2c1d",
        "server",
    );
    let quiet = pod_log(
        rootfs.path(),
        "kube-system",
        "coredns-1",
        "1234abcd-3333-4000-8000-000000000000",
        "coredns",
    );
    std::fs::write(&quiet, b"ready\n").unwrap();
    // Never rotated: already three times its 1 MiB limit.
    std::fs::write(&api, vec![b'a'; 3 * 1024 * 1024]).unwrap();
    let rates = [(&web, 20 * 1024usize), (&api, 60 * 1024usize)];
    let _writers: Vec<Writer> = rates.iter().map(|(p, r)| Writer::start(p, *r)).collect();
    let e = Exporter::start(&[
        "--collector.disable-defaults",
        "--collector.kubelet",
        "--collector.kubelet.interval=1s",
        "--collector.kubelet.healthz-url=http://127.0.0.1:9/healthz",
        "--collector.logs",
        "--collector.logs.interval=1s",
        "--collector.logs.trend-window=20s",
        &format!("--path.rootfs={}", rootfs.path().display()),
    ]);
    let rate = |m: &Metrics, pod: &str| {
        m.get(
            "sentinel_log_file_growth_bytes_per_second",
            &[("group", "pods"), ("pod", pod)],
        )
    };
    let m = e.wait_for(Duration::from_secs(60), "per-pod rates", |m| {
        (rate(m, "web-7d4b9c-x2x4z")? > 0.0 && rate(m, "api-5f6d8-kq9lp")? > 0.0).then(|| m.clone())
    });
    let web_rate = rate(&m, "web-7d4b9c-x2x4z").unwrap();
    let api_rate = rate(&m, "api-5f6d8-kq9lp").unwrap();
    assert!(within(web_rate, 20.0 * 1024.0, 0.15), "web {web_rate}");
    assert!(within(api_rate, 60.0 * 1024.0, 0.15), "api {api_rate}");
    eprintln!("pod log rates: web {web_rate:.0} B/s (20480), api {api_rate:.0} B/s (61440)");
    let series = m.find(
        "sentinel_log_file_growth_bytes_per_second",
        &[("pod", "api-5f6d8-kq9lp")],
    );
    let labels = &series[0].labels;
    assert_eq!(labels["namespace"], "shop");
    assert_eq!(labels["container"], "server");
    assert_eq!(
        labels["path"],
        "/var/log/pods/shop_api-5f6d8-kq9lp_9e8d7c6b-2222-4a5b-8c7d-6e5f4a3b2c1d/server/0.log"
    );
    assert!(
        !labels
            .values()
            .any(|v| v == "9e8d7c6b-2222-4a5b-8c7d-6e5f4a3b2c1d"),
        "never the uid alone"
    );
    // The unrotated log is a finding, the others are not.
    let oversize = |pod: &str| m.get("sentinel_kubelet_container_log_oversize", &[("pod", pod)]);
    assert_eq!(oversize("api-5f6d8-kq9lp"), Some(1.0));
    assert_eq!(oversize("web-7d4b9c-x2x4z"), Some(0.0));
    assert_eq!(oversize("coredns-1"), Some(0.0));
    assert_eq!(
        m.get(
            "sentinel_kubelet_container_log_oversize",
            &[("namespace", "kube-system"), ("container", "coredns")]
        ),
        Some(0.0)
    );
    // Rotated as the kubelet does (rename, new 0.log): the finding clears.
    std::fs::rename(&api, api.with_extension("log.20261201-120000")).unwrap();
    std::fs::write(&api, b"").unwrap();
    e.wait_for(
        Duration::from_secs(20),
        "the rotated log no longer flagged",
        |m| {
            (m.get(
                "sentinel_kubelet_container_log_oversize",
                &[("pod", "api-5f6d8-kq9lp")],
            ) == Some(0.0))
            .then_some(())
        },
    );
}

/// The stand-in for the kubelet's healthz: 0 answers `200 ok`, 1 answers
/// 500 with the kubelet's failure text, 2 accepts and never answers.
struct Healthz {
    port: u16,
    mode: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Healthz {
    fn start() -> Healthz {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (mode.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !s.load(Ordering::Relaxed) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf);
                let answer: &[u8] = match m.load(Ordering::Relaxed) {
                    0 => b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\nok",
                    1 => b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 33\r\n\r\n[-]syncloop failed: reason hidden",
                    _ => {
                        held.push(conn);
                        continue;
                    }
                };
                let _ = conn.write_all(answer);
            }
        });
        Healthz {
            port,
            mode,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Healthz {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn healthz_up_failing_and_hanging() {
    let rootfs = TempDir::new("kubelet-healthz");
    std::fs::create_dir_all(rootfs.path().join("var/lib/kubelet")).unwrap();
    let h = Healthz::start();
    let e = Exporter::start(&[
        "--collector.disable-defaults",
        "--collector.kubelet",
        "--collector.kubelet.interval=1s",
        "--collector.kubelet.healthz-timeout=2s",
        &format!(
            "--collector.kubelet.healthz-url=http://127.0.0.1:{}/healthz",
            h.port
        ),
        &format!("--path.rootfs={}", rootfs.path().display()),
    ]);
    let up = |m: &Metrics| m.get("sentinel_kubelet_healthz_up", &[]);
    e.wait_for(Duration::from_secs(20), "healthz up", |m| {
        (up(m) == Some(1.0)).then_some(())
    });
    let m = e.metrics();
    assert!(
        m.get("sentinel_kubelet_healthz_duration_seconds_count", &[])
            .unwrap()
            >= 1.0
    );
    h.mode.store(1, Ordering::Relaxed);
    e.wait_for(Duration::from_secs(20), "healthz failing", |m| {
        (up(m) == Some(0.0)
            && m.get(
                "sentinel_kubelet_healthz_failures_total",
                &[("reason", "http_status")],
            )? >= 1.0)
            .then_some(())
    });
    // Accepting and silent: the in-flight age grows, then the probe times out.
    h.mode.store(2, Ordering::Relaxed);
    e.wait_for(Duration::from_secs(20), "healthz in flight", |m| {
        (m.get("sentinel_kubelet_healthz_in_flight_seconds", &[])? >= 1.0).then_some(())
    });
    e.wait_for(Duration::from_secs(20), "healthz timing out", |m| {
        (up(m) == Some(0.0)
            && m.get(
                "sentinel_kubelet_healthz_failures_total",
                &[("reason", "timeout")],
            )? >= 1.0)
            .then_some(())
    });
    h.mode.store(0, Ordering::Relaxed);
    e.wait_for(Duration::from_secs(20), "healthz back", |m| {
        (up(m) == Some(1.0)).then_some(())
    });
    drop(e);
    drop(h);
}
