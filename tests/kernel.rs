//! The kernel collector against the real kernel: a task hung in D state on
//! a stopped FUSE mount past a lowered hung-task timeout, an OOM kill in a
//! small cgroup-v1 memory cgroup, an ext4 error and read-only remount from a
//! corrupted loop image, records written to /dev/kmsg by a process (user
//! facility: they must not count), an exporter without CAP_SYSLOG, and an
//! ext4 error recorded in a superblock (the kernel's own test trigger) read
//! through a bind-mounted sysfs beside a clean filesystem.
//!
//! The tests run one at a time: each exporter reads the whole kernel log, so
//! one test's real kernel problems would show in another's counters. Every
//! sysctl changed is restored, every process, mount, loop device and cgroup
//! removed on drop, also when an assertion fails.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::{Exporter, Metrics, TempDir, http_get, run, signal, wait_until};
use rustix::process::Signal;

const PATIENCE: Duration = Duration::from_secs(60);
const PYTHON: &str = "/usr/bin/python3";

const REASONS: [&str; 9] = [
    "task_hung",
    "oom_kill",
    "soft_lockup",
    "rcu_stall",
    "fs_error",
    "fs_remount_readonly",
    "io_error",
    "nfs_not_responding",
    "conntrack_full",
];

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A short tag unique to this run (a comm is at most 15 bytes).
fn tag(base: &str) -> String {
    format!("{base}{}", std::process::id() % 100_000)
}

fn exporter_args() -> Vec<String> {
    [
        "--collector.disable-defaults",
        "--collector.kernel",
        "--collector.kernel.interval=1s",
    ]
    .map(String::from)
    .to_vec()
}

/// An exporter running only the kernel collector, once it reads the log.
fn exporter() -> Exporter {
    let args = exporter_args();
    let exp = Exporter::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    exp.wait_for(PATIENCE, "the kernel log to be read", |m| {
        (m.get("sentinel_kernel_log_readable", &[]) == Some(1.0)).then_some(())
    });
    exp
}

fn problems(m: &Metrics, reason: &str) -> f64 {
    m.get("sentinel_kernel_problems_total", &[("reason", reason)])
        .unwrap_or(f64::NAN)
}

fn last_seen(m: &Metrics, reason: &str, comm: &str) -> Option<f64> {
    m.get(
        "sentinel_kernel_last_problem_timestamp_seconds",
        &[("reason", reason), ("comm", comm)],
    )
}

/// A sysctl set for the test and restored on drop.
struct Sysctl {
    path: &'static str,
    old: String,
}

impl Sysctl {
    fn set(path: &'static str, value: &str) -> Sysctl {
        let old = std::fs::read_to_string(path).unwrap().trim().to_string();
        // Some (printk_devkmsg) want the newline `echo` gives.
        std::fs::write(path, format!("{value}\n")).unwrap_or_else(|e| panic!("{path}: {e}"));
        Sysctl { path, old }
    }
}

impl Drop for Sysctl {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(self.path, format!("{}\n", self.old)) {
            eprintln!("could not restore {} to {}: {e}", self.path, self.old);
        }
    }
}

/// A Python child that names itself `comm`, says "ready", and runs `body`
/// once it reads a line on stdin.
fn python(comm: &str, prelude: &str, body: &str, args: &[&str]) -> (Child, ChildStdin) {
    let script = format!(
        "import os, sys\nopen('/proc/self/comm', 'w').write(sys.argv[1])\n{prelude}\nprint('ready', flush=True)\nsys.stdin.readline()\n{body}\n"
    );
    let mut child = Command::new(PYTHON)
        .arg("-c")
        .arg(script)
        .arg(comm)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python3");
    let out = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "python child did not get ready");
    let stdin = child.stdin.take().unwrap();
    (child, stdin)
}

