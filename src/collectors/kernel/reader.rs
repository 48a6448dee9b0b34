//! The kernel collector's one thread: drains `/dev/kmsg` and samples the
//! two procfs counters, and keeps what it saw in [`Shared`] for `collect()`
//! to copy. A plain std thread, never `spawn_blocking` (PITFALLS.md): it
//! lives as long as the exporter and never holds up the runtime's shutdown.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags, SeekFrom};
use rustix::io::Errno;

use tokio::sync::oneshot;

use super::record::{self, Assembler, Problem, Reason};
use crate::collector::unix_now;

/// (reason, comm) pairs remembered for the last-seen gauge; the oldest goes
/// first. Exported are the newest `--collector.kernel.series-limit` of them.
pub const REMEMBERED: usize = 256;

/// How long the thread sleeps once the log is drained: a problem shows on
/// the next round at the latest, and an idle node costs two wake-ups a second.
const NAP: Duration = Duration::from_millis(500);

/// The kernel requires a read buffer as large as the record (8 KiB at most
/// with its dictionary, CONSOLE_EXT_LOG_MAX); a smaller one gets EINVAL.
const RECORD_MAX: usize = 16 * 1024;

/// Whether the kernel log is being read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LogState {
    /// The thread has not opened it yet.
    #[default]
    Starting,
    Reading,
    /// Cannot be opened (the reason, for the landing page and the log line).
    Unreadable(String),
}

/// What the thread has seen since it started.
#[derive(Debug, Clone, Default)]
pub struct Shared {
    pub log: LogState,
    /// Kernel records per reason, in [`Reason::ALL`] order.
    pub problems: [u64; Reason::ALL.len()],
    /// Last time each (reason, comm) was seen, Unix seconds.
    pub last_seen: HashMap<(Reason, String), f64>,
    /// Records the kernel overwrote before they were read (gaps in SEQ).
    pub missed: u64,
    /// Records that did not parse (a format this reader does not know).
    pub malformed: u64,
    /// Whole records read: of the kernel facility, and of any other
    /// (written by processes).
    pub kernel_records: u64,
    pub other_records: u64,
    /// `PROCFS/sys/kernel/hung_task_detect_count`, where the kernel has it.
    pub hung_task_detect_count: Option<u64>,
    /// `PROCFS/vmstat` oom_kill.
    pub oom_kills: Option<u64>,
}

impl Shared {
    /// Count one kernel problem seen at `when`.
    pub fn count(&mut self, problem: Problem, when: f64) {
        if let Some(i) = Reason::ALL.iter().position(|r| *r == problem.reason) {
            self.problems[i] += 1;
        }
        self.saw(problem, when);
    }

    /// Remember when a problem was logged, without counting it (a record
    /// that was in the buffer before the exporter started).
    pub fn saw(&mut self, problem: Problem, when: f64) {
        let key = (problem.reason, problem.comm);
        if self.last_seen.get(&key).is_some_and(|t| *t >= when) {
            return;
        }
        if !self.last_seen.contains_key(&key)
            && self.last_seen.len() >= REMEMBERED
            && let Some(oldest) = self
                .last_seen
                .iter()
                .min_by(|a, b| a.1.total_cmp(b.1))
                .map(|(k, _)| k.clone())
        {
            self.last_seen.remove(&oldest);
        }
        self.last_seen.insert(key, when);
    }

    /// How many of one reason were counted.
    pub fn problems_of(&self, reason: Reason) -> u64 {
        Reason::ALL
            .iter()
            .position(|r| *r == reason)
            .map(|i| self.problems[i])
            .unwrap_or(0)
    }
}

/// Where the thread reads from and how often it samples procfs.
#[derive(Debug, Clone)]
pub struct Sources {
    pub kmsg: Result<PathBuf, String>,
    pub procfs: PathBuf,
    pub interval: Duration,
}

