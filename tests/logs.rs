//! The logs collector against real writers, real rotations, a real Docker
//! container and real odd directory entries (FIFO, dangling symlink,
//! unreadable directory).
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Exporter, Metrics, TempDir};

const KIB: f64 = 1024.0;

/// Fast rounds and a short window so a test takes seconds, not minutes.
fn logs_args(groups: &[String], extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--collector.disable-defaults",
        "--collector.logs",
        "--collector.logs.interval=1s",
        "--collector.logs.trend-window=20s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(groups.iter().map(|g| format!("--collector.logs.path={g}")));
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn start(args: &[String]) -> Exporter {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Exporter::start(&args)
}

/// How a writer rotates its file every `every`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Rotate {
    Never,
    /// logrotate's default: rename to `.N`, create a new file, reopen.
    RenameCreate,
    /// logrotate's copytruncate: copy to `.N`, truncate in place; the writer
    /// keeps its O_APPEND descriptor.
    CopyTruncate,
    /// Delete the file while it is being written, keep writing to the
    /// deleted file for a while, then create a new one.
    Delete,
    /// Docker's json-file `max-file=KEEP+1`: delete `.KEEP`, shift the
    /// others up, rename the file to `.1` and reopen, all at once; the first
    /// rotation comes after 1 s (the files are already near their cap).
    Capped {
        keep: u32,
    },
}

/// A thread appending `rate` bytes/s to `path`; stopped and joined on drop.
struct Writer {
    stop: Arc<AtomicBool>,
    rotations: Arc<AtomicU32>,
    handle: Option<JoinHandle<()>>,
}