fn state_of(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

fn mounted(mnt: &Path) -> bool {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let want = format!(" {} ", mnt.display());
    table.lines().any(|l| l.contains(&want))
}

#[test]
fn records_a_process_writes_to_kmsg_never_count() {
    if !common::require_root() {
        return;
    }
    let _one = serial();
    // The kernel rate-limits writes to /dev/kmsg (10 per 5 s) unless told not to.
    let _unlimited = Sysctl::set("/proc/sys/kernel/printk_devkmsg", "on");
    let exp = exporter();
    let t = tag("fake");
    let before = exp.metrics();
    let other = |m: &Metrics| {
        m.get(
            "sentinel_kernel_log_records_total",
            &[("facility", "other")],
        )
        .unwrap_or(0.0)
    };
    // Each reason in the kernel's own words, with every priority prefix a
    // process can give: none (LOG_USER), level only (facility 0 asked for,
    // which the kernel turns into LOG_USER), and an explicit other facility.
    let lines = [
        format!("INFO: task {t}:1 blocked for more than 120 seconds."),
        format!("Out of memory: Killed process 1 ({t}) total-vm:1kB, anon-rss:1kB"),
        "watchdog: BUG: soft lockup - CPU#0 stuck for 23s! [x:1]".into(),
        "rcu: INFO: rcu_sched self-detected stall on CPU".into(),
        "EXT4-fs error (device loop9): ext4_lookup:1855: inode #2: comm ls: iget".into(),
        "EXT4-fs (loop9): Remounting filesystem read-only".into(),
        "I/O error, dev loop9, sector 0 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0".into(),
        "nfs: server 192.0.2.1 not responding, still trying".into(),
        "nf_conntrack: nf_conntrack: table full, dropping packet".into(),
    ];
    let mut written = 0;
    let mut kmsg = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/kmsg")
        .unwrap();
    for prefix in ["", "<0>", "<3>", "<27>"] {
        for line in &lines {
            // One write is one record.
            kmsg.write_all(format!("{prefix}{line}\n").as_bytes())
                .unwrap();
            written += 1;
        }
    }
    let after = exp.wait_for(PATIENCE, "the written records to be read", |m| {
        (other(m) >= other(&before) + written as f64).then(|| m.clone())
    });
    for reason in REASONS {
        assert_eq!(
            problems(&after, reason),
            problems(&before, reason),
            "{reason} counted a record written by a process"
        );
    }
    assert!(last_seen(&after, "task_hung", &t).is_none());
    assert!(last_seen(&after, "oom_kill", &t).is_none());
}

/// A bindfs mount, stopped at the test's word, and a process that sits in
/// `close()` of a file on it. On drop: SIGCONT first, so nothing stays hung,
/// then the child is reaped and the mount removed.
struct Stuck {
    bindfs: Child,
    mnt: PathBuf,
    child: Option<Child>,
}

impl Drop for Stuck {
    fn drop(&mut self) {
        signal(self.bindfs.id(), Signal::CONT);
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for _ in 0..20 {
            let ok = Command::new("fusermount3")
                .arg("-u")
                .arg(&self.mnt)
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.bindfs.kill();
        let _ = self.bindfs.wait();
    }
}

#[test]
fn a_real_hung_task_is_counted_with_its_comm() {
    if !common::require_root()
        || common::require("bindfs").is_none()
        || common::require("fusermount3").is_none()
        || common::require(PYTHON).is_none()
    {
        return;
    }
    let _one = serial();
    let detect_count = Path::new("/proc/sys/kernel/hung_task_detect_count").exists();
    // The detector reports after the timeout (checked as often); and after
    // hung_task_warnings reports it goes quiet, so make sure it still speaks.
    let _timeout = Sysctl::set("/proc/sys/kernel/hung_task_timeout_secs", "2");
    let _warnings = Sysctl::set("/proc/sys/kernel/hung_task_warnings", "10");
    let t = tag("hung");
    let started = common_now();
    let dir = TempDir::new("kernel-hung");
    let (src, mnt) = (dir.path().join("src"), dir.path().join("mnt"));
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&mnt).unwrap();
    let exp = exporter();
    let bindfs = Command::new("bindfs")
        .arg("-f")
        .arg(&src)
        .arg(&mnt)
        .spawn()
        .expect("bindfs");
    let mut stuck = Stuck {
        bindfs,
        mnt: mnt.clone(),
        child: None,
    };
    wait_until(Duration::from_secs(10), "bindfs mounted", || {
        mounted(&mnt).then_some(())
    });
    let file = mnt.join("held");
    // Opened while bindfs runs; closed (FUSE_FLUSH, an uninterruptible wait
    // the detector reports, unlike a killable statvfs) once it is stopped.
    let (child, mut go) = python(
        &t,
        "import signal\nsignal.signal(signal.SIGUSR1, lambda *a: None)\nfd = os.open(sys.argv[2], os.O_RDWR | os.O_CREAT)",
        "os.close(fd)",
        &[file.to_str().unwrap()],
    );
    let pid = child.id();
    stuck.child = Some(child);
    let before = exp.metrics();
    let hung_before = before.get("sentinel_kernel_hung_tasks_total", &[]).unwrap();
    signal(stuck.bindfs.id(), Signal::STOP);
    writeln!(go, "go").unwrap();
    // FUSE waits interruptibly first; a signal moves a flush into the
    // uninterruptible wait. Signals before the close are harmless.
    wait_until(Duration::from_secs(10), "close() to sit in D state", || {
        if state_of(pid) == Some('D') {
            return Some(());
        }
        signal(pid, Signal::USR1);
        None
    });
    let m = exp.wait_for(PATIENCE, "the hung task to be counted", |m| {
        let hung = m.get("sentinel_kernel_hung_tasks_total", &[])?;
        (hung > hung_before
            && problems(m, "task_hung") > problems(&before, "task_hung")
            && last_seen(m, "task_hung", &t).is_some())
        .then(|| m.clone())
    });
    let when = last_seen(&m, "task_hung", &t).unwrap();
    let now = common_now();
    assert!(
        when <= now + 1.0 && when > started,
        "{when} not in {started}..{now}"
    );
    if detect_count {
        // The kernel's own count, not the log's: it is since boot.
        let kernel = std::fs::read_to_string("/proc/sys/kernel/hung_task_detect_count").unwrap();
        assert!(kernel.trim().parse::<f64>().unwrap() >= hung_before + 1.0);
    }
    signal(stuck.bindfs.id(), Signal::CONT);
    let mut child = stuck.child.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "close() did not return after SIGCONT"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn common_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// A cgroup-v1 memory cgroup, removed on drop once its processes are gone.
struct MemCgroup(PathBuf);

impl Drop for MemCgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("could not remove {}", self.0.display());
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_real_oom_kill_is_counted_with_the_killed_comm() {
    let v1 = Path::new("/sys/fs/cgroup/memory");
    if !common::require_root() || common::require(PYTHON).is_none() {
        return;
    }
    if !v1.join("memory.limit_in_bytes").exists() {
        assert!(!common::ci(), "no cgroup-v1 memory controller under CI");
        eprintln!("SKIP: no cgroup-v1 memory controller at {}", v1.display());
        return;
    }
    let _one = serial();
    let t = tag("oom");
    let started = common_now();
    let exp = exporter();
    let cg = MemCgroup(v1.join(format!("sentinel-{t}")));
    std::fs::create_dir(&cg.0).unwrap();
    std::fs::write(cg.0.join("memory.limit_in_bytes"), "67108864").unwrap();
    let (child, mut go) = python(&t, "", "x = b'x' * (1 << 30)\nprint('survived')", &[]);
    let mut child = Killed(child);
    std::fs::write(cg.0.join("cgroup.procs"), child.0.id().to_string()).unwrap();
    let before = exp.metrics();
    let oom_before = before.get("sentinel_kernel_oom_kills_total", &[]).unwrap();
    writeln!(go, "go").unwrap();
    let status = child.0.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(9),
        "the child was not OOM-killed: {status}"
    );
    exp.wait_for(PATIENCE, "the OOM kill to be counted", |m| {
        let oom = m.get("sentinel_kernel_oom_kills_total", &[])?;
        (oom > oom_before
            && problems(m, "oom_kill") > problems(&before, "oom_kill")
            && last_seen(m, "oom_kill", &t).is_some_and(|w| w > started))
        .then_some(())
    });
}

/// A loop device detached on drop.
struct Loop(String);

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

/// A mount unmounted on drop (lazily if still busy).
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

#[test]
fn a_corrupted_ext4_errors_and_is_remounted_read_only() {
    if !common::require_root()
        || common::require("mkfs.ext4").is_none()
        || common::require("debugfs").is_none()
        || common::require("losetup").is_none()
    {
        return;
    }
    let _one = serial();
    let dir = TempDir::new("kernel-ext4");
    let dev = ext4_on_loop(dir.path(), "fs");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mnt_s = mnt.to_str().unwrap();
    {
        let _m = Mounted(mnt.clone());
        run("mount", &["-o", "errors=remount-ro", &dev.0, mnt_s]);
        std::fs::create_dir(mnt.join("d")).unwrap();
        std::fs::write(mnt.join("d/f"), "x").unwrap();
    }
    // The inode cleared while unmounted: its directory entry now points at nothing.
    run("debugfs", &["-w", "-R", "clri d/f", &dev.0]);
    let exp = exporter();
    let before = exp.metrics();
    let _m = Mounted(mnt.clone());
    run("mount", &["-o", "errors=remount-ro", &dev.0, mnt_s]);
    for entry in std::fs::read_dir(mnt.join("d")).unwrap() {
        // The lookup reads the cleared inode: an ext4 error.
        let _ = std::fs::metadata(entry.unwrap().path());
    }
    exp.wait_for(PATIENCE, "the ext4 error and the remount", |m| {
        (problems(m, "fs_error") > problems(&before, "fs_error")
            && problems(m, "fs_remount_readonly") > problems(&before, "fs_remount_readonly"))
        .then_some(())
    });
    // A restarted exporter does not count them again, but knows when they were.
    let event = exp.metrics();
    let when = last_seen(&event, "fs_error", "").unwrap();
    assert!(when > 0.0);
    drop(exp);
    let again = exporter();
    let m = again.wait_for(PATIENCE, "the backlog to be read", |m| {
        last_seen(m, "fs_error", "")
            .filter(|w| *w > 0.0)
            .map(|_| m.clone())
    });
    assert_eq!(problems(&m, "fs_error"), 0.0);
    assert_eq!(problems(&m, "fs_remount_readonly"), 0.0);
    let from_log = last_seen(&m, "fs_error", "").unwrap();
    // The record's own time, through the boot time: within a few seconds.
    assert!((from_log - when).abs() < 5.0, "{from_log} vs {when}");
    let table = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let line = table.lines().find(|l| l.contains(mnt_s)).unwrap();
    // Since 6.x an error remount shows as `emergency_ro`, the mount itself
    // still `rw`; before, as `ro`.
    assert!(
        line.contains(" ro,") || line.contains("emergency_ro"),
        "{line}"
    );
}

#[test]
fn without_cap_syslog_it_says_so_once_and_keeps_the_procfs_counters() {
    if !common::require_root() || common::require("capsh").is_none() {
        return;
    }
    let _one = serial();
    let _restrict = Sysctl::set("/proc/sys/kernel/dmesg_restrict", "1");
    let port = common::free_port();
    let log = std::env::temp_dir().join(format!("sentinel-exporter-{port}.log"));
    // CAP_SYS_ADMIN also opens the log (deprecated, but still honoured).
    let child = Command::new("capsh")
        .arg("--drop=cap_syslog,cap_sys_admin")
        .args(["--", "-c", "exec \"$0\" \"$@\""])
        .arg(common::binary())
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(exporter_args())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("capsh");
    let exp = Exporter { child, port, log };
    wait_until(Duration::from_secs(10), "the exporter to serve", || {
        http_get(port, "/-/healthy").ok()
    });
    let m = exp.wait_for(PATIENCE, "the log to be reported unreadable", |m| {
        (m.get("sentinel_kernel_log_readable", &[]) == Some(0.0)).then(|| m.clone())
    });
    assert!(!m.has("sentinel_kernel_problems_total"), "{}", m.text);
    assert!(m.has("sentinel_kernel_oom_kills_total"), "{}", m.text);
    if Path::new("/proc/sys/kernel/hung_task_detect_count").exists() {
        assert!(m.has("sentinel_kernel_hung_tasks_total"), "{}", m.text);
    }
    // A few more rounds: still said only once, and the collector succeeds.
    let first = exp.wait_for(PATIENCE, "three more rounds", |m| {
        m.get(
            "sentinel_collector_last_success_timestamp_seconds",
            &[("collector", "kernel")],
        )
    });
    exp.wait_for(PATIENCE, "three more rounds", |m| {
        let now = m.get(
            "sentinel_collector_last_success_timestamp_seconds",
            &[("collector", "kernel")],
        )?;
        (now >= first + 3.0).then_some(())
    });
    let m = exp.metrics();
    assert_eq!(
        m.get("sentinel_collector_success", &[("collector", "kernel")]),
        Some(1.0)
    );
    let logs = exp.logs();
    assert_eq!(
        logs.matches("permission denied").count(),
        1,
        "exporter log:\n{logs}"
    );
    assert!(logs.contains("CAP_SYSLOG"), "{logs}");
}

#[test]
fn an_overrun_is_counted_as_missed_and_reading_goes_on() {
    if !common::require_root() {
        return;
    }
    let _one = serial();
    let _unlimited = Sysctl::set("/proc/sys/kernel/printk_devkmsg", "on");
    let exp = exporter();
    let missed = |m: &Metrics| {
        m.get("sentinel_kernel_log_records_missed_total", &[])
            .unwrap_or(f64::NAN)
    };
    let other = |m: &Metrics| {
        m.get(
            "sentinel_kernel_log_records_total",
            &[("facility", "other")],
        )
        .unwrap_or(f64::NAN)
    };
    let before = exp.metrics();
    let mut kmsg = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/kmsg")
        .unwrap();
    // Far more than the kernel's buffer holds, faster than a reader that
    // drains it every half second: the oldest unread records are overwritten.
    // Level 6 (info) keeps them off the console.
    let filler = "x".repeat(200);
    let mut written = 0u64;
    let start = Instant::now();
    while written < 200_000 && (written < 40_000 || start.elapsed() < Duration::from_secs(2)) {
        kmsg.write_all(format!("<14>overrun {written} {filler}\n").as_bytes())
            .unwrap();
        written += 1;
    }
    let m = exp.wait_for(PATIENCE, "the overrun to be counted", |m| {
        (missed(m) > missed(&before)).then(|| m.clone())
    });
    // What was read and what was missed add up to no more than what was
    // written, and what the kernel logged meanwhile.
    let kernel = |m: &Metrics| {
        m.get(
            "sentinel_kernel_log_records_total",
            &[("facility", "kernel")],
        )
        .unwrap_or(f64::NAN)
    };
    let read = other(&m) - other(&before);
    let lost = missed(&m) - missed(&before);
    let theirs = kernel(&m) - kernel(&before);
    assert!(
        read + lost <= written as f64 + theirs + 1.0,
        "{read} + {lost} > {written} + {theirs}"
    );
    // Reading goes on after the overrun.
    let seen = other(&m);
    kmsg.write_all(b"<14>after the overrun\n").unwrap();
    exp.wait_for(PATIENCE, "a record after the overrun", |m| {
        (other(m) > seen).then_some(())
    });
}

/// A fresh 32 MiB ext4 image `dir/name.img` on a loop device.
fn ext4_on_loop(dir: &Path, name: &str) -> Loop {
    let img = dir.join(format!("{name}.img"));
    std::fs::File::create(&img)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    let img_s = img.to_str().unwrap();
    run("mkfs.ext4", &["-q", "-F", img_s]);
    Loop(run("losetup", &["-f", "--show", img_s]).trim().to_string())
}

/// [`ext4_on_loop`], mounted at `dir/name` with `options`.
fn loop_ext4(dir: &Path, name: &str, options: &str) -> (Loop, Mounted, PathBuf) {
    let dev = ext4_on_loop(dir, name);
    let mnt = dir.join(name);
    std::fs::create_dir_all(&mnt).unwrap();
    run("mount", &["-o", options, &dev.0, mnt.to_str().unwrap()]);
    let mounted = Mounted(mnt.clone());
    (dev, mounted, mnt)
}

#[test]
fn superblock_errors_show_without_the_kernel_log_and_a_clean_filesystem_shows_none() {
    if !common::require_root()
        || common::require("mkfs.ext4").is_none()
        || common::require("losetup").is_none()
        || common::require("capsh").is_none()
    {
        return;
    }
    let _one = serial();
    let _restrict = Sysctl::set("/proc/sys/kernel/dmesg_restrict", "1");
    let dir = TempDir::new("kernel-superblock");
    // errors=continue: the filesystem stays writable and the log line is
    // the only other trace, the case the superblock count is for.
    let (bad_dev, _bad_mount, bad) = loop_ext4(dir.path(), "bad", "errors=continue");
    let (_clean_dev, _clean_mount, clean) = loop_ext4(dir.path(), "clean", "defaults");
    // sysfs as a DaemonSet sees it: the host's /sys bind-mounted elsewhere.
    let sys = dir.path().join("host-sys");
    std::fs::create_dir_all(&sys).unwrap();
    run("mount", &["--bind", "/sys", sys.to_str().unwrap()]);
    let _sys = Mounted(sys.clone());

    // Unprivileged: no CAP_SYSLOG, so the kernel log is closed to it.
    let port = common::free_port();
    let log = std::env::temp_dir().join(format!("sentinel-exporter-{port}.log"));
    let child = Command::new("capsh")
        .arg("--drop=cap_syslog,cap_sys_admin")
        .args(["--", "-c", "exec \"$0\" \"$@\""])
        .arg(common::binary())
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg(format!("--path.sysfs={}", sys.display()))
        .args(exporter_args())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("capsh");
    let exp = Exporter { child, port, log };
    wait_until(Duration::from_secs(10), "the exporter to serve", || {
        http_get(port, "/-/healthy").ok()
    });
    let errors = |m: &Metrics, mnt: &Path| {
        m.get(
            "sentinel_kernel_filesystem_errors",
            &[("mountpoint", mnt.to_str().unwrap())],
        )
    };
    let m = exp.wait_for(PATIENCE, "both filesystems to be reported", |m| {
        (errors(m, &bad).is_some() && errors(m, &clean).is_some()).then(|| m.clone())
    });
    assert_eq!(m.get("sentinel_kernel_log_readable", &[]), Some(0.0));
    assert_eq!(errors(&m, &bad), Some(0.0), "{}", m.text);

    let name = Path::new(&bad_dev.0)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let before = common_now();
    std::fs::write(
        format!("/sys/fs/ext4/{name}/trigger_fs_error"),
        "node-sentinel test error",
    )
    .unwrap();
    let m = exp.wait_for(PATIENCE, "the recorded error", |m| {
        errors(m, &bad).filter(|e| *e >= 1.0).map(|_| m.clone())
    });
    let at = |mnt: &Path| {
        m.get(
            "sentinel_kernel_filesystem_last_error_timestamp_seconds",
            &[("mountpoint", mnt.to_str().unwrap()), ("fstype", "ext4")],
        )
        .unwrap()
    };
    assert!((at(&bad) - before).abs() < 10.0, "{} vs {before}", at(&bad));
    assert_eq!(
        m.find(
            "sentinel_kernel_filesystem_errors",
            &[("mountpoint", bad.to_str().unwrap())]
        )[0]
        .labels
        .get("device")
        .map(String::as_str),
        Some(bad_dev.0.as_str())
    );
    // The clean filesystem beside it: nothing recorded.
    assert_eq!(errors(&m, &clean), Some(0.0));
    assert_eq!(at(&clean), 0.0);
}
