//! The filesystem collector against real filesystems: a tmpfs filled at a known
//! rate (also abruptly after a flat history, at the defaults scaled down in
//! time), a burst written and deleted, a step that stays, FUSE mounts whose daemons are stopped
//! (one, a burst of them, one lazily unmounted and replaced, one where a
//! kubelet CSI volume lives).
#![allow(clippy::disallowed_methods)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::{Exporter, Metrics, TempDir};
use rustix::process::Signal;

const MIB: f64 = 1024.0 * 1024.0;

/// A tmpfs mounted in a temp dir; unmounted on drop.
struct Tmpfs {
    dir: TempDir,
    mnt: PathBuf,
}

impl Tmpfs {
    fn mount(tag: &str, size: &str) -> Tmpfs {
        let dir = TempDir::new(tag);
        let mnt = dir.path().join("fs");
        std::fs::create_dir_all(&mnt).expect("mkdir");
        common::run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                mnt.to_str().expect("utf-8"),
            ],
        );
        Tmpfs { dir, mnt }
    }

    fn mountpoint(&self) -> &str {
        self.mnt.to_str().expect("utf-8")
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        let _ = &self.dir;
    }
}

/// Appends `rate` bytes per second to `path` from a thread until dropped.
struct Writer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    fn start(path: PathBuf, rate: f64) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut file = std::fs::File::create(&path).expect("create");
            let started = Instant::now();
            let mut written = 0f64;
            let chunk = vec![b'x'; 64 * 1024];
            while !flag.load(Ordering::Relaxed) {
                let due = started.elapsed().as_secs_f64() * rate;
                while written + chunk.len() as f64 <= due {
                    file.write_all(&chunk).expect("write");
                    written += chunk.len() as f64;
                }
                std::thread::sleep(Duration::from_millis(20));
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

fn fs_value(m: &Metrics, name: &str, mountpoint: &str) -> Option<f64> {
    m.get(name, &[("mountpoint", mountpoint)])
}

fn exporter_for_filesystems(window: &str) -> Exporter {
    Exporter::start(&[
        "--collector.disable-defaults",
        "--collector.filesystem",
        "--collector.filesystem.interval=1s",
        &format!("--collector.filesystem.trend-window={window}"),
        "--collector.filesystem.stat-timeout=500ms",
    ])
}

#[test]
fn steady_fill_gives_rate_and_time_to_full_then_inf_after_delete() {
    if !common::require_root() || common::require("mount").is_none() {
        return;
    }
    let fs = Tmpfs::mount("fill", "200m");
    let exporter = exporter_for_filesystems("20s");
    let mp = fs.mountpoint().to_string();
    let file = fs.mnt.join("filler");
    let writer = Writer::start(file.clone(), MIB);
    let started = Instant::now();
    // Let the window fill up with the steady part before judging.
    std::thread::sleep(Duration::from_secs(12));
    let (rate, ttf, avail) = exporter.wait_for(
        Duration::from_secs(30),
        "fill rate within 10% of 1 MiB/s",
        |m| {
            let rate = fs_value(m, "sentinel_filesystem_fill_rate_bytes_per_second", &mp)?;
            let ttf = fs_value(m, "sentinel_filesystem_seconds_until_full", &mp)?;
            let avail = fs_value(m, "sentinel_filesystem_avail_bytes", &mp)?;
            ((rate - MIB).abs() <= 0.1 * MIB).then_some((rate, ttf, avail))
        },
    );
    let truth = avail / MIB;
    eprintln!(
        "after {:?}: rate {:.0} B/s, time to full {ttf:.1}s (truth {truth:.1}s)",
        started.elapsed(),
        rate
    );
    assert!(
        (ttf - truth).abs() <= 0.15 * truth,
        "time to full {ttf} vs truth {truth}"
    );
    let m = exporter.metrics();
    assert_eq!(
        fs_value(&m, "sentinel_filesystem_size_bytes", &mp),
        Some(200.0 * MIB)
    );
    assert_eq!(
        fs_value(&m, "sentinel_filesystem_stat_hung", &mp),
        Some(0.0)
    );
    assert_eq!(fs_value(&m, "sentinel_filesystem_readonly", &mp), Some(0.0));
    assert!(fs_value(&m, "sentinel_filesystem_files", &mp).is_some());

    drop(writer);
    std::fs::remove_file(&file).expect("delete");
    let deleted = Instant::now();
    exporter.wait_for(
        Duration::from_secs(25),
        "time to full back to +Inf within the window",
        |m| fs_value(m, "sentinel_filesystem_seconds_until_full", &mp).filter(|v| v.is_infinite()),
    );
    eprintln!("+Inf {:?} after the delete (window 20s)", deleted.elapsed());
}

#[test]
fn a_burst_written_and_deleted_is_not_a_trend() {
    if !common::require_root() || common::require("mount").is_none() {
        return;
    }
    let fs = Tmpfs::mount("burst", "200m");
    let exporter = exporter_for_filesystems("20s");
    let mp = fs.mountpoint().to_string();
    exporter.wait_for(Duration::from_secs(15), "an idle estimate", |m| {
        fs_value(m, "sentinel_filesystem_seconds_until_full", &mp)
    });
    let file = fs.mnt.join("burst");
    std::fs::write(&file, vec![0u8; 50 * 1024 * 1024]).expect("write burst");
    std::thread::sleep(Duration::from_secs(2));
    std::fs::remove_file(&file).expect("delete burst");
    // Watch the whole window slide past the burst.
    let until = Instant::now() + Duration::from_secs(22);
    while Instant::now() < until {
        let m = exporter.metrics();
        let ttf = fs_value(&m, "sentinel_filesystem_seconds_until_full", &mp);
        assert_eq!(
            ttf,
            Some(f64::INFINITY),
            "burst turned into a trend:\n{}",
            m.text
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The production defaults scaled down 15 times in time: samples every 1 s
/// instead of 15 s and a 4 min trend window instead of 1 h, so the onset path
/// looks at the newest 24 s instead of 6 min. One scaled minute is 4 s here.
const SCALED_WINDOW: &str = "4m";
const SCALE: f64 = 15.0;

/// Fill rate and time to full of `mp`, if both are reported and within ±20 %
/// of `rate` and of avail / `rate`.
fn within_a_fifth(m: &Metrics, mp: &str, rate: f64) -> Option<(f64, f64)> {
    let reported = fs_value(m, "sentinel_filesystem_fill_rate_bytes_per_second", mp)?;
    let ttf = fs_value(m, "sentinel_filesystem_seconds_until_full", mp)?;
    let truth = fs_value(m, "sentinel_filesystem_avail_bytes", mp)? / rate;
    ((reported - rate).abs() <= 0.2 * rate && (ttf - truth).abs() <= 0.2 * truth)
        .then_some((reported, ttf))
}

#[test]
fn an_abrupt_fill_reads_its_rate_within_minutes_at_scaled_defaults() {
    if !common::require_root() || common::require("mount").is_none() {
        return;
    }
    let fs = Tmpfs::mount("onset", "256m");
    let exporter = exporter_for_filesystems(SCALED_WINDOW);
    let mp = fs.mountpoint().to_string();
    // A flat history first (15 scaled minutes): the window's own Theil-Sen
    // slope then lags an abrupt fill by tens of scaled minutes.
    exporter.wait_for(Duration::from_secs(40), "an idle estimate", |m| {
        fs_value(m, "sentinel_filesystem_seconds_until_full", &mp).filter(|v| v.is_infinite())
    });
    std::thread::sleep(Duration::from_secs(35));
    let _writer = Writer::start(fs.mnt.join("filler"), MIB);
    let started = Instant::now();
    // 45 s is 11 scaled minutes; the estimator's own table says 4.5.
    let (rate, ttf) = exporter.wait_for(
        Duration::from_secs(45),
        "fill rate and time to full within 20% of 1 MiB/s",
        |m| within_a_fifth(m, &mp, MIB),
    );
    let lag = started.elapsed();
    eprintln!(
        "within ±20% {lag:?} after the fill started ({:.1} scaled minutes): rate {rate:.0} B/s, time to full {ttf:.0}s",
        lag.as_secs_f64() * SCALE / 60.0
    );
    // ... and it stays there, rather than flickering back to "not filling".
    let until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < until {
        let m = exporter.metrics();
        assert!(
            within_a_fifth(&m, &mp, MIB).is_some(),
            "left ±20% of the truth:\n{}",
            m.text
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_download_that_stays_is_not_a_fill_at_scaled_defaults() {
    if !common::require_root() || common::require("mount").is_none() {
        return;
    }
    let fs = Tmpfs::mount("step", "256m");
    let exporter = exporter_for_filesystems(SCALED_WINDOW);
    let mp = fs.mountpoint().to_string();
    exporter.wait_for(Duration::from_secs(40), "an idle estimate", |m| {
        fs_value(m, "sentinel_filesystem_seconds_until_full", &mp).filter(|v| v.is_infinite())
    });
    // 64 MiB at once (a quarter of the disk), kept; then three short
    // windows slide past it.
    std::fs::write(fs.mnt.join("image"), vec![0u8; 64 * 1024 * 1024]).expect("write step");
    let until = Instant::now() + Duration::from_secs(75);
    while Instant::now() < until {
        let m = exporter.metrics();
        let ttf = fs_value(&m, "sentinel_filesystem_seconds_until_full", &mp);
        assert_eq!(
            ttf,
            Some(f64::INFINITY),
            "the step read as a fill:\n{}",
            m.text
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The FUSE tests hang mounts that every exporter started meanwhile would
/// see: they run one at a time so that their thread counts are their own.
fn fuse_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A bindfs FUSE mount whose daemon can be stopped; resumed and unmounted on
/// drop, even when the test fails.
struct Bindfs {
    _dir: TempDir,
    mnt: PathBuf,
    daemon: Child,
}

impl Bindfs {
    fn mount() -> Option<Bindfs> {
        let dir = TempDir::new("fuse");
        let mnt = dir.path().join("mnt");
        Bindfs::mount_at(dir, mnt)
    }

    /// Mount at `mnt` (created), mirroring a source dir inside `dir`.
    fn mount_at(dir: TempDir, mnt: PathBuf) -> Option<Bindfs> {
        common::require("bindfs")?;
        common::require("fusermount3")?;
        let src = dir.path().join("src");
        std::fs::create_dir_all(&src).expect("mkdir");
        std::fs::create_dir_all(&mnt).expect("mkdir");
        let daemon = Command::new("bindfs")
            .arg("-f")
            .arg(&src)
            .arg(&mnt)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bindfs");
        let fs = Bindfs {
            _dir: dir,
            mnt,
            daemon,
        };
        let mp = fs.mountpoint().to_string();
        common::wait_until(Duration::from_secs(10), "bindfs mounted", || {
            std::fs::read_to_string("/proc/self/mountinfo")
                .ok()
                .filter(|t| t.contains(&format!(" {mp} ")))
        });
        Some(fs)
    }

    fn mountpoint(&self) -> &str {
        self.mnt.to_str().expect("utf-8")
    }

    fn stop(&self) {
        common::signal(self.daemon.id(), Signal::STOP);
    }
}

impl Drop for Bindfs {
    fn drop(&mut self) {
        common::signal(self.daemon.id(), Signal::CONT);
        // A statvfs in flight makes the unmount busy for a moment: retry,
        // then detach lazily, so no dead mount outlives the test.
        let unmount = |lazy: bool| {
            Command::new("fusermount3")
                .arg(if lazy { "-uz" } else { "-u" })
                .arg(&self.mnt)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let mounted = || {
            std::fs::read_to_string("/proc/self/mountinfo")
                .is_ok_and(|t| t.contains(&format!(" {} ", self.mnt.display())))
        };
        for _ in 0..10 {
            if unmount(false) || !mounted() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if mounted() {
            unmount(true);
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// The exporter's threads named `comm`.
fn threads_named(exporter: &Exporter, comm: &str) -> usize {
    std::fs::read_dir(format!("/proc/{}/task", exporter.pid()))
        .expect("tasks")
        .filter_map(|t| t.ok())
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .map(|c| c.trim() == comm)
                .unwrap_or(false)
        })
        .count()
}

/// Mounts the exporter reports hung right now.
fn hung_count(m: &Metrics) -> usize {
    m.find("sentinel_filesystem_stat_hung", &[])
        .iter()
        .filter(|s| s.value == 1.0)
        .count()
}

/// Idle threads a pool keeps, beside its stuck ones.
fn idle_threads() -> usize {
    node_sentinel::host::offload::Limits::default().idle
}

fn scrape_time(exporter: &Exporter) -> Duration {
    let t = Instant::now();
    exporter.scrape();
    t.elapsed()
}

#[test]
fn a_hung_fuse_mount_is_flagged_and_the_rest_keeps_updating() {
    if !common::require_root() || common::require("mount").is_none() {
        return;
    }
    let _serial = fuse_lock();
    let Some(fuse) = Bindfs::mount() else { return };
    let tmp = Tmpfs::mount("beside-fuse", "50m");
    let exporter = exporter_for_filesystems("1h");
    let fuse_mp = fuse.mnt.to_str().expect("utf-8").to_string();
    let tmp_mp = tmp.mountpoint().to_string();
    exporter.wait_for(Duration::from_secs(10), "FUSE mount answering", |m| {
        (fs_value(m, "sentinel_filesystem_stat_hung", &fuse_mp) == Some(0.0)
            && fs_value(m, "sentinel_filesystem_size_bytes", &fuse_mp).is_some())
        .then_some(())
    });

    common::signal(fuse.daemon.id(), Signal::STOP);
    exporter.wait_for(
        Duration::from_secs(10),
        "stat_hung=1 for the stopped FUSE mount",
        |m| (fs_value(m, "sentinel_filesystem_stat_hung", &fuse_mp) == Some(1.0)).then_some(()),
    );
    // The other mounts keep updating while it hangs: write to the tmpfs and see it.
    std::fs::write(tmp.mnt.join("marker"), vec![1u8; 4 * 1024 * 1024]).expect("write");
    exporter.wait_for(
        Duration::from_secs(10),
        "tmpfs usage updated during the hang",
        |m| {
            let free = fs_value(m, "sentinel_filesystem_free_bytes", &tmp_mp)?;
            (free <= 46.0 * MIB).then_some(())
        },
    );
    let m = exporter.metrics();
    assert_eq!(
        m.get("sentinel_collector_success", &[("collector", "filesystem")]),
        Some(1.0),
        "{}",
        m.text
    );
    assert!(fs_value(&m, "sentinel_filesystem_size_bytes", &fuse_mp).is_none());
    for _ in 0..5 {
        let t = scrape_time(&exporter);
        assert!(
            t < Duration::from_secs(2),
            "a scrape took {t:?} during the hang"
        );
    }
    // One stuck statvfs call for the mount, not one more per round: the
    // statvfs threads stay flat while the mount stays hung. (Other collectors'
    // pools start and end threads as their work comes, so the process's own
    // total is not flat on a busy node.)
    let threads = || threads_named(&exporter, "statvfs");
    let before = threads();
    std::thread::sleep(Duration::from_secs(4));
    let after = threads();
    assert!(
        after <= before,
        "threads grew from {before} to {after} during the hang"
    );
    let stuck = threads_named(&exporter, "statvfs");
    let hung = hung_count(&exporter.metrics());
    assert!(
        stuck <= hung + idle_threads(),
        "{stuck} statvfs threads, {hung} hung"
    );

    common::signal(fuse.daemon.id(), Signal::CONT);
    exporter.wait_for(
        Duration::from_secs(10),
        "stat_hung back to 0 after SIGCONT",
        |m| {
            (fs_value(m, "sentinel_filesystem_stat_hung", &fuse_mp) == Some(0.0)
                && fs_value(m, "sentinel_filesystem_size_bytes", &fuse_mp).is_some())
            .then_some(())
        },
    );
    let _ = Path::new(&tmp_mp);
}

/// The interval and stat timeout of the hung-mount tests below: promises are
/// checked in intervals, with room for a loaded machine.
const INTERVAL: Duration = Duration::from_secs(2);
const STAT_TIMEOUT: Duration = Duration::from_secs(1);
/// Slack for a loaded 2-core machine on top of each promise.
const SLACK: Duration = Duration::from_secs(2);

fn exporter_for_hangs(extra: &[&str]) -> Exporter {
    let mut args = vec![
        "--collector.disable-defaults".to_string(),
        "--collector.filesystem".to_string(),
        format!("--collector.filesystem.interval={}s", INTERVAL.as_secs()),
        format!(
            "--collector.filesystem.stat-timeout={}ms",
            STAT_TIMEOUT.as_millis()
        ),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Exporter::start(&args)
}

/// A tmpfs mounted over a path, unmounted (lazily) on drop.
struct TmpfsAt(PathBuf);

impl Drop for TmpfsAt {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_new_mount_where_a_hung_one_was_lazily_unmounted_gets_fresh_series() {
    if !common::require_root() || common::require("mount").is_none() {
        return;
    }
    let _serial = fuse_lock();
    let Some(fuse) = Bindfs::mount() else { return };
    let mp = fuse.mountpoint().to_string();
    let exporter = exporter_for_hangs(&[]);
    let at = |m: &Metrics, name: &str, fstype: &str| {
        m.get(name, &[("mountpoint", mp.as_str()), ("fstype", fstype)])
    };
    exporter.wait_for(Duration::from_secs(10), "the FUSE mount answering", |m| {
        at(m, "sentinel_filesystem_size_bytes", "fuse")
    });
    fuse.stop();
    exporter.wait_for(
        STAT_TIMEOUT + 2 * INTERVAL + SLACK,
        "stat_hung=1 for the stopped mount",
        |m| (at(m, "sentinel_filesystem_stat_hung", "fuse") == Some(1.0)).then_some(()),
    );
    // What an operator does: detach the hung mount and mount a healthy one there.
    common::run("umount", &["-l", &mp]);
    common::run("mount", &["-t", "tmpfs", "-o", "size=30m", "tmpfs", &mp]);
    let _tmpfs = TmpfsAt(fuse.mnt.clone());
    let remounted = Instant::now();
    exporter.wait_for(
        2 * INTERVAL + SLACK,
        "fresh series for the new mount, stat_hung=0",
        |m| {
            (at(m, "sentinel_filesystem_stat_hung", "tmpfs") == Some(0.0)
                && at(m, "sentinel_filesystem_size_bytes", "tmpfs") == Some(30.0 * MIB))
            .then_some(())
        },
    );
    eprintln!("fresh series {:?} after the remount", remounted.elapsed());
    // The lazily unmounted one left the table, and its series with it.
    let m = exporter.metrics();
    assert_eq!(
        at(&m, "sentinel_filesystem_stat_hung", "fuse"),
        None,
        "{}",
        m.text
    );
    // Its call is still stuck (the daemon is stopped): one thread, no more
    // (beside one per mount the exporter reports hung, should any be).
    let stuck = threads_named(&exporter, "statvfs");
    let hung = hung_count(&m);
    assert!(
        stuck <= 1 + hung + idle_threads(),
        "{stuck} statvfs threads, {hung} hung"
    );
}

#[test]
fn a_burst_of_hung_mounts_leaves_the_healthy_ones_fresh() {
    if !common::require_root() || common::require("mount").is_none() {
        return;
    }
    let _serial = fuse_lock();
    const HUNG: usize = 24;
    let mut fuses = Vec::new();
    for _ in 0..HUNG {
        let Some(f) = Bindfs::mount() else { return };
        fuses.push(f);
    }
    let tmp = Tmpfs::mount("beside-burst", "200m");
    let tmp_mp = tmp.mountpoint().to_string();
    let exporter = exporter_for_hangs(&[]);
    exporter.wait_for(Duration::from_secs(15), "every mount answering", |m| {
        fuses
            .iter()
            .all(|f| fs_value(m, "sentinel_filesystem_stat_hung", f.mountpoint()) == Some(0.0))
            .then_some(())
    });
    const RATE: f64 = MIB;
    let writer_started = Instant::now();
    let writer = Writer::start(tmp.mnt.join("filler"), RATE);
    std::thread::sleep(2 * INTERVAL);

    // All at the same moment.
    for f in &fuses {
        f.stop();
    }
    let stopped = Instant::now();
    let mut marked: Option<Duration> = None;
    let mut worst_stale = Duration::ZERO;
    let mut slowest_scrape = Duration::ZERO;
    while stopped.elapsed() < STAT_TIMEOUT + 5 * INTERVAL + SLACK {
        let t = Instant::now();
        let m = Metrics::parse(&exporter.scrape());
        slowest_scrape = slowest_scrape.max(t.elapsed());
        // The writer's bytes say when the tmpfs was last sampled.
        let size = fs_value(&m, "sentinel_filesystem_size_bytes", &tmp_mp);
        let free = fs_value(&m, "sentinel_filesystem_free_bytes", &tmp_mp);
        let (Some(size), Some(free)) = (size, free) else {
            panic!("the tmpfs's series vanished during the burst:\n{}", m.text);
        };
        let sampled_at = Duration::from_secs_f64(((size - free) / RATE).max(0.0));
        let stale = writer_started.elapsed().saturating_sub(sampled_at);
        worst_stale = worst_stale.max(stale);
        assert!(
            stale <= 2 * INTERVAL + SLACK,
            "the tmpfs's series are {stale:?} old {:?} into the burst",
            stopped.elapsed()
        );
        assert_eq!(
            m.get("sentinel_collector_success", &[("collector", "filesystem")]),
            Some(1.0),
            "{}",
            m.text
        );
        let all_hung = fuses
            .iter()
            .all(|f| fs_value(&m, "sentinel_filesystem_stat_hung", f.mountpoint()) == Some(1.0));
        if all_hung && marked.is_none() {
            marked = Some(stopped.elapsed());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    drop(writer);
    eprintln!(
        "{HUNG} hung mounts marked after {marked:?}; tmpfs at most {worst_stale:?} stale; slowest scrape {slowest_scrape:?}"
    );
    let marked = marked.expect("every hung mount marked");
    assert!(
        marked <= STAT_TIMEOUT + 2 * INTERVAL + SLACK,
        "marked after {marked:?}"
    );
    assert!(
        slowest_scrape < Duration::from_secs(1),
        "a scrape took {slowest_scrape:?}"
    );
    // One stuck thread per hung mount, flat over rounds.
    let m = exporter.metrics();
    let hung = hung_count(&m);
    assert!(hung >= HUNG, "{hung} hung");
    let stuck = threads_named(&exporter, "statvfs");
    assert!(
        stuck <= hung + idle_threads(),
        "{stuck} statvfs threads for {hung} hung mounts"
    );
    std::thread::sleep(2 * INTERVAL);
    let later = threads_named(&exporter, "statvfs");
    assert!(
        later <= stuck,
        "statvfs threads grew from {stuck} to {later}"
    );
    drop(fuses);
    exporter.wait_for(2 * INTERVAL + SLACK, "the mounts gone, nothing hung", |m| {
        (hung_count(m) == 0).then_some(())
    });
}

/// A directory tree under /var/lib/kubelet created for one test, removed on
/// drop (and /var/lib/kubelet itself if the test created it).
struct KubeletDir {
    pod: PathBuf,
    created_root: bool,
}

impl Drop for KubeletDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.pod);
        if self.created_root {
            let _ = std::fs::remove_dir("/var/lib/kubelet/pods");
            let _ = std::fs::remove_dir("/var/lib/kubelet");
        }
    }
}

#[test]
fn a_hung_fuse_volume_under_kubelet_is_reported_with_default_excludes() {
    if !common::require_root() || common::require("mount").is_none() {
        return;
    }
    let _serial = fuse_lock();
    let created_root = !Path::new("/var/lib/kubelet").exists();
    let pod = PathBuf::from(format!(
        "/var/lib/kubelet/pods/sentinel-test-{}",
        std::process::id()
    ));
    // Dropped last: the mount inside is gone by then.
    let _kubelet = KubeletDir {
        pod: pod.clone(),
        created_root,
    };
    let mnt = pod.join("volumes/kubernetes.io~csi/pv-test/mount");
    let Some(fuse) = Bindfs::mount_at(TempDir::new("csi"), mnt) else {
        return;
    };
    let mp = fuse.mountpoint().to_string();
    let exporter = exporter_for_hangs(&[]);
    exporter.wait_for(Duration::from_secs(10), "the CSI volume answering", |m| {
        (fs_value(m, "sentinel_filesystem_stat_hung", &mp) == Some(0.0)).then_some(())
    });
    fuse.stop();
    exporter.wait_for(
        STAT_TIMEOUT + 2 * INTERVAL + SLACK,
        "stat_hung=1 for the hung CSI volume",
        |m| (fs_value(m, "sentinel_filesystem_stat_hung", &mp) == Some(1.0)).then_some(()),
    );
    // Beside it, a tmpfs in the same pod's volumes stays excluded.
    let projected = pod.join("volumes/kubernetes.io~projected/token");
    std::fs::create_dir_all(&projected).expect("mkdir");
    let projected_mp = projected.to_str().expect("utf-8").to_string();
    common::run(
        "mount",
        &["-t", "tmpfs", "-o", "size=1m", "tmpfs", &projected_mp],
    );
    let _projected = TmpfsAt(projected);
    std::thread::sleep(2 * INTERVAL + SLACK);
    let m = exporter.metrics();
    assert_eq!(
        fs_value(&m, "sentinel_filesystem_stat_hung", &projected_mp),
        None,
        "{}",
        m.text
    );
    assert_eq!(
        fs_value(&m, "sentinel_filesystem_stat_hung", &mp),
        Some(1.0)
    );
    drop(_projected);
    drop(fuse);
}
