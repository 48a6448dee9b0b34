//! The filesystem collector against real filesystems: a tmpfs filled at a known
//! rate, a burst written and deleted, and a FUSE mount whose daemon is stopped.
#![allow(clippy::disallowed_methods)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// A bindfs FUSE mount whose daemon can be stopped; unmounted on drop.
struct Bindfs {
    _dir: TempDir,
    mnt: PathBuf,
    daemon: Child,
}

impl Bindfs {
    fn mount() -> Option<Bindfs> {
        common::require("bindfs")?;
        common::require("fusermount3")?;
        let dir = TempDir::new("fuse");
        let src = dir.path().join("src");
        let mnt = dir.path().join("mnt");
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
        let mp = fs.mnt.to_str().expect("utf-8").to_string();
        common::wait_until(Duration::from_secs(10), "bindfs mounted", || {
            std::fs::read_to_string("/proc/self/mountinfo")
                .ok()
                .filter(|t| t.contains(&format!(" {mp} ")))
        });
        Some(fs)
    }
}

impl Drop for Bindfs {
    fn drop(&mut self) {
        common::signal(self.daemon.id(), Signal::CONT);
        let _ = Command::new("fusermount3")
            .arg("-u")
            .arg(&self.mnt)
            .status();
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
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
    // exporter's thread count stays flat while the mount stays hung.
    let threads = || {
        std::fs::read_dir(format!("/proc/{}/task", exporter.pid()))
            .expect("tasks")
            .count()
    };
    let before = threads();
    std::thread::sleep(Duration::from_secs(4));
    let after = threads();
    assert!(
        after <= before,
        "threads grew from {before} to {after} during the hang"
    );
    let stuck = std::fs::read_dir(format!("/proc/{}/task", exporter.pid()))
        .expect("tasks")
        .filter_map(|t| t.ok())
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .map(|c| c.trim() == "statvfs")
                .unwrap_or(false)
        })
        .count();
    assert!(
        stuck <= node_sentinel::statfs::WORKERS + 1,
        "{stuck} statvfs threads"
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