impl Writer {
    fn start(path: &Path, rate: f64, rotate: Rotate, every: Duration) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let rotations = Arc::new(AtomicU32::new(0));
        let (path, s, r) = (path.to_path_buf(), stop.clone(), rotations.clone());
        let open = |p: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .unwrap()
        };
        let handle = std::thread::spawn(move || {
            let mut file = open(&path);
            let started = Instant::now();
            let mut last_rotation = match rotate {
                Rotate::Capped { .. } => Instant::now()
                    .checked_sub(every.saturating_sub(Duration::from_secs(1)))
                    .unwrap(),
                _ => Instant::now(),
            };
            let mut deleted_at: Option<Instant> = None;
            let mut written = 0f64;
            let line = vec![b'x'; 4096];
            while !s.load(Ordering::Relaxed) {
                let due = rate * started.elapsed().as_secs_f64() - written;
                let mut n = due.max(0.0) as usize;
                while n > 0 {
                    let k = n.min(line.len());
                    file.write_all(&line[..k]).unwrap();
                    n -= k;
                    written += k as f64;
                }
                if let Some(at) = deleted_at
                    && at.elapsed() > Duration::from_secs(2)
                {
                    file = open(&path);
                    deleted_at = None;
                }
                if rotate != Rotate::Never && last_rotation.elapsed() >= every {
                    last_rotation = Instant::now();
                    let n = r.fetch_add(1, Ordering::SeqCst) + 1;
                    let old = path.with_extension(format!("log.{n}"));
                    match rotate {
                        Rotate::RenameCreate => {
                            fs::rename(&path, &old).unwrap();
                            file = open(&path);
                        }
                        Rotate::CopyTruncate => {
                            fs::copy(&path, &old).unwrap();
                            File::options()
                                .write(true)
                                .open(&path)
                                .unwrap()
                                .set_len(0)
                                .unwrap();
                        }
                        Rotate::Delete => {
                            fs::remove_file(&path).unwrap();
                            deleted_at = Some(Instant::now());
                        }
                        Rotate::Capped { keep } => {
                            let generation = |k: u32| path.with_extension(format!("log.{k}"));
                            let _ = fs::remove_file(generation(keep));
                            for k in (1..keep).rev() {
                                let _ = fs::rename(generation(k), generation(k + 1));
                            }
                            fs::rename(&path, generation(1)).unwrap();
                            file = open(&path);
                        }
                        Rotate::Never => {}
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Writer {
            stop,
            rotations,
            handle: Some(handle),
        }
    }

    fn rotations(&self) -> u32 {
        self.rotations.load(Ordering::SeqCst)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn within(v: f64, want: f64, tolerance: f64) -> bool {
    (v - want).abs() <= want * tolerance
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn bad_group_values_exit_2_naming_the_flag() {
    for bad in ["noequals", "g=relative/*", "g=/x/[ab", "bad name=/x/*"] {
        let out = Command::new(common::binary())
            .arg(format!("--collector.logs.path={bad}"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        let first = stderr.lines().next().unwrap_or("");
        assert!(first.contains("--collector.logs.path"), "{bad}: {stderr}");
    }
    let out = Command::new(common::binary())
        .arg("--collector.logs.max-files=0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn one_fast_writer_among_fifty_idle_files() {
    let dir = TempDir::new("logs-fast");
    for i in 0..50 {
        fs::write(
            dir.path().join(format!("idle-{i:02}.log")),
            vec![b'i'; 1000],
        )
        .unwrap();
    }
    let fast = dir.path().join("fast.log");
    let rate = 512.0 * KIB;
    let _writer = Writer::start(&fast, rate, Rotate::Never, Duration::ZERO);
    let glob = format!("app={}/*.log", path_str(dir.path()));
    let exporter = start(&logs_args(&[glob], &["--collector.logs.top-files=5"]));
    let fast_label = path_str(&fast).to_string();
    let (file_rate, group_rate) = exporter.wait_for(
        Duration::from_secs(40),
        "the fast file and the group at 512 KiB/s ±15%",
        |m| {
            let file = m.get(
                "sentinel_log_file_growth_bytes_per_second",
                &[("group", "app"), ("path", &fast_label)],
            )?;
            let group = m.get("sentinel_log_growth_bytes_per_second", &[("group", "app")])?;
            (within(file, rate, 0.15) && within(group, rate, 0.15)).then_some((file, group))
        },
    );
    eprintln!("true rate {rate}, file {file_rate:.0}, group {group_rate:.0}");
    let m = exporter.metrics();
    assert_eq!(m.get("sentinel_log_files", &[("group", "app")]), Some(51.0));
    // Idle files do not grow, so only the writer has a per-file series.
    assert_eq!(
        m.find("sentinel_log_file_growth_bytes_per_second", &[])
            .len(),
        1,
        "{}",
        m.text
    );
    assert!(
        m.get("sentinel_log_size_bytes", &[("group", "app")])
            .unwrap()
            > 50_000.0
    );
    let full = m.find(
        "sentinel_log_seconds_until_filesystem_full",
        &[("group", "app")],
    );
    assert_eq!(full.len(), 1, "{}", m.text);
    assert!(
        full[0].value.is_finite() && full[0].value > 0.0,
        "{}",
        m.text
    );
    assert_eq!(
        m.get("sentinel_log_rotations_total", &[("group", "app")]),
        Some(0.0)
    );
}

#[test]
fn rotation_truncation_and_deletion_never_go_negative_or_spike() {
    let rate = 256.0 * KIB;
    let every = Duration::from_secs(5);
    let cases = [
        ("rename", Rotate::RenameCreate),
        ("copytruncate", Rotate::CopyTruncate),
        ("delete", Rotate::Delete),
    ];
    let dirs: Vec<TempDir> = cases
        .iter()
        .map(|(name, _)| TempDir::new(&format!("logs-rot-{name}")))
        .collect();
    let groups: Vec<String> = cases
        .iter()
        .zip(&dirs)
        .map(|((name, _), d)| format!("{name}={}/*", path_str(d.path())))
        .collect();
    let writers: Vec<Writer> = cases
        .iter()
        .zip(&dirs)
        .map(|((_, how), d)| Writer::start(&d.path().join("app.log"), rate, *how, every))
        .collect();
    let exporter = start(&logs_args(&groups, &[]));
    let deadline = Instant::now() + Duration::from_secs(32);
    let mut max_seen = vec![0f64; cases.len()];
    let check = |m: &Metrics, max_seen: &mut [f64]| {
        for (i, (name, _)) in cases.iter().enumerate() {
            let mut values: Vec<f64> = m
                .find(
                    "sentinel_log_file_growth_bytes_per_second",
                    &[("group", name)],
                )
                .iter()
                .map(|s| s.value)
                .collect();
            values.extend(m.get("sentinel_log_growth_bytes_per_second", &[("group", name)]));
            for v in values {
                assert!(v >= 0.0, "{name}: negative rate {v}\n{}", m.text);
                assert!(v <= 2.0 * rate, "{name}: spike {v} > 2x {rate}\n{}", m.text);
                max_seen[i] = max_seen[i].max(v);
            }
        }
    };
    while Instant::now() < deadline {
        check(&exporter.metrics(), &mut max_seen);
        std::thread::sleep(Duration::from_millis(250));
    }
    for (i, (name, _)) in cases.iter().enumerate() {
        let done = f64::from(writers[i].rotations());
        assert!(done >= 4.0, "{name}: only {done} rotations in 32 s");
        // The collector sees every rotation the writer made (the last one may
        // be younger than the latest round).
        exporter.wait_for(Duration::from_secs(5), &format!("{name}: rotations"), |m| {
            let seen = m.get("sentinel_log_rotations_total", &[("group", name)])?;
            let done = f64::from(writers[i].rotations());
            check(m, &mut max_seen);
            (seen == done).then_some(())
        });
        // Still measuring: the group rate is not lost to the rotations.
        assert!(
            max_seen[i] >= 0.5 * rate,
            "{name}: max rate {}",
            max_seen[i]
        );
        eprintln!(
            "{name}: {done} rotations, max rate seen {:.0} (true {rate})",
            max_seen[i]
        );
    }
}

/// Available bytes of the filesystem holding `p`, as statvfs says.
fn avail_bytes(p: &Path) -> f64 {
    let v = rustix::fs::statvfs(p).unwrap();
    (v.f_bavail * v.f_frsize) as f64
}

#[test]
fn a_capped_group_is_not_filling_beside_an_uncapped_one_on_the_same_tmpfs() {
    if !common::require_root() {
        return;
    }
    let dir = TempDir::new("logs-capped");
    let mnt = dir.path().join("fs");
    fs::create_dir_all(&mnt).unwrap();
    let _tmpfs = Mounted::new(&["-t", "tmpfs", "-o", "size=8m", "tmpfs"], &mnt);
    let (capped, plain) = (mnt.join("capped"), mnt.join("plain"));
    fs::create_dir_all(&capped).unwrap();
    fs::create_dir_all(&plain).unwrap();
    // Like Docker's max-size=128k,max-file=3 at 64 KiB/s: already at its cap
    // (two full generations, a half full file), one rotation every 2 s.
    let head = capped.join("c-json.log");
    let cap = 128.0 * KIB;
    fs::write(&head, vec![b'h'; 64 * 1024]).unwrap();
    for k in 1..=2 {
        fs::write(
            head.with_extension(format!("log.{k}")),
            vec![b'g'; 128 * 1024],
        )
        .unwrap();
    }
    let capped_rate = 64.0 * KIB;
    // Uncapped: renamed within its group every 5 s, nothing ever deleted.
    let plain_rate = 32.0 * KIB;
    let _plain = Writer::start(
        &plain.join("app.log"),
        plain_rate,
        Rotate::RenameCreate,
        Duration::from_secs(5),
    );
    let (c, p) = (path_str(&capped), path_str(&plain));
    let groups = [
        // The generations in the group: deleting the oldest frees its space.
        format!("capped={c}/*-json.log*"),
        // Docker's default glob: every rotation renames the file out of it.
        format!("heads={c}/*-json.log"),
        format!("plain={p}/*"),
    ];
    let exporter = start(&logs_args(&groups, &[]));
    exporter.wait_for(Duration::from_secs(20), "a first walk", |m| {
        group_value(m, "sentinel_log_files", "capped").map(|_| ())
    });
    let writer = Writer::start(
        &head,
        capped_rate,
        Rotate::Capped { keep: 2 },
        Duration::from_secs_f64(cap / capped_rate),
    );
    let mountpoint = path_str(&mnt).to_string();
    let until_full = |m: &Metrics, group: &str| {
        m.get(
            "sentinel_log_seconds_until_filesystem_full",
            &[("group", group), ("mountpoint", &mountpoint)],
        )
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut capped_seen, mut plain_checked) = (0, 0);
    let mut worst = 0f64;
    while Instant::now() < deadline {
        let m = exporter.metrics();
        for g in ["capped", "heads"] {
            if let Some(v) = until_full(&m, g) {
                assert!(v == f64::INFINITY, "{g}: {v} s until full\n{}", m.text);
                capped_seen += 1;
            }
            if let Some(v) = group_value(&m, "sentinel_log_growth_bytes_per_second", g) {
                assert_eq!(v, 0.0, "{g}\n{}", m.text);
            }
        }
        // The uncapped group once its estimate has settled (half a window).
        if let Some(v) = until_full(&m, "plain")
            && deadline.saturating_duration_since(Instant::now()) < Duration::from_secs(20)
        {
            let truth = avail_bytes(&mnt) / plain_rate;
            assert!(
                within(v, truth, 0.2),
                "plain: {v} s until full, truth {truth:.0}\n{}",
                m.text
            );
            worst = worst.max((v - truth).abs() / truth);
            plain_checked += 1;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        capped_seen >= 20,
        "the capped groups' until-full was present only {capped_seen} times"
    );
    assert!(
        plain_checked >= 10,
        "the plain group's until-full was checked only {plain_checked} times"
    );
    // Every rotation is counted once, the renames out of the glob too.
    let counter = writer.rotations.clone();
    drop(writer);
    let done = counter.load(Ordering::SeqCst);
    assert!(done >= 10, "only {done} rotations");
    exporter.wait_for(Duration::from_secs(5), "every rotation counted", |m| {
        let capped = group_value(m, "sentinel_log_rotations_total", "capped")?;
        let heads = group_value(m, "sentinel_log_rotations_total", "heads")?;
        (capped == f64::from(done) && heads == f64::from(done)).then_some(())
    });
    eprintln!(
        "{done} rotations; plain until-full worst error {:.1} %",
        worst * 100.0
    );
}

#[test]
fn five_thousand_files_are_all_counted_and_the_cap_drops_the_rest() {
    let dir = TempDir::new("logs-many");
    for d in 0..50 {
        let sub = dir.path().join(format!("d{d:02}"));
        fs::create_dir(&sub).unwrap();
        for f in 0..100 {
            fs::write(sub.join(format!("f{f:03}.log")), b"line\n").unwrap();
        }
    }
    let glob = format!("many={}/**/*.log", path_str(dir.path()));
    let exporter = start(&logs_args(std::slice::from_ref(&glob), &[]));
    let m = exporter.wait_for(Duration::from_secs(20), "5000 files", |m| {
        (m.get("sentinel_log_files", &[("group", "many")]) == Some(5000.0)).then(|| m.clone())
    });
    assert_eq!(
        m.get("sentinel_log_size_bytes", &[("group", "many")]),
        Some(25_000.0)
    );
    assert_eq!(
        m.get("sentinel_log_files_dropped", &[("group", "many")]),
        Some(0.0)
    );
    assert_eq!(
        m.get("sentinel_series_dropped", &[("collector", "logs")]),
        Some(0.0)
    );
    let cost = m.get(
        "sentinel_collector_duration_seconds",
        &[("collector", "logs")],
    );
    eprintln!("5000 files: collector round took {cost:?} s (debug build)");
    drop(exporter);

    let capped = start(&logs_args(&[glob], &["--collector.logs.max-files=1000"]));
    let m = capped.wait_for(Duration::from_secs(20), "the cap", |m| {
        (m.get("sentinel_log_files_dropped", &[("group", "many")]) == Some(4000.0))
            .then(|| m.clone())
    });
    assert_eq!(
        m.get("sentinel_log_files", &[("group", "many")]),
        Some(1000.0)
    );
    assert!(
        m.get("sentinel_series_dropped", &[("collector", "logs")])
            .unwrap()
            >= 4000.0,
        "{}",
        m.text
    );
}

/// Start the exporter as an unprivileged user: root reads any directory,
/// so only a non-root exporter can meet an unreadable one.
fn start_as_nobody(args: &[String]) -> Exporter {
    let port = common::free_port();
    let log = std::env::temp_dir().join(format!("sentinel-exporter-{port}.log"));
    let child: Child = Command::new(common::binary())
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(args)
        .uid(65534)
        .gid(65534)
        .stdout(Stdio::null())
        .stderr(File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let exporter = Exporter { child, port, log };
    common::wait_until(Duration::from_secs(10), "exporter serving", || {
        common::http_get(port, "/-/healthy").ok()
    });
    exporter
}

#[test]
fn fifo_dangling_symlink_and_unreadable_dir_are_skipped_and_counted() {
    if !common::require_root() {
        return;
    }
    let dir = TempDir::new("logs-odd");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let p = |n: &str| dir.path().join(n);
    fs::write(p("a.log"), vec![b'a'; 100]).unwrap();
    std::os::unix::fs::symlink(p("a.log"), p("same-as-a.log")).unwrap();
    std::os::unix::fs::symlink(p("missing"), p("dangling.log")).unwrap();
    // A FIFO nobody writes to: opening it would block the walk forever.
    common::run("mkfifo", &[path_str(&p("pipe.log"))]);
    fs::create_dir(p("locked")).unwrap();
    fs::write(p("locked/hidden.log"), b"x").unwrap();
    fs::set_permissions(p("locked"), fs::Permissions::from_mode(0o000)).unwrap();
    let glob = format!("odd={}/**/*", path_str(dir.path()));
    let args = logs_args(&[glob], &[]);

    let exporter = start_as_nobody(&args);
    let m = exporter.wait_for(Duration::from_secs(15), "a successful round", |m| {
        (m.get("sentinel_collector_success", &[("collector", "logs")]) == Some(1.0)
            && m.has("sentinel_log_files"))
        .then(|| m.clone())
    });
    let skipped = |reason| {
        m.get(
            "sentinel_log_skipped_entries",
            &[("group", "odd"), ("reason", reason)],
        )
    };
    assert_eq!(skipped("not_regular"), Some(1.0), "{}", m.text);
    assert_eq!(skipped("dangling_symlink"), Some(1.0), "{}", m.text);
    assert_eq!(skipped("unreadable_dir"), Some(1.0), "{}", m.text);
    // a.log and its symlink are one file.
    assert_eq!(m.get("sentinel_log_files", &[("group", "odd")]), Some(1.0));
    assert_eq!(
        m.get("sentinel_log_size_bytes", &[("group", "odd")]),
        Some(100.0)
    );
    let took = m.get(
        "sentinel_collector_duration_seconds",
        &[("collector", "logs")],
    );
    assert!(took.unwrap() < 5.0, "{took:?}");
    // Rounds keep completing: nothing is stuck on the FIFO.
    let first = m.get(
        "sentinel_collector_last_success_timestamp_seconds",
        &[("collector", "logs")],
    );
    exporter.wait_for(Duration::from_secs(10), "later rounds", |m| {
        let t = m.get(
            "sentinel_collector_last_success_timestamp_seconds",
            &[("collector", "logs")],
        );
        (t > first).then_some(())
    });
    drop(exporter);
    // Let TempDir's cleanup into it.
    fs::set_permissions(p("locked"), fs::Permissions::from_mode(0o755)).unwrap();
}

/// A dockerd of our own in a temp dir (RECIPES.md); on drop: SIGCONT, remove
/// our container, SIGTERM, wait. Never touches another daemon.
struct Dockerd {
    dir: TempDir,
    child: Child,
    container: Option<String>,
}

impl Dockerd {
    fn start() -> Dockerd {
        let dir = TempDir::new("logs-docker");
        let d = dir.path();
        let log = File::create(d.join("dockerd.log")).unwrap();
        let child = Command::new("dockerd")
            .arg(format!("--host=unix://{}/docker.sock", d.display()))
            .arg(format!("--data-root={}/root", d.display()))
            .arg(format!("--exec-root={}/exec", d.display()))
            .arg(format!("--pidfile={}/docker.pid", d.display()))
            .args(["--iptables=false", "--bridge=none", "--storage-driver=vfs"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let daemon = Dockerd {
            dir,
            child,
            container: None,
        };
        common::wait_until(Duration::from_secs(60), "dockerd answering", || {
            Command::new("docker")
                .args(daemon.host_args())
                .arg("version")
                .output()
                .ok()
                .filter(|o| o.status.success())
        });
        daemon
    }

    fn host_args(&self) -> [String; 2] {
        [
            "-H".into(),
            format!("unix://{}/docker.sock", self.dir.path().display()),
        ]
    }

    fn docker(&self, args: &[&str]) -> String {
        let host = self.host_args();
        let mut all = vec![host[0].as_str(), host[1].as_str()];
        all.extend_from_slice(args);
        common::run("docker", &all)
    }

    fn import_busybox(&self) {
        let r = self.dir.path().join("image");
        fs::create_dir_all(r.join("bin")).unwrap();
        let busybox = ["/bin/busybox", "/usr/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("busybox");
        fs::copy(busybox, r.join("bin/busybox")).unwrap();
        for c in ["sh", "echo", "sleep", "yes", "cat", "head"] {
            std::os::unix::fs::symlink("busybox", r.join("bin").join(c)).unwrap();
        }
        let mut tar = Command::new("tar")
            .args(["-C", path_str(&r), "-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let host = self.host_args();
        let out = Command::new("docker")
            .args([
                host[0].as_str(),
                host[1].as_str(),
                "import",
                "-",
                "bb:latest",
            ])
            .stdin(tar.stdout.take().unwrap())
            .output()
            .unwrap();
        assert!(tar.wait().unwrap().success());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn data_root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        common::signal(self.pid(), rustix::process::Signal::CONT);
        if let Some(id) = self.container.take() {
            let host = self.host_args();
            let _ = Command::new("docker")
                .args([host[0].as_str(), host[1].as_str(), "rm", "-f", &id])
                .output();
        }
        common::signal(self.pid(), rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn docker_json_logs_carry_the_container_name_even_while_the_daemon_hangs() {
    if !common::require_root() || common::require("dockerd").is_none() {
        return;
    }
    let mut daemon = Dockerd::start();
    daemon.import_busybox();
    let name = format!("spammer-{}", std::process::id());
    let id = daemon
        .docker(&[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            &name,
            "bb:latest",
            "sh",
            "-c",
            "while true; do yes spam-spam-spam-spam | head -c 5000; sleep 0.1; done",
        ])
        .trim()
        .to_string();
    daemon.container = Some(id.clone());
    let root = daemon.data_root();
    let json_log = root.join(format!("containers/{id}/{id}-json.log"));
    let glob = format!("docker={}/containers/*/*-json.log", path_str(&root));
    let exporter = start(&logs_args(std::slice::from_ref(&glob), &[]));
    // A Docker log path is longer than a label value may be: the label is capped.
    let mut path = path_str(&json_log).to_string();
    node_sentinel::metrics::cap_label_value(&mut path);
    exporter.wait_for(
        Duration::from_secs(40),
        "the container's log growing, with its name",
        |m| {
            let rate = m.get(
                "sentinel_log_file_growth_bytes_per_second",
                &[("group", "docker"), ("path", &path), ("container", &name)],
            )?;
            let group = m.get(
                "sentinel_log_growth_bytes_per_second",
                &[("group", "docker")],
            )?;
            (rate > 1000.0 && group > 1000.0).then_some(())
        },
    );

    // The daemon hangs: the name still comes from its on-disk config.
    common::signal(daemon.pid(), rustix::process::Signal::STOP);
    let m = exporter.metrics();
    assert!(
        m.get(
            "sentinel_log_file_growth_bytes_per_second",
            &[("container", &name)]
        )
        .is_some(),
        "{}",
        m.text
    );
    drop(exporter);
    // A fresh exporter (no cached name) while the daemon is still stopped.
    // The stopped daemon copies no more output, so the test appends lines in
    // its json-file format in its place.
    let fresh = start(&logs_args(&[glob], &[]));
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let target = json_log.clone();
    let appender = std::thread::spawn(move || {
        let mut f = OpenOptions::new().append(true).open(&target).unwrap();
        let line =
            b"{\"log\":\"spam\\n\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:00Z\"}\n";
        while !s.load(Ordering::Relaxed) {
            for _ in 0..100 {
                f.write_all(line).unwrap();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        fresh.wait_for(
            Duration::from_secs(30),
            "the name while dockerd is stopped",
            |m| {
                m.get(
                    "sentinel_log_file_growth_bytes_per_second",
                    &[("group", "docker"), ("container", &name)],
                )
            },
        )
    }));
    stop.store(true, Ordering::Relaxed);
    let _ = appender.join();
    let rate = found.unwrap_or_else(|e| std::panic::resume_unwind(e));
    assert!(rate > 0.0);
    drop(fresh);
    drop(daemon);
}

/// A bindfs (FUSE) mount of `src` at `mnt`. On drop: SIGCONT first, so
/// nothing stays hung, then unmount and stop the daemon.
struct Bindfs {
    child: Child,
    mnt: PathBuf,
}

impl Bindfs {
    fn mount(src: &Path, mnt: &Path) -> Bindfs {
        let child = Command::new("bindfs")
            .arg("-f")
            .arg(src)
            .arg(mnt)
            .stdout(Stdio::null())
            .spawn()
            .expect("bindfs");
        let fuse = Bindfs {
            child,
            mnt: mnt.to_path_buf(),
        };
        common::wait_until(Duration::from_secs(10), "bindfs mounted", || {
            mounted(mnt).then_some(())
        });
        fuse
    }

    fn signal(&self, sig: rustix::process::Signal) {
        common::signal(self.child.id(), sig);
    }
}

impl Drop for Bindfs {
    fn drop(&mut self) {
        self.signal(rustix::process::Signal::CONT);
        for _ in 0..50 {
            let ok = Command::new("fusermount3")
                .arg("-u")
                .arg(&self.mnt)
                .status()
                .is_ok_and(|s| s.success());
            if ok || !mounted(&self.mnt) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A kernel mount (bind or tmpfs) at `.0`, unmounted on drop.
struct Mounted(PathBuf);

impl Mounted {
    fn new(args: &[&str], at: &Path) -> Mounted {
        let mut all = args.to_vec();
        all.push(path_str(at));
        common::run("mount", &all);
        Mounted(at.to_path_buf())
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        for _ in 0..50 {
            let ok = Command::new("umount")
                .arg(&self.0)
                .status()
                .is_ok_and(|s| s.success());
            if ok || !mounted(&self.0) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mounted(mnt: &Path) -> bool {
    let table = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let want = format!(" {} ", mnt.display());
    table.lines().any(|l| l.contains(&want))
}

fn group_value(m: &Metrics, name: &str, group: &str) -> Option<f64> {
    m.get(name, &[("group", group)])
}

/// Mountpoints the group's latest walk left out; None before its first walk
/// (the series is there only for a reason that occurred).
fn skipped_mountpoints(m: &Metrics, group: &str) -> Option<f64> {
    m.get("sentinel_log_files", &[("group", group)])?;
    Some(
        m.get(
            "sentinel_log_skipped_entries",
            &[("group", group), ("reason", "mountpoint")],
        )
        .unwrap_or(0.0),
    )
}

#[test]
fn a_hung_mount_in_one_group_leaves_the_other_groups_updating() {
    if !common::require_root()
        || common::require("bindfs").is_none()
        || common::require("fusermount3").is_none()
    {
        return;
    }
    let dir = TempDir::new("logs-hung");
    let d = dir.path();
    let (src, remote) = (d.join("remote-src"), d.join("varlog/remote"));
    for sub in [&src, &remote, &d.join("journal")] {
        fs::create_dir_all(sub).unwrap();
    }
    fs::write(src.join("r.log"), vec![b'r'; 1000]).unwrap();
    // Declared after the TempDir: unmounted before the tree is removed.
    let fuse = Bindfs::mount(&src, &remote);
    let _syslog = Writer::start(
        &d.join("varlog/syslog"),
        64.0 * KIB,
        Rotate::Never,
        Duration::ZERO,
    );
    let _journal = Writer::start(
        &d.join("journal/system.journal"),
        128.0 * KIB,
        Rotate::Never,
        Duration::ZERO,
    );
    let base = path_str(d);
    let groups = [
        format!("varlog={base}/varlog/**/*"),
        format!("remote={base}/varlog/remote/**/*"),
        format!("journal={base}/journal/**/*"),
    ];
    let exporter = start(&logs_args(&groups, &[]));
    exporter.wait_for(
        Duration::from_secs(30),
        "every group walked; varlog does not cross into the mount",
        |m| {
            let files = |g| group_value(m, "sentinel_log_files", g);
            (files("remote") == Some(1.0)
                && files("varlog") == Some(1.0)
                && files("journal") == Some(1.0)
                && skipped_mountpoints(m, "varlog") == Some(1.0)
                && skipped_mountpoints(m, "remote") == Some(0.0)
                && group_value(m, "sentinel_log_walk_hung", "remote") == Some(0.0))
            .then_some(())
        },
    );

    // The remote's daemon stops: any call reaching the mount now blocks.
    fuse.signal(rustix::process::Signal::STOP);
    let stopped = Instant::now();
    let mut hung_since: Option<(Instant, f64, f64)> = None;
    let (mut last_ts, mut max_gap) = (0f64, 0f64);
    let m = loop {
        let m = exporter.metrics();
        assert_eq!(
            m.get("sentinel_collector_success", &[("collector", "logs")]),
            Some(1.0),
            "{}",
            m.text
        );
        for g in ["varlog", "journal"] {
            assert_eq!(
                group_value(&m, "sentinel_log_walk_hung", g),
                Some(0.0),
                "{}",
                m.text
            );
        }
        let ts = m
            .get(
                "sentinel_collector_last_success_timestamp_seconds",
                &[("collector", "logs")],
            )
            .unwrap();
        if ts != last_ts {
            if last_ts > 0.0 {
                max_gap = max_gap.max(ts - last_ts);
            }
            last_ts = ts;
        }
        let written = |g| group_value(&m, "sentinel_log_written_bytes_total", g).unwrap();
        match hung_since {
            None if group_value(&m, "sentinel_log_walk_hung", "remote") == Some(1.0) => {
                hung_since = Some((Instant::now(), written("journal"), written("varlog")));
            }
            Some((at, _, _)) if at.elapsed() > Duration::from_secs(5) => break m,
            _ => {}
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(40),
            "the remote walk never reported hung\n{}",
            m.text
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let (_, journal_then, varlog_then) = hung_since.unwrap();
    let written = |g| group_value(&m, "sentinel_log_written_bytes_total", g).unwrap();
    eprintln!(
        "hung after {:?}; longest gap between rounds {max_gap:.2} s",
        stopped.elapsed()
    );
    // Interval 1 s: the round that meets the hang waits at most 0.8 s for it,
    // so successes stay about a second apart (slack for a loaded machine; a
    // walk deadline is 5 s).
    assert!(max_gap < 4.0, "rounds stalled for {max_gap} s");
    assert!(written("journal") > journal_then, "{}", m.text);
    assert!(written("varlog") > varlog_then, "{}", m.text);
    assert_eq!(
        group_value(&m, "sentinel_log_walk_hung", "remote"),
        Some(1.0)
    );
    // The hung group keeps its last values.
    assert_eq!(
        group_value(&m, "sentinel_log_size_bytes", "remote"),
        Some(1000.0)
    );

    // The daemon comes back: the remote group walks again and sees new bytes.
    fuse.signal(rustix::process::Signal::CONT);
    OpenOptions::new()
        .append(true)
        .open(src.join("r.log"))
        .unwrap()
        .write_all(&[b'r'; 5000])
        .unwrap();
    exporter.wait_for(Duration::from_secs(30), "the remote group recovered", |m| {
        (group_value(m, "sentinel_log_walk_hung", "remote") == Some(0.0)
            && group_value(m, "sentinel_log_size_bytes", "remote") == Some(6000.0)
            && group_value(m, "sentinel_log_walk_timed_out", "remote") == Some(0.0))
        .then_some(())
    });
    drop(exporter);
    drop(fuse);
}

#[test]
fn a_fifo_named_config_v2_json_does_not_block_the_docker_walk() {
    let dir = TempDir::new("logs-fifo-config");
    let containers = dir.path().join("containers");
    let ids = [format!("{:064x}", 0xf1f0), format!("{:064x}", 0xc0de)];
    for id in &ids {
        fs::create_dir_all(containers.join(id)).unwrap();
    }
    // A FIFO nobody writes to: opening it would block forever.
    common::run(
        "mkfifo",
        &[path_str(&containers.join(&ids[0]).join("config.v2.json"))],
    );
    fs::write(
        containers.join(&ids[1]).join("config.v2.json"),
        br#"{"ID":"x","Name":"/web-2"}"#,
    )
    .unwrap();
    let logs: Vec<PathBuf> = ids
        .iter()
        .map(|id| containers.join(id).join(format!("{id}-json.log")))
        .collect();
    let _writers: Vec<Writer> = logs
        .iter()
        .map(|p| Writer::start(p, 32.0 * KIB, Rotate::Never, Duration::ZERO))
        .collect();
    let glob = format!("docker={}/*/*-json.log", path_str(&containers));
    let exporter = start(&logs_args(&[glob], &[]));
    exporter.wait_for(
        Duration::from_secs(30),
        "both containers' logs, the named one with its name",
        |m| {
            // By container: paths this long reach the label cap
            // (MAX_LABEL_VALUE_BYTES) and are shortened around a hash.
            let rate = |container| {
                m.get(
                    "sentinel_log_file_growth_bytes_per_second",
                    &[("group", "docker"), ("container", container)],
                )
            };
            (m.get("sentinel_collector_success", &[("collector", "logs")]) == Some(1.0)
                && group_value(m, "sentinel_log_files", "docker") == Some(2.0)
                && group_value(m, "sentinel_log_walk_hung", "docker") == Some(0.0)
                && rate("web-2").is_some()
                && rate("").is_some())
            .then_some(())
        },
    );
}

#[test]
fn wildcards_do_not_cross_into_other_mounts_but_a_glob_starting_on_one_walks_it() {
    if !common::require_root() {
        return;
    }
    let dir = TempDir::new("logs-xdev");
    let d = dir.path();
    let tree = d.join("tree");
    for sub in ["tree/bound", "tree/tmp", "elsewhere"] {
        fs::create_dir_all(d.join(sub)).unwrap();
    }
    fs::write(tree.join("a.log"), vec![b'a'; 10]).unwrap();
    fs::write(d.join("elsewhere/b.log"), vec![b'b'; 20]).unwrap();
    // A bind mount of the same filesystem (same st_dev: only the mount table
    // tells) and a tmpfs (another st_dev). Declared after the TempDir:
    // unmounted before the tree is removed.
    let _bound = Mounted::new(
        &["--bind", path_str(&d.join("elsewhere"))],
        &tree.join("bound"),
    );
    let _tmp = Mounted::new(
        &["-t", "tmpfs", "-o", "size=1m", "tmpfs"],
        &tree.join("tmp"),
    );
    fs::write(tree.join("tmp/c.log"), vec![b'c'; 40]).unwrap();
    let t = path_str(&tree);
    let groups = [
        format!("tree={t}/**/*"),
        format!("bound={t}/bound/**/*"),
        format!("tmp={t}/tmp/*.log"),
    ];
    let exporter = start(&logs_args(&groups, &[]));
    let m = exporter.wait_for(Duration::from_secs(20), "every group walked", |m| {
        (["tree", "bound", "tmp"]
            .iter()
            .all(|g| group_value(m, "sentinel_log_files", g) == Some(1.0)))
        .then(|| m.clone())
    });
    assert_eq!(
        group_value(&m, "sentinel_log_size_bytes", "tree"),
        Some(10.0)
    );
    assert_eq!(
        group_value(&m, "sentinel_log_size_bytes", "bound"),
        Some(20.0)
    );
    assert_eq!(
        group_value(&m, "sentinel_log_size_bytes", "tmp"),
        Some(40.0)
    );
    assert_eq!(skipped_mountpoints(&m, "tree"), Some(2.0), "{}", m.text);
    assert_eq!(skipped_mountpoints(&m, "bound"), Some(0.0));
    assert_eq!(skipped_mountpoints(&m, "tmp"), Some(0.0));
    assert_eq!(m.get("sentinel_log_mount_table_unreadable", &[]), Some(0.0));
    drop(exporter);

    // Without a mount table (an empty procfs): the failure is counted, the
    // round still succeeds, and st_dev alone keeps `**` off the tmpfs. A bind
    // mount of the same filesystem cannot be told apart then, and is walked.
    let procfs = d.join("no-procfs");
    fs::create_dir_all(&procfs).unwrap();
    let procfs_arg = format!("--path.procfs={}", path_str(&procfs));
    let exporter = start(&logs_args(&groups[..1], &[&procfs_arg]));
    let m = exporter.wait_for(Duration::from_secs(20), "a round without a table", |m| {
        (m.get("sentinel_collector_success", &[("collector", "logs")]) == Some(1.0)
            && m.has("sentinel_log_files"))
        .then(|| m.clone())
    });
    assert_eq!(
        m.get("sentinel_log_mount_table_unreadable", &[]),
        Some(1.0),
        "{}",
        m.text
    );
    assert_eq!(group_value(&m, "sentinel_log_files", "tree"), Some(2.0));
    assert_eq!(skipped_mountpoints(&m, "tree"), Some(1.0), "{}", m.text);
}
