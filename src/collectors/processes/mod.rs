//! Processes collector: zombies by command and parent, an init that does not
//! reap, processes stuck in D state, and space held by deleted-but-open files.
//!
//! Reads, under `--path.procfs`:
//! - `PROCFS/PID/stat` of every process, once per interval: state, ppid,
//!   comm, start time, nothing else; `PROCFS/PID/schedstat` of those in D
//!   state. Never `cmdline` or `environ` (they can hang behind a stuck process).
//! - `PROCFS/PID/fd/*` links, a `statx` of the deleted ones and
//!   `PROCFS/PID/comm` of their holders, at most once per
//!   `--collector.processes.deleted-files-interval`, within a time budget per
//!   round (see [`deleted`]); the mount table through [`crate::host::mounts`].
//!
//! Exports (METRICS.md, "processes"): `sentinel_zombie_processes{comm,parent_comm}`,
//! `sentinel_zombie_oldest_age_seconds{comm,parent_comm}`,
//! `sentinel_zombie_processes_reaped_by_init_pending`,
//! `sentinel_processes_uninterruptible{comm}`,
//! `sentinel_processes_uninterruptible_oldest_seconds{comm}`,
//! `sentinel_deleted_open_files_bytes{mountpoint,comm}`; and, with bounded
//! labels, `sentinel_processes{state}`, `sentinel_processes_scan_duration_seconds`,
//! `sentinel_deleted_open_files_scan_duration_seconds`,
//! `sentinel_deleted_open_files_scan_truncated`,
//! `sentinel_deleted_open_files_scan_timestamp_seconds`,
//! `sentinel_deleted_open_files_processes_skipped`.
//!
//! Privileges: the stat pass needs none. The fd walk needs root or
//! CAP_SYS_PTRACE to see other users' fds; without it those processes are
//! counted in `..._processes_skipped` and their files are missed.
//!
//! Rules and their limits:
//! - A zombie's age is the time since the exporter first saw it defunct, keyed
//!   by (pid, starttime): the kernel keeps no exit time, and the process's own
//!   age would make a daemon that ran for a month and died a minute ago look a
//!   month dead. A zombie already there when the exporter starts is aged from
//!   that start.
//! - A D-state process's time is how long it has stayed in D without leaving
//!   it: seen in D at every scan, and its schedstat run count unchanged (it got
//!   no CPU in between), as the kernel's hung-task detector judges it. Busy I/O
//!   processes are caught in D at most samples but run in between, so they
//!   start over each scan; a process stuck on a hung mount keeps counting. The
//!   per-comm count `sentinel_processes_uninterruptible` says how many are in D
//!   now, the oldest seconds whether one is stuck (see [`scan`]). Both are
//!   counted from the exporter's first sight, and restart with it.
//! - "Reaped by init pending" counts zombies whose parent is PID 1 *of the
//!   watched procfs*. Point `--path.procfs` at a container's procfs to watch its
//!   init; zombies under a container's init seen from the host procfs appear
//!   under their `parent_comm` instead.
//! - Only thread-group leaders are read (what /proc lists): a process whose
//!   main thread sleeps while another thread is in D state is not counted.
//! - Labelled families keep the top `--collector.processes.series-limit`
//!   series (by count, age or bytes); the rest are counted in
//!   `sentinel_series_dropped{collector="processes"}`.
//! - The blocking work runs offloaded ([`crate::host::offload`]) under two
//!   keys (stat pass, fd walk), each single-flight under a timeout, so a read
//!   stuck in the kernel stalls neither the async runtime nor the other, and
//!   leaves at most one stuck thread each.

pub mod deleted;
pub mod scan;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::collector::{CollectError, Collection, Collector, ErrorKind, FailureLog};
use crate::host::Paths;
use crate::host::offload::{self, Offload};
use crate::metrics::{Family, Labels, flag};
use crate::values::{parse_duration, parse_positive_duration};