/// Start the thread. The receiver hears once the backlog and the procfs
/// counters have been read the first time.
pub fn spawn(
    sources: Sources,
    shared: Arc<Mutex<Shared>>,
) -> std::io::Result<(std::thread::JoinHandle<()>, oneshot::Receiver<()>)> {
    let (tx, rx) = oneshot::channel();
    let handle = std::thread::Builder::new()
        .name("kernel-log".into())
        .spawn(move || run(sources, &shared, tx))?;
    Ok((handle, rx))
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    // A panic elsewhere while holding it leaves plain counters: still usable.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

fn run(sources: Sources, shared: &Mutex<Shared>, ready: oneshot::Sender<()>) {
    let mut ready = Some(ready);
    let boot = boot_time(&sources.procfs);
    let mut log = match sources.kmsg.clone().and_then(|p| Kmsg::open(&p, boot)) {
        Ok(k) => {
            lock(shared).log = LogState::Reading;
            Some(k)
        }
        Err(why) => {
            // Said once: the thread does not try again (a restart after
            // granting access does), and the procfs counters go on.
            tracing::warn!(
                source = "kernel",
                "{why}; kernel problem counters are withdrawn, the hung-task and OOM-kill counters from procfs go on"
            );
            lock(shared).log = LogState::Unreadable(why);
            None
        }
    };
    let mut next_sample = Instant::now();
    loop {
        if let Some(k) = &mut log
            && let Err(why) = k.drain(shared)
        {
            tracing::warn!(source = "kernel", "{why}; kernel problem counters are withdrawn");
            lock(shared).log = LogState::Unreadable(why);
            log = None;
        }
        if Instant::now() >= next_sample {
            sample_procfs(&sources.procfs, shared);
            next_sample = Instant::now() + sources.interval;
        }
        if let Some(tx) = ready.take() {
            // The collector may have stopped waiting: nothing to do then.
            let _ = tx.send(());
        }
        std::thread::sleep(NAP);
    }
}

/// The open kernel log.
struct Kmsg {
    fd: rustix::fd::OwnedFd,
    path: PathBuf,
    /// While the records that were in the buffer at open time are read: the
    /// boot time (Unix seconds) their timestamps count from.
    backlog: Option<f64>,
    last_seq: Option<u64>,
    assembler: Assembler,
    buf: Vec<u8>,
}

impl Kmsg {
    /// Open at the oldest record when the boot time is known (that backlog
    /// only sets last-seen times), else after the newest.
    fn open(path: &Path, boot: Option<f64>) -> Result<Kmsg, String> {
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::empty()).map_err(|e| {
            let e = std::io::Error::from(e);
            if e.kind() == ErrorKind::PermissionDenied {
                format!(
                    "cannot read the kernel log {}: permission denied (kernel.dmesg_restrict=1 needs CAP_SYSLOG; in a container the device must also be allowed)",
                    path.display()
                )
            } else {
                format!("cannot read the kernel log {}: {e}", path.display())
            }
        })?;
        if boot.is_none() {
            // Without a boot time the backlog's times are unknown: skip it.
            rustix::fs::seek(&fd, SeekFrom::End(0)).map_err(|e| {
                format!(
                    "cannot seek to the end of the kernel log {}: {}",
                    path.display(),
                    std::io::Error::from(e)
                )
            })?;
        }
        Ok(Kmsg {
            fd,
            path: path.to_path_buf(),
            backlog: boot,
            last_seq: None,
            assembler: Assembler::default(),
            buf: vec![0; RECORD_MAX],
        })
    }

    /// Read every record the kernel has for us now; one `read` is one record.
    fn drain(&mut self, shared: &Mutex<Shared>) -> Result<(), String> {
        loop {
            match rustix::io::read(&self.fd, &mut self.buf) {
                Ok(0) => break,
                Ok(n) => {
                    let raw = self.buf[..n].to_vec();
                    self.take(&raw, shared);
                }
                Err(Errno::AGAIN) => break,
                Err(Errno::INTR) => continue,
                // Overrun: records we had not read yet were overwritten. The
                // next read resumes at the oldest one left; the SEQ gap counts
                // what was lost.
                Err(Errno::PIPE) => continue,
                Err(e) => {
                    return Err(format!(
                        "reading the kernel log {} failed: {}",
                        self.path.display(),
                        std::io::Error::from(e)
                    ));
                }
            }
        }
        if let Some(rec) = self.assembler.flush() {
            self.count(rec, shared);
        }
        // Everything after the first drain is new: counted.
        self.backlog = None;
        Ok(())
    }

    fn take(&mut self, raw: &[u8], shared: &Mutex<Shared>) {
        let rec = match record::parse(raw) {
            Ok(r) => r,
            Err(_) => {
                lock(shared).malformed += 1;
                return;
            }
        };
        if let Some(last) = self.last_seq
            && rec.seq > last + 1
        {
            lock(shared).missed += rec.seq - last - 1;
        }
        self.last_seq = Some(rec.seq);
        for whole in self.assembler.push(rec) {
            self.count(whole, shared);
        }
    }

    fn count(&self, rec: record::Record, shared: &Mutex<Shared>) {
        let mut s = lock(shared);
        if let Some(boot) = self.backlog {
            // Logged before we started: a previous exporter may have counted
            // it, so it only says when, and never counts again.
            if rec.is_kernel()
                && let Some(problem) = record::classify(&rec.message)
            {
                s.saw(problem, boot + rec.usec as f64 / 1e6);
            }
            return;
        }
        // Userspace writes to /dev/kmsg never carry facility 0: not ours to count.
        if !rec.is_kernel() {
            s.other_records += 1;
            return;
        }
        s.kernel_records += 1;
        if let Some(problem) = record::classify(&rec.message) {
            s.count(problem, unix_now());
        }
    }
}

