//! The /proc pass: one `stat` read per process (state, ppid, comm, start
//! time) through [`crate::host::procfs`], then pure aggregation into zombie
//! groups, D-state counts and process counts by state.
//!
//! Only `PROCFS/PID/stat` is read: never `cmdline` or `environ`, whose reads
//! take the target's mm lock and can hang behind a stuck process (that hung
//! process-exporter, issue 309), and which a zombie no longer has anyway.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::host::procfs::{self, ProcError};

/// What the scan keeps of one process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcInfo {
    pub pid: i32,
    pub ppid: i32,
    /// The single-letter state from `stat` (R, S, D, Z, T, ...).
    pub state: char,
    pub comm: String,
    /// Start time in clock ticks after boot.
    pub starttime: u64,
}

/// What turns `starttime` into an age.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    /// Boot time, unix seconds (`btime` of PROCFS/stat).
    pub boot: u64,
    /// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
    pub ticks: u64,
    /// Unix time of the scan.
    pub now: f64,
}

impl Clock {
    /// Seconds since the process started, never negative.
    pub fn age(&self, starttime: u64) -> f64 {
        (self.now - procfs::start_unix(self.boot, starttime, self.ticks)).max(0.0)
    }
}

/// Zombies sharing a `(comm, parent_comm)` pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZombieGroup {
    pub count: u64,
    pub oldest_age: f64,
}

/// Every process state the kernel reports, under the label value we export.
/// `I` (idle kernel threads) is its own state: those are not stuck.
pub const STATES: [(char, &str); 11] = [
    ('R', "running"),
    ('S', "sleeping"),
    ('D', "uninterruptible"),
    ('Z', "zombie"),
    ('T', "stopped"),
    ('t', "tracing_stop"),
    ('X', "dead"),
    ('I', "idle"),
    ('P', "parked"),
    ('W', "waking"),
    ('K', "wakekill"),
];

/// The label value for a state letter; unknown letters are "other".
pub fn state_name(state: char) -> &'static str {
    STATES
        .iter()
        .find(|(c, _)| *c == state)
        .map(|(_, n)| *n)
        .unwrap_or(match state {
            'x' => "dead",
            _ => "other",
        })
}

/// Parent name used when the parent is not in this procfs: PID 0 (the
/// parent of init, or of a process entered from outside a PID namespace),
/// or a parent that exited between readdir and our read of it.
pub const UNKNOWN_PARENT: &str = "unknown";

/// The aggregated result of one scan.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Processes seen, by state label (every known state present, 0 if none).
    pub by_state: BTreeMap<&'static str, u64>,
    /// Zombies by (comm, parent_comm).
    pub zombies: BTreeMap<(String, String), ZombieGroup>,
    /// Zombies whose parent is PID 1 of the watched procfs.
    pub reaped_by_init_pending: u64,
    /// D-state processes by comm.
    pub uninterruptible: BTreeMap<String, u64>,
    /// How long reading /proc took.
    pub duration: Duration,
}

/// Aggregate one scan. Pure: the table tests below cover it.
pub fn summarize(procs: &[ProcInfo], clock: &Clock) -> Summary {
    let mut s = Summary::default();
    for (_, name) in STATES {
        s.by_state.insert(name, 0);
    }
    s.by_state.insert("other", 0);
    let comm_of: HashMap<i32, &str> = procs.iter().map(|p| (p.pid, p.comm.as_str())).collect();
    for p in procs {
        *s.by_state.entry(state_name(p.state)).or_insert(0) += 1;
        match p.state {
            'Z' => {
                let parent = comm_of
                    .get(&p.ppid)
                    .copied()
                    .filter(|_| p.ppid > 0)
                    .unwrap_or(UNKNOWN_PARENT);
                let age = clock.age(p.starttime);
                let g = s
                    .zombies
                    .entry((p.comm.clone(), parent.to_string()))
                    .or_insert(ZombieGroup {
                        count: 0,
                        oldest_age: 0.0,
                    });
                g.count += 1;
                g.oldest_age = g.oldest_age.max(age);
                if p.ppid == 1 {
                    s.reaped_by_init_pending += 1;
                }
            }
            'D' => *s.uninterruptible.entry(p.comm.clone()).or_insert(0) += 1,
            _ => {}
        }
    }
    s
}

/// Why the scan could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot list processes: {0}")]
    List(ProcError),
    #[error("cannot read the boot time: {0}")]
    BootTime(ProcError),
}