use deleted::{Outcome, Walker};
use scan::{Summary, Tracker};

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Collector: processes")]
#[group(skip)]
pub struct Args {
    /// How often the processes collector scans /proc.
    #[arg(id = "collector.processes.interval", long = "collector.processes.interval", value_name = "DURATION", default_value = "15s", value_parser = parse_positive_duration)]
    pub interval: Duration,
    /// Most series per labelled family (zombies, D state, deleted files); the top ones are kept.
    #[arg(id = "collector.processes.series-limit", long = "collector.processes.series-limit", value_name = "N", default_value = "50", value_parser = clap::value_parser!(u32).range(1..))]
    pub series_limit: u32,
    /// How often a sweep of every process's open fds for deleted files starts.
    #[arg(id = "collector.processes.deleted-files-interval", long = "collector.processes.deleted-files-interval", value_name = "DURATION", default_value = "1m", value_parser = parse_duration)]
    pub deleted_files_interval: Duration,
    /// Time one round may spend on that sweep; an unfinished sweep goes on next round. 0s disables it.
    #[arg(id = "collector.processes.deleted-files-budget", long = "collector.processes.deleted-files-budget", value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub deleted_files_budget: Duration,
}

/// The offload keys: one stuck thread at most for each.
const SCAN: &str = "proc-scan";
const WALK: &str = "proc-fd-walk";

/// Samples /proc on its own worker threads; see the module docs.
pub struct ProcessesCollector {
    paths: Paths,
    series_limit: usize,
    deleted_interval: Duration,
    deleted_budget: Duration,
    /// Longest wait for a worker's answer, under the scheduler's round budget.
    timeout: Duration,
    offload: Offload<&'static str>,
    /// The walk's state between rounds (a sweep in progress); only the call
    /// under the WALK key touches it, one at a time.
    walker: Option<Arc<Mutex<Walker>>>,
    /// The latest walk answer, kept while the walker is busy or stuck.
    last_walk: Option<Outcome>,
    walk_failures: FailureLog,
    /// Zombies and D-state processes from scan to scan.
    tracker: Tracker,
}

impl ProcessesCollector {
    pub fn new(args: &Args, paths: &Paths) -> Self {
        // The scheduler cancels a round after max(interval, 10s): answer before that.
        let timeout = args.interval.max(Duration::from_secs(10)).mul_f64(0.8);
        ProcessesCollector {
            paths: paths.clone(),
            series_limit: args.series_limit as usize,
            deleted_interval: args.deleted_files_interval,
            // A walk must leave room in the round for its answer to arrive.
            deleted_budget: args.deleted_files_budget.min(timeout / 2),
            timeout,
            offload: Offload::new("processes"),
            walker: None,
            last_walk: None,
            walk_failures: FailureLog::default(),
            tracker: Tracker::default(),
        }
    }

    /// Set up the walk's state on first use (and afresh after a panic).
    fn ensure_walker(&mut self) {
        if self.walker.is_none() && !self.deleted_budget.is_zero() {
            self.walker = Some(Arc::new(Mutex::new(Walker::new(
                self.paths.clone(),
                self.deleted_interval,
                self.deleted_budget,
            ))));
        }
    }
}

