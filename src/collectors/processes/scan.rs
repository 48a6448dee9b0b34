//! The /proc pass: one `stat` read per process (state, ppid, comm, start
//! time) through [`crate::host::procfs`], plus `schedstat` of the processes
//! in D state; then pure aggregation into zombie groups, D-state counts and
//! process counts by state, and the [`Tracker`] that follows zombies and
//! D-state processes from scan to scan.
//!
//! Only `PROCFS/PID/stat` and, for D-state processes, `PROCFS/PID/schedstat`
//! are read: never `cmdline` or `environ`, whose reads take the target's mm
//! lock and can hang behind a stuck process (that hung process-exporter,
//! issue 309), and which a zombie no longer has anyway.
//!
//! Continuity: a process is the pair (pid, starttime), so a reused PID is a
//! new process. The kernel keeps neither the time a process became a zombie
//! nor the time it entered D, so both are counted from the first scan that
//! saw it so. A D-state process stays "continuously in D" only while every
//! scan sees it in D *and* its schedstat run count has not moved: a busy I/O
//! process that woke and ran between two scans (and was caught in D again)
//! starts over, as in the kernel's hung-task detector. Where the kernel keeps
//! no run count, state alone decides.

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
    /// Start time in clock ticks after boot: with the PID, the identity.
    pub starttime: u64,
    /// Times it was put on a CPU (`schedstat`), read for D-state processes only.
    pub runs: Option<u64>,
}

/// Zombies sharing a `(comm, parent_comm)` pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZombieGroup {
    pub count: u64,
    /// Seconds the oldest of them has been a zombie, as the [`Tracker`] saw it.
    pub oldest_age: f64,
}

/// A zombie or D-state process, for the [`Tracker`].
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub pid: i32,
    pub starttime: u64,
    /// 'Z' or 'D'.
    pub state: char,
    pub comm: String,
    /// The parent's comm (zombies only; empty for D).
    pub parent_comm: String,
    pub runs: Option<u64>,
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
    /// Per comm, the longest time one process has stayed in D (filled by the [`Tracker`]).
    pub uninterruptible_oldest: BTreeMap<String, f64>,
    /// Every zombie and D-state process of this scan.
    pub marks: Vec<Mark>,
    /// How long reading /proc took.
    pub duration: Duration,
}

/// Aggregate one scan. Pure: the table tests below cover it. Ages are the
/// [`Tracker`]'s work and are 0 here.
pub fn summarize(procs: &[ProcInfo]) -> Summary {
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
                let g = s
                    .zombies
                    .entry((p.comm.clone(), parent.to_string()))
                    .or_insert(ZombieGroup {
                        count: 0,
                        oldest_age: 0.0,
                    });
                g.count += 1;
                if p.ppid == 1 {
                    s.reaped_by_init_pending += 1;
                }
                s.marks.push(Mark {
                    pid: p.pid,
                    starttime: p.starttime,
                    state: 'Z',
                    comm: p.comm.clone(),
                    parent_comm: parent.to_string(),
                    runs: None,
                });
            }
            'D' => {
                *s.uninterruptible.entry(p.comm.clone()).or_insert(0) += 1;
                s.uninterruptible_oldest.entry(p.comm.clone()).or_insert(0.0);
                s.marks.push(Mark {
                    pid: p.pid,
                    starttime: p.starttime,
                    state: 'D',
                    comm: p.comm.clone(),
                    parent_comm: String::new(),
                    runs: p.runs,
                });
            }
            _ => {}
        }
    }
    s
}

/// Since when one process has been in its current zombie or D state.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Since {
    state: char,
    at: Instant,
    runs: Option<u64>,
}

/// Follows zombies and D-state processes across scans, keyed by (pid,
/// starttime). Holds only what the latest scan saw in Z or D: everything else
/// is dropped at every scan, so it is never larger than the process table.
#[derive(Debug, Default)]
pub struct Tracker {
    seen: HashMap<(i32, u64), Since>,
}

impl Tracker {
    /// Fill the ages of `summary` as of `now`, the time of its scan, and
    /// forget every process it did not see in Z or D.
    pub fn observe(&mut self, summary: &mut Summary, now: Instant) {
        let mut next = HashMap::with_capacity(summary.marks.len());
        for m in &summary.marks {
            let key = (m.pid, m.starttime);
            let at = match self.seen.get(&key) {
                Some(prev) if prev.state == m.state && !ran_since(prev.runs, m.runs) => prev.at,
                _ => now,
            };
            next.insert(
                key,
                Since {
                    state: m.state,
                    at,
                    runs: m.runs,
                },
            );
            let secs = now.saturating_duration_since(at).as_secs_f64();
            if m.state == 'Z' {
                let group = (m.comm.clone(), m.parent_comm.clone());
                if let Some(g) = summary.zombies.get_mut(&group) {
                    g.oldest_age = g.oldest_age.max(secs);
                }
            } else if let Some(oldest) = summary.uninterruptible_oldest.get_mut(&m.comm) {
                *oldest = oldest.max(secs);
            }
        }
        self.seen = next;
    }