/// Read every process's `stat` under `root` and summarize. Processes that
/// vanish (or become unreadable) between readdir and read are skipped: on a
/// busy node that is normal, not an error.
pub fn scan(root: &Path) -> Result<Summary, ScanError> {
    let started = Instant::now();
    // The watched procfs's own btime; /proc/stat of this process as a fallback
    // (boot time is not namespaced, so both agree on a host).
    let boot = procfs::read_btime(root)
        .or_else(|e| procfs::read_btime(Path::new("/proc")).map_err(|_| e))
        .map_err(ScanError::BootTime)?;
    let mut procs = Vec::new();
    for pid in procfs::pids(root).map_err(ScanError::List)? {
        let Ok(st) = procfs::read_stat(root, pid) else {
            continue;
        };
        procs.push(ProcInfo {
            pid: st.pid,
            ppid: st.ppid,
            state: st.state,
            comm: st.comm,
            starttime: st.starttime,
        });
    }
    let clock = Clock {
        boot,
        ticks: procfs::ticks_per_second(),
        now: crate::collector::unix_now(),
    };
    let mut summary = summarize(&procs, &clock);
    summary.duration = started.elapsed();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: i32, ppid: i32, state: char, comm: &str, starttime: u64) -> ProcInfo {
        ProcInfo {
            pid,
            ppid,
            state,
            comm: comm.into(),
            starttime,
        }
    }

    const CLOCK: Clock = Clock {
        boot: 1000,
        ticks: 100,
        now: 2000.0,
    };

    #[test]
    fn zombies_group_by_comm_and_parent_with_the_oldest_age() {
        let procs = [
            p(1, 0, 'S', "init", 0),
            p(10, 1, 'S', "dockerd", 100),
            p(11, 10, 'Z', "containerd-shim", 50_000), // started at 1500 → 500 s
            p(12, 10, 'Z', "containerd-shim", 80_000), // 1800 → 200 s
            p(13, 1, 'Z', "dockerd", 90_000),          // reparented to init
            p(14, 99, 'Z', "orphan", 0),               // parent already gone
            p(15, 0, 'Z', "outside", 0),
        ];
        let s = summarize(&procs, &CLOCK);
        let shim = s.zombies[&("containerd-shim".into(), "dockerd".into())];
        assert_eq!(shim.count, 2);
        assert!((shim.oldest_age - 500.0).abs() < 1e-9);
        assert_eq!(s.zombies[&("dockerd".into(), "init".into())].count, 1);
        assert_eq!(
            s.zombies[&("orphan".into(), UNKNOWN_PARENT.into())].count,
            1
        );
        assert_eq!(
            s.zombies[&("outside".into(), UNKNOWN_PARENT.into())].count,
            1
        );
        assert_eq!(s.reaped_by_init_pending, 1);
        assert_eq!(s.by_state["zombie"], 5);
        assert_eq!(s.by_state["sleeping"], 2);
    }

    #[test]
    fn d_state_and_every_state_label_present() {
        let procs = [
            p(1, 0, 'S', "init", 0),
            p(2, 1, 'D', "stat", 0),
            p(3, 1, 'D', "stat", 0),
            p(4, 1, 'D', "jbd2/sda1-8", 0),
            p(5, 2, 'I', "kworker/0:1", 0),
            p(6, 1, '?', "weird", 0),
        ];
        let s = summarize(&procs, &CLOCK);
        assert_eq!(s.uninterruptible["stat"], 2);
        assert_eq!(s.uninterruptible["jbd2/sda1-8"], 1);
        assert_eq!(s.by_state["uninterruptible"], 3);
        assert_eq!(s.by_state["idle"], 1);
        assert_eq!(s.by_state["other"], 1);
        assert_eq!(s.by_state["running"], 0);
        assert_eq!(s.by_state.len(), STATES.len() + 1);
        assert_eq!(s.reaped_by_init_pending, 0);
        assert!(s.zombies.is_empty());
    }

    #[test]
    fn ages_never_go_negative() {
        let clock = Clock {
            boot: 1000,
            ticks: 100,
            now: 1000.5,
        };
        assert_eq!(clock.age(1_000), 0.0);
        assert_eq!(CLOCK.age(0), 1000.0);
        let zero_ticks = Clock { ticks: 0, ..CLOCK };
        assert!(zero_ticks.age(10).is_finite());
    }

    #[test]
    fn state_names() {
        assert_eq!(state_name('Z'), "zombie");
        assert_eq!(state_name('x'), "dead");
        assert_eq!(state_name('Q'), "other");
    }

    #[test]
    fn scans_this_machine() {
        let s = scan(Path::new("/proc")).unwrap();
        let total: u64 = s.by_state.values().sum();
        assert!(total > 1, "{s:?}");
    }
}