impl Collector for ProcessesCollector {
    fn name(&self) -> &'static str {
        "processes"
    }

    async fn collect(&mut self) -> Result<Collection, CollectError> {
        self.ensure_walker();
        let timeout = self.timeout;
        let procfs = self.paths.procfs.clone();
        let scan_call = self.offload.run(SCAN, timeout, move || scan::scan(&procfs));
        let walk_call = async {
            match &self.walker {
                Some(w) => {
                    let w = w.clone();
                    // A poisoned lock means the last walk panicked: start over.
                    let walk = move || w.lock().map(|mut w| w.round()).ok();
                    Some(self.offload.run(WALK, timeout, walk).await)
                }
                None => None,
            }
        };
        let (scanned, walked) = tokio::join!(scan_call, walk_call);

        let walk = match walked {
            None => None,
            Some(offload::Outcome::Done(Some(outcome))) => {
                if outcome.failed {
                    self.walk_failures.failed(
                        "processes",
                        "fd_walk_procfs",
                        &"cannot list processes for the deleted-files walk",
                    );
                } else if outcome.walked {
                    // Only a walk that ran can tell that the failure is over.
                    self.walk_failures.ok("processes");
                }
                self.last_walk = Some(outcome.clone());
                Some(outcome)
            }
            Some(other) => {
                let why = match other {
                    offload::Outcome::TimedOut => "no answer within the timeout".to_string(),
                    offload::Outcome::Busy => "the previous walk is still running".to_string(),
                    offload::Outcome::Failed(ref e) => e.to_string(),
                    offload::Outcome::Done(_) => "the previous walk panicked".to_string(),
                };
                if matches!(
                    other,
                    offload::Outcome::Failed(offload::OffloadError::Panicked)
                        | offload::Outcome::Done(None)
                ) {
                    // A panicked walk: start a fresh one (and sweep) next round.
                    self.walker = None;
                }
                self.walk_failures.failed(
                    "processes",
                    "fd_walk_stuck",
                    &format!("deleted-files walk: {why}"),
                );
                // Keep the last complete sweep; flag that the walk is not keeping up.
                let mut kept = self.last_walk.clone().unwrap_or_default();
                kept.truncated = true;
                kept.duration = Duration::ZERO;
                Some(kept)
            }
        };

        let mut summary = match scanned {
            offload::Outcome::Done(Ok(s)) => s,
            offload::Outcome::Done(Err(e)) => {
                return Err(CollectError::new(ErrorKind::Read, e.to_string()));
            }
            offload::Outcome::Failed(e) => {
                return Err(CollectError::new(ErrorKind::Thread, format!("/proc scan: {e}")));
            }
            offload::Outcome::TimedOut => {
                return Err(CollectError::new(
                    ErrorKind::Stuck,
                    "/proc scan: no answer within the timeout",
                ));
            }
            offload::Outcome::Busy => {
                return Err(CollectError::new(
                    ErrorKind::Stuck,
                    "/proc scan: the previous scan is still running",
                ));
            }
        };
        // The scan has just returned: its time is now, to within its duration.
        self.tracker.observe(&mut summary, std::time::Instant::now());
        Ok(build(&summary, walk.as_ref(), self.series_limit))
    }
}

/// Keep the first `limit` of `items` (already in priority order); returns how many were cut.
fn cap<T>(items: &mut Vec<T>, limit: usize) -> u64 {
    let cut = items.len().saturating_sub(limit);
    items.truncate(limit);
    cut as u64
}