fn sample_procfs(procfs: &Path, shared: &Mutex<Shared>) {
    let detect = std::fs::read_to_string(procfs.join("sys/kernel/hung_task_detect_count"))
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let oom = std::fs::read_to_string(procfs.join("vmstat"))
        .ok()
        .and_then(|s| vmstat_value(&s, "oom_kill"));
    let mut s = lock(shared);
    s.hung_task_detect_count = detect;
    s.oom_kills = oom;
}

/// When the kernel's log clock started, in Unix seconds: now minus
/// `PROCFS/uptime`. Uptime counts time suspended and the log clock does not,
/// so on a node that was suspended backlog times come out early.
fn boot_time(procfs: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(procfs.join("uptime")).ok()?;
    let up: f64 = text.split_whitespace().next()?.parse().ok()?;
    (up.is_finite() && up >= 0.0).then(|| unix_now() - up)
}

/// One counter of `/proc/vmstat` (`name value` lines).
pub fn vmstat_value(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == name).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmstat_counters() {
        let text = "nr_free_pages 123\noom_kill 7\noom_kill_x 9\n";
        assert_eq!(vmstat_value(text, "oom_kill"), Some(7));
        assert_eq!(vmstat_value(text, "nr_free_pages"), Some(123));
        assert_eq!(vmstat_value(text, "pgfault"), None);
        assert_eq!(vmstat_value("oom_kill x\n", "oom_kill"), None);
    }

    #[test]
    fn the_last_seen_map_is_bounded_and_keeps_the_newest() {
        let mut s = Shared::default();
        for i in 0..REMEMBERED + 10 {
            let p = Problem {
                reason: Reason::OomKill,
                comm: format!("c{i}"),
            };
            s.count(p, i as f64);
        }
        assert_eq!(s.last_seen.len(), REMEMBERED);
        assert!(!s.last_seen.contains_key(&(Reason::OomKill, "c0".into())));
        assert!(
            s.last_seen
                .contains_key(&(Reason::OomKill, format!("c{}", REMEMBERED + 9)))
        );
        assert_eq!(s.problems_of(Reason::OomKill), (REMEMBERED + 10) as u64);
        assert_eq!(s.problems_of(Reason::TaskHung), 0);
    }

    #[test]
    fn records_written_by_a_process_do_not_count_but_the_kernels_do() {
        let shared = Mutex::new(Shared::default());
        let mut k = Kmsg {
            fd: rustix::fs::open("/dev/null", OFlags::RDONLY, Mode::empty()).unwrap(),
            path: "/dev/null".into(),
            backlog: None,
            last_seq: None,
            assembler: Assembler::default(),
            buf: vec![0; 16],
        };
        let hung = "INFO: task dockerd:1 blocked for more than 120 seconds.";
        k.take(format!("11,10,1,-;{hung}").as_bytes(), &shared);
        k.take(format!("3,11,1,-;{hung}").as_bytes(), &shared);
        k.take(b"garbage", &shared);
        // Records 12..=14 were overwritten before we read them.
        k.take(b"6,15,1,-;hello", &shared);
        k.drain(&shared).unwrap();
        let s = lock(&shared).clone();
        assert_eq!(s.problems_of(Reason::TaskHung), 1);
        assert!(s.last_seen.contains_key(&(Reason::TaskHung, "dockerd".into())));
        assert_eq!((s.missed, s.malformed), (3, 1));
        assert_eq!((s.kernel_records, s.other_records), (2, 1));

        // The backlog read at open time sets when, never how many.
        let shared = Mutex::new(Shared::default());
        k.backlog = Some(1000.0);
        let oom = "Out of memory: Killed process 9 (java) total-vm:1kB";
        k.take(format!("3,20,2500000,-;{oom}").as_bytes(), &shared);
        k.take(format!("11,21,2600000,-;{hung}").as_bytes(), &shared);
        k.drain(&shared).unwrap();
        assert_eq!(k.backlog, None);
        k.take(format!("3,22,3000000,-;{oom}").as_bytes(), &shared);
        let s = lock(&shared).clone();
        assert_eq!(s.problems_of(Reason::OomKill), 1);
        assert_eq!(s.problems_of(Reason::TaskHung), 0);
        assert_eq!((s.kernel_records, s.other_records), (1, 0));
        let when = s.last_seen[&(Reason::OomKill, "java".into())];
        assert!(when > 1002.5, "{when}: the live record's time wins");
        // An older backlog time never replaces a newer one.
        let mut s = s;
        let p = Problem {
            reason: Reason::OomKill,
            comm: "java".into(),
        };
        s.saw(p, 5.0);
        assert_eq!(s.last_seen[&(Reason::OomKill, "java".into())], when);
    }
}