    /// Processes followed now.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// Whether the run count moved: the process got a CPU between two scans, so
/// it left D in between. Unknown on either side is "did not run".
fn ran_since(before: Option<u64>, now: Option<u64>) -> bool {
    matches!((before, now), (Some(a), Some(b)) if a != b)
}

/// Why the scan could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cannot list processes: {0}")]
    List(ProcError),
}

/// Read every process's `stat` under `root` and summarize. Processes that
/// vanish (or become unreadable) between readdir and read are skipped: on a
/// busy node that is normal, not an error.
pub fn scan(root: &Path) -> Result<Summary, ScanError> {
    let started = Instant::now();
    let mut procs = Vec::new();
    for pid in procfs::pids(root).map_err(ScanError::List)? {
        let Ok(st) = procfs::read_stat(root, pid) else {
            continue;
        };
        // Only D needs it; a process gone meanwhile has left D anyway.
        let runs = match st.state {
            'D' => procfs::read_schedstat_runs(root, pid).ok().flatten(),
            _ => None,
        };
        procs.push(ProcInfo {
            pid: st.pid,
            ppid: st.ppid,
            state: st.state,
            comm: st.comm,
            starttime: st.starttime,
            runs,
        });
    }
    let mut summary = summarize(&procs);
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
            runs: None,
        }
    }

    /// A D-state process with a run count.
    fn d(pid: i32, comm: &str, starttime: u64, runs: Option<u64>) -> ProcInfo {
        ProcInfo {
            runs,
            ..p(pid, 1, 'D', comm, starttime)
        }
    }

    #[test]
    fn zombies_group_by_comm_and_parent() {
        let procs = [
            p(1, 0, 'S', "init", 0),
            p(10, 1, 'S', "dockerd", 100),
            p(11, 10, 'Z', "containerd-shim", 50_000),
            p(12, 10, 'Z', "containerd-shim", 80_000),
            p(13, 1, 'Z', "dockerd", 90_000), // reparented to init
            p(14, 99, 'Z', "orphan", 0),      // parent already gone
            p(15, 0, 'Z', "outside", 0),
        ];
        let s = summarize(&procs);
        let shim = s.zombies[&("containerd-shim".into(), "dockerd".into())];
        assert_eq!(shim.count, 2);
        assert_eq!(shim.oldest_age, 0.0, "ages are the tracker's");
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
        assert_eq!(s.marks.len(), 5);
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
        let s = summarize(&procs);
        assert_eq!(s.uninterruptible["stat"], 2);
        assert_eq!(s.uninterruptible["jbd2/sda1-8"], 1);
        assert_eq!(s.uninterruptible_oldest["stat"], 0.0);
        assert_eq!(s.by_state["uninterruptible"], 3);
        assert_eq!(s.by_state["idle"], 1);
        assert_eq!(s.by_state["other"], 1);
        assert_eq!(s.by_state["running"], 0);
        assert_eq!(s.by_state.len(), STATES.len() + 1);
        assert_eq!(s.reaped_by_init_pending, 0);
        assert!(s.zombies.is_empty());
    }

    /// Run `scans` (each a list of processes, 15 s apart) through one
    /// tracker; the D-state oldest seconds of `comm` after each.
    fn d_oldest(scans: &[Vec<ProcInfo>], comm: &str) -> Vec<Option<f64>> {
        let t0 = Instant::now();
        let mut tracker = Tracker::default();
        scans
            .iter()
            .enumerate()
            .map(|(i, procs)| {
                let mut s = summarize(procs);
                tracker.observe(&mut s, t0 + Duration::from_secs(15 * i as u64));
                assert_eq!(tracker.len(), s.marks.len(), "pruned every scan");
                s.uninterruptible_oldest.get(comm).copied()
            })
            .collect()
    }

    #[test]
    fn d_state_continuity_table() {
        let stuck = |runs| d(7, "stat", 500, runs);
        let awake = p(7, 1, 'S', "stat", 500);
        /// (what, the scans, the oldest D time after each)
        type Case = (&'static str, Vec<Vec<ProcInfo>>, Vec<Option<f64>>);
        let cases: Vec<Case> = vec![
            (
                "stuck: one process in D at every scan, run count still",
                vec![vec![stuck(Some(9))]; 4],
                vec![Some(0.0), Some(15.0), Some(30.0), Some(45.0)],
            ),
            (
                "stuck where the kernel keeps no run count: state alone",
                vec![vec![stuck(None)]; 3],
                vec![Some(0.0), Some(15.0), Some(30.0)],
            ),
            (
                "busy I/O: caught in D at every scan but it ran in between",
                (0..5).map(|i| vec![stuck(Some(100 + i))]).collect(),
                vec![Some(0.0); 5],
            ),
            (
                "left D for one scan: starts over",
                vec![
                    vec![stuck(Some(1))],
                    vec![stuck(Some(1))],
                    vec![awake.clone()],
                    vec![stuck(Some(1))],
                ],
                vec![Some(0.0), Some(15.0), None, Some(0.0)],
            ),
            (
                "PID reused by a new process (other start time): a new process",
                vec![vec![stuck(Some(1))], vec![d(7, "stat", 900, Some(1))]],
                vec![Some(0.0), Some(0.0)],
            ),
            (
                "a D process that became a zombie is no longer in D",
                vec![vec![stuck(Some(1))], vec![p(7, 1, 'Z', "stat", 500)]],
                vec![Some(0.0), None],
            ),
            (
                "the longest of one comm, beside flickering ones",
                vec![
                    vec![stuck(Some(1)), d(8, "stat", 600, Some(1))],
                    vec![stuck(Some(1)), d(8, "stat", 600, Some(2))],
                    vec![stuck(Some(1)), d(8, "stat", 600, Some(3))],
                ],
                vec![Some(0.0), Some(15.0), Some(30.0)],
            ),
            (
                "run count unknown in one of two scans: state decides",
                vec![vec![stuck(Some(4))], vec![stuck(None)], vec![stuck(Some(4))]],
                vec![Some(0.0), Some(15.0), Some(30.0)],
            ),
        ];
        for (name, scans, want) in cases {
            assert_eq!(d_oldest(&scans, "stat"), want, "{name}");
        }
    }

    #[test]
    fn many_flickering_processes_never_reach_two_minutes() {
        // 200 busy writers of one comm: the even ones caught in D at every
        // scan (but they ran in between), the odd ones in D every other scan.
        // Counted per comm, D at every scan for 10 minutes; none is stuck.
        let t0 = Instant::now();
        let mut tracker = Tracker::default();
        let mut worst: f64 = 0.0;
        for scan in 0..40u64 {
            let procs: Vec<ProcInfo> = (0..200u64)
                .map(|i| {
                    let pid = 100 + i as i32;
                    if i % 2 == 0 || (i / 2 + scan) % 2 == 0 {
                        d(pid, "postgres", 7, Some(scan * 3 + i))
                    } else {
                        p(pid, 1, 'R', "postgres", 7)
                    }
                })
                .collect();
            let mut s = summarize(&procs);
            assert_eq!(s.uninterruptible["postgres"], 150);
            tracker.observe(&mut s, t0 + Duration::from_secs(15 * scan));
            worst = worst.max(s.uninterruptible_oldest["postgres"]);
            assert!(tracker.len() <= 200);
        }
        assert_eq!(worst, 0.0);
    }

    #[test]
    fn zombie_age_counts_from_the_first_scan_that_saw_it_defunct() {
        let t0 = Instant::now();
        let mut tracker = Tracker::default();
        let key = ("worker".to_string(), "dockerd".to_string());
        let parent = p(10, 1, 'S', "dockerd", 0);
        // Ran for a long time (started at boot), then died.
        let scans = [
            vec![parent.clone(), p(11, 10, 'S', "worker", 5)],
            vec![parent.clone(), p(11, 10, 'Z', "worker", 5)],
            vec![parent.clone(), p(11, 10, 'Z', "worker", 5), p(12, 10, 'Z', "worker", 9)],
            vec![parent.clone(), p(12, 10, 'Z', "worker", 9)],
        ];
        let ages: Vec<Option<f64>> = scans
            .iter()
            .enumerate()
            .map(|(i, procs)| {
                let mut s = summarize(procs);
                tracker.observe(&mut s, t0 + Duration::from_secs(60 * i as u64));
                s.zombies.get(&key).map(|g| g.oldest_age)
            })
            .collect();
        // 11 defunct at 60 s: 0, then 60; 11 reaped, 12 (defunct since 120 s) is 60 s old.
        assert_eq!(ages, vec![None, Some(0.0), Some(60.0), Some(60.0)]);
        assert_eq!(tracker.len(), 1);
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