/// Build every family from one scan and the walker's latest answer. Pure.
pub fn build(summary: &Summary, walk: Option<&Outcome>, limit: usize) -> Collection {
    let mut dropped = 0u64;

    let mut zombies = Family::gauge(
        "sentinel_zombie_processes",
        "Defunct (zombie) processes now, by their own and their parent's command name.",
    );
    let mut zombie_age = Family::gauge(
        "sentinel_zombie_oldest_age_seconds",
        "How long the oldest such zombie has been one: since the exporter first saw it defunct (the kernel keeps no exit time).",
    );
    let mut groups: Vec<_> = summary.zombies.iter().collect();
    // Most zombies first, then the oldest: those are the ones to see.
    groups.sort_by(|a, b| {
        b.1.count
            .cmp(&a.1.count)
            .then(b.1.oldest_age.total_cmp(&a.1.oldest_age))
            .then(a.0.cmp(b.0))
    });
    dropped += 2 * cap(&mut groups, limit);
    for ((comm, parent), g) in groups {
        let labels = || -> Labels { vec![("comm", comm.clone()), ("parent_comm", parent.clone())] };
        zombies.push(labels(), g.count as f64);
        zombie_age.push(labels(), g.oldest_age);
    }

    let mut pending = Family::gauge(
        "sentinel_zombie_processes_reaped_by_init_pending",
        "Zombies whose parent is PID 1 of the watched procfs: init is not reaping.",
    );
    pending.push(vec![], summary.reaped_by_init_pending as f64);

    let mut stuck = Family::gauge(
        "sentinel_processes_uninterruptible",
        "Processes in uninterruptible sleep (D state) now, by command name.",
    );
    let mut d: Vec<_> = summary.uninterruptible.iter().collect();
    d.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    dropped += cap(&mut d, limit);
    for (comm, n) in d {
        stuck.push(vec![("comm", comm.clone())], *n as f64);
    }
    let mut stuck_for = Family::gauge(
        "sentinel_processes_uninterruptible_oldest_seconds",
        "The longest time one process of this command name has stayed in D state without leaving it (busy I/O flickers in and out; a stuck process stays).",
    );
    let mut oldest: Vec<_> = summary.uninterruptible_oldest.iter().collect();
    // Capped by its own order: one stuck process must not lose to many busy ones.
    oldest.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
    dropped += cap(&mut oldest, limit);
    for (comm, secs) in oldest {
        stuck_for.push(vec![("comm", comm.clone())], *secs);
    }

    let mut states = Family::gauge(
        "sentinel_processes",
        "Processes now, by state (from PROCFS/PID/stat).",
    );
    for (state, n) in &summary.by_state {
        states.push(vec![("state", (*state).to_string())], *n as f64);
    }
    let mut scan_time = Family::gauge(
        "sentinel_processes_scan_duration_seconds",
        "Time the latest pass over PROCFS/PID/stat took.",
    );
    scan_time.push(vec![], summary.duration.as_secs_f64());

    let mut families = vec![
        zombies, zombie_age, pending, stuck, stuck_for, states, scan_time,
    ];
    if let Some(walk) = walk {
        let (deleted_families, cut) = deleted_families(walk, limit);
        dropped += cut;
        families.extend(deleted_families);
    }
    Collection {
        families,
        series_dropped: dropped,
    }
}

fn deleted_families(walk: &Outcome, limit: usize) -> (Vec<Family>, u64) {
    let mut bytes = Family::gauge(
        "sentinel_deleted_open_files_bytes",
        "Space held by deleted but still open files (allocated bytes), by mountpoint and holding command; df counts it, du does not.",
    );
    let mut truncated = Family::gauge(
        "sentinel_deleted_open_files_scan_truncated",
        "1 if the latest deleted-files walk stopped at its budget or has not answered; the bytes are then from the last complete sweep.",
    );
    truncated.push(vec![], flag(walk.truncated));
    let mut walk_time = Family::gauge(
        "sentinel_deleted_open_files_scan_duration_seconds",
        "Time the latest round spent walking open fds (0 when no walk was due).",
    );
    walk_time.push(vec![], walk.duration.as_secs_f64());
    let mut cut = 0;
    let mut families = vec![truncated, walk_time];
    if let Some(report) = &walk.report {
        let mut held: Vec<_> = report.held.iter().collect();
        held.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        cut = cap(&mut held, limit);
        for ((mountpoint, comm), n) in held {
            bytes.push(
                vec![("comm", comm.clone()), ("mountpoint", mountpoint.clone())],
                *n as f64,
            );
        }
        let mut at = Family::gauge(
            "sentinel_deleted_open_files_scan_timestamp_seconds",
            "Unix time the published deleted-files sweep completed.",
        );
        at.push(vec![], report.completed_at);
        let mut skipped = Family::gauge(
            "sentinel_deleted_open_files_processes_skipped",
            "Processes whose open fds the published sweep could not read (no permission: needs root or CAP_SYS_PTRACE).",
        );
        skipped.push(vec![], report.skipped_permission as f64);
        families.extend([bytes, at, skipped]);
    }
    (families, cut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::render;
    use deleted::Report;
    use scan::ZombieGroup;
    use std::sync::Arc;

    fn summary() -> Summary {
        let mut s = Summary::default();
        for i in 0..5u64 {
            s.zombies.insert(
                (format!("child{i}"), "parent".into()),
                ZombieGroup {
                    count: i + 1,
                    oldest_age: 10.0 * i as f64,
                },
            );
        }
        s.uninterruptible.insert("stat".into(), 3);
        s.uninterruptible.insert("a".into(), 1);
        s.uninterruptible.insert("b".into(), 1);
        s.uninterruptible_oldest.insert("stat".into(), 15.0);
        s.uninterruptible_oldest.insert("a".into(), 0.0);
        s.uninterruptible_oldest.insert("b".into(), 300.0);
        s.by_state.insert("zombie", 15);
        s.reaped_by_init_pending = 2;
        s
    }

    #[test]
    fn caps_keep_the_biggest_and_count_the_rest() {
        let c = build(&summary(), None, 2);
        let text = render(&c.families);
        assert!(
            text.contains(r#"sentinel_zombie_processes{comm="child4",parent_comm="parent"} 5"#),
            "{text}"
        );
        assert!(
            text.contains(r#"sentinel_zombie_processes{comm="child3",parent_comm="parent"} 4"#)
        );
        assert!(!text.contains(r#"comm="child2""#));
        assert!(text.contains(
            r#"sentinel_zombie_oldest_age_seconds{comm="child4",parent_comm="parent"} 40"#
        ));
        assert!(text.contains(r#"sentinel_processes_uninterruptible{comm="stat"} 3"#));
        assert!(text.contains(r#"sentinel_processes_uninterruptible{comm="a"} 1"#));
        assert!(!text.contains(r#"sentinel_processes_uninterruptible{comm="b"}"#));
        // The stuck one is kept by its own order, though it is cut from the counts.
        assert!(text.contains(
            r#"sentinel_processes_uninterruptible_oldest_seconds{comm="b"} 300"#
        ));
        assert!(text.contains(
            r#"sentinel_processes_uninterruptible_oldest_seconds{comm="stat"} 15"#
        ));
        assert!(!text.contains(r#"sentinel_processes_uninterruptible_oldest_seconds{comm="a"}"#));
        assert!(text.contains("sentinel_zombie_processes_reaped_by_init_pending 2"));
        // 3 zombie groups × 2 families + 1 D-state comm in each of 2 families.
        assert_eq!(c.series_dropped, 8);
        assert!(!text.contains("sentinel_deleted_open_files"));
    }

    #[test]
    fn pending_is_always_present() {
        let text = render(&build(&Summary::default(), None, 10).families);
        assert!(
            text.contains("sentinel_zombie_processes_reaped_by_init_pending 0"),
            "{text}"
        );
    }

    #[test]
    fn deleted_files_families() {
        let mut report = Report {
            completed_at: 1234.0,
            skipped_permission: 3,
            ..Report::default()
        };
        report.held.insert(("/".into(), "java".into()), 100);
        report.held.insert(("/data".into(), "java".into()), 300);
        report.held.insert(("/data".into(), "nginx".into()), 200);
        let walk = Outcome {
            report: Some(Arc::new(report)),
            truncated: true,
            duration: Duration::from_millis(250),
            failed: false,
            walked: true,
        };
        let c = build(&Summary::default(), Some(&walk), 2);
        let text = render(&c.families);
        assert!(
            text.contains(
                r#"sentinel_deleted_open_files_bytes{comm="java",mountpoint="/data"} 300"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"sentinel_deleted_open_files_bytes{comm="nginx",mountpoint="/data"} 200"#
            )
        );
        assert!(!text.contains(r#"mountpoint="/"}"#));
        assert_eq!(c.series_dropped, 1);
        assert!(text.contains("sentinel_deleted_open_files_scan_truncated 1"));
        assert!(text.contains("sentinel_deleted_open_files_processes_skipped 3"));
        assert!(text.contains("sentinel_deleted_open_files_scan_timestamp_seconds 1234"));
        assert!(text.contains("sentinel_deleted_open_files_scan_duration_seconds 0.25"));

        // Before the first complete sweep: only the walk's own gauges.
        let early = Outcome {
            truncated: true,
            ..Outcome::default()
        };
        let text = render(&build(&Summary::default(), Some(&early), 2).families);
        assert!(text.contains("sentinel_deleted_open_files_scan_truncated 1"));
        assert!(!text.contains("sentinel_deleted_open_files_bytes{"));
    }
}
