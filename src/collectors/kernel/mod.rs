//! Kernel collector: what the kernel says about hung tasks, OOM kills,
//! filesystem errors and read-only remounts, lockups and RCU stalls, I/O
//! errors, NFS servers not responding and a full conntrack table; often the
//! earliest word a node gives of a hung runtime or a dying disk.
//!
//! **Reads**
//! - The kernel log device, `/dev/kmsg` under `--path.rootfs` (or
//!   `--collector.kernel.kmsg-path`): structured records (see [`record`]),
//!   drained by one dedicated thread ([`reader`]) that `collect()` never waits
//!   for. Only records of the kernel facility count: a process writing to
//!   /dev/kmsg gets the user facility, so it cannot fake a kernel problem.
//! - `PROCFS/sys/kernel/hung_task_detect_count` (kernels ≥ 6.13) and
//!   `PROCFS/vmstat` (`oom_kill`), on the same thread, once per interval.
//! - The errors ext4 recorded in its superblocks, `SYSFS/fs/ext4/*/`
//!   ([`superblock`]), once per round on an offload thread (it reads the
//!   host's mount table first). They need no privilege and outlive the log.
//!
//! **Exports** (METRICS.md, "kernel"): `sentinel_kernel_problems_total{reason}`
//! (every reason from start at 0, while the log is readable),
//! `sentinel_kernel_hung_tasks_total` (the kernel's own count where it has
//! one, which keeps counting after the kernel stops printing hung-task
//! warnings, 10 by default; else the task_hung records seen),
//! `sentinel_kernel_oom_kills_total`,
//! `sentinel_kernel_last_problem_timestamp_seconds{reason,comm}` (one series
//! per reason with `comm=""`, 0 until seen; those naming a process are the
//! newest `--collector.kernel.series-limit`, the rest count in
//! `sentinel_series_dropped`); also `sentinel_kernel_log_readable` (0 when the
//! log cannot be read: the problem counters are then absent, not 0),
//! `sentinel_kernel_log_records_total{facility}` (`kernel`, or `other` for
//! records processes wrote), `sentinel_kernel_log_records_missed_total`
//! (records the kernel overwrote before they were read) and
//! `sentinel_kernel_log_records_malformed_total`;
//! `sentinel_kernel_filesystem_errors{mountpoint,device,fstype}` and
//! `sentinel_kernel_filesystem_last_error_timestamp_seconds` (one per ext4
//! filesystem, at most [`superblock::LIMIT`]).
//!
//! **Privileges**: reading /dev/kmsg needs CAP_SYSLOG when
//! `kernel.dmesg_restrict=1` (the default on most distributions), and in a
//! container the device must be there and allowed by the device cgroup.
//! Without it the exporter says so once in its log, exports
//! `sentinel_kernel_log_readable 0` and keeps the procfs counters, which
//! need nothing.
//!
//! **Rules and their limits**
//! - Counting starts at the end of the kernel's buffer: records from before
//!   the exporter started (boot messages, or everything a previous exporter
//!   already counted) are never counted, so a restart never counts twice.
//!   They are still read once at start, from the oldest, to set the last-seen
//!   times (from `PROCFS/uptime` and the record's own timestamp), so `/` and
//!   `diagnose` show what the kernel said before. Records written while no
//!   exporter ran are never counted; the procfs counters, the kernel's own
//!   since boot, cover hung tasks and OOM kills in that gap.
//! - An overrun (the kernel overwrote records not read yet, `EPIPE`) resumes
//!   at the oldest record left; the sequence gap is counted as missed.
//! - A record names a process only for task_hung and oom_kill; the last-seen
//!   time of a new record is when the reader read it (at most half a second
//!   late).
//! - The reasons are a fixed table matched on the kernel's own message formats
//!   ([`record::classify`]); a multi-line report counts once, by its headline.

pub mod reader;
pub mod record;
pub mod superblock;

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::collector::{CollectError, Collection, Collector, ErrorKind, FailureLog};
use crate::host::Paths;
use crate::host::offload::{Limits, Offload, Outcome};
use crate::metrics::{Family, flag};
use crate::values::parse_positive_duration;

use reader::{LogState, Shared, Sources};
use record::Reason;
use superblock::Superblocks;

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Collector: kernel")]
#[group(skip)]
pub struct Args {
    /// How often the kernel collector publishes (and samples the procfs counters).
    #[arg(id = "collector.kernel.interval", long = "collector.kernel.interval", value_name = "DURATION", default_value = "15s", value_parser = parse_positive_duration)]
    pub interval: Duration,
    /// The kernel log device, a host path resolved under --path.rootfs.
    #[arg(id = "collector.kernel.kmsg-path", long = "collector.kernel.kmsg-path", value_name = "PATH", default_value = "/dev/kmsg")]
    pub kmsg_path: String,
    /// Most series of sentinel_kernel_last_problem_timestamp_seconds; the newest are kept.
    #[arg(id = "collector.kernel.series-limit", long = "collector.kernel.series-limit", value_name = "N", default_value = "20", value_parser = clap::value_parser!(u32).range(1..=reader::REMEMBERED as i64))]
    pub series_limit: u32,
}

/// Publishes what its reader thread has seen; see the module docs.
pub struct KernelCollector {
    sources: Sources,
    series_limit: usize,
    shared: Arc<Mutex<Shared>>,
    thread: Option<JoinHandle<()>>,
    /// Set until the new reader's first pass is in (or the wait gave up).
    first_pass: Option<oneshot::Receiver<()>>,
    paths: Paths,
    /// The superblock read: one call at a time, one stuck thread at most.
    superblocks: Offload<()>,
    superblock_log: FailureLog,
}

/// How long a round waits for the mount table and sysfs; past it the
/// superblock series are left out this round.
const SUPERBLOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the first round waits (asynchronously) for the reader's first
/// pass, so a short `diagnose` sees the backlog and the procfs counters.
const FIRST_PASS_WAIT: Duration = Duration::from_secs(2);

impl KernelCollector {
    pub fn new(args: &Args, paths: &Paths) -> Self {
        let kmsg = paths
            .resolve(&args.kmsg_path)
            .map_err(|e| format!("cannot read the kernel log: {e}"));
        KernelCollector {
            sources: Sources {
                kmsg,
                procfs: paths.procfs.clone(),
                interval: args.interval,
            },
            series_limit: args.series_limit as usize,
            shared: Arc::default(),
            thread: None,
            first_pass: None,
            paths: paths.clone(),
            superblocks: Offload::with_limits(
                "kernel-superblocks",
                Limits {
                    running: 1,
                    idle: 1,
                    ..Limits::default()
                },
            ),
            superblock_log: FailureLog::default(),
        }
    }

    /// This round's superblock records, or None (logged once) when they
    /// cannot be had: the families are then absent, never a false 0.
    async fn superblocks(&mut self) -> Option<Superblocks> {
        let paths = self.paths.clone();
        let outcome = self
            .superblocks
            .run((), SUPERBLOCK_TIMEOUT, move || superblock::read(&paths))
            .await;
        let source = "kernel.superblocks";
        match outcome {
            Outcome::Done(Ok(found)) => {
                match found.unreadable.first() {
                    Some(first) => self.superblock_log.failed(source, "unreadable", first),
                    None => self.superblock_log.ok(source),
                }
                Some(found)
            }
            Outcome::Done(Err(e)) => {
                self.superblock_log.failed(source, "mountinfo", &e);
                None
            }
            Outcome::TimedOut | Outcome::Busy => {
                self.superblock_log.failed(
                    source,
                    "stuck",
                    &"reading the mount table or sysfs has not returned",
                );
                None
            }
            Outcome::Failed(e) => {
                self.superblock_log.failed(source, "thread", &e);
                None
            }
        }
    }

    /// Start the reader on first use, and again if it died (a bug): a new
    /// one starts at the end of the log like the first.
    fn ensure_reader(&mut self) -> Result<(), CollectError> {
        if self.thread.as_ref().is_some_and(|t| !t.is_finished()) {
            return Ok(());
        }
        let restarted = self.thread.take().is_some();
        if restarted {
            tracing::warn!(
                source = "kernel",
                "the kernel log reader ended; starting a new one"
            );
        }
        let (handle, first_pass) = reader::spawn(self.sources.clone(), self.shared.clone())
            .map_err(|e| {
                CollectError::new(ErrorKind::Thread, format!("cannot start a thread: {e}"))
            })?;
        self.thread = Some(handle);
        self.first_pass = Some(first_pass);
        Ok(())
    }
}

impl Collector for KernelCollector {
    fn name(&self) -> &'static str {
        "kernel"
    }

    async fn collect(&mut self) -> Result<Collection, CollectError> {
        self.ensure_reader()?;
        if let Some(first_pass) = self.first_pass.take() {
            // A reader stuck in its first pass shows as "starting" meanwhile.
            let _ = tokio::time::timeout(FIRST_PASS_WAIT, first_pass).await;
        }
        let superblocks = self.superblocks().await;
        let seen = self
            .shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Ok(build(&seen, self.series_limit, superblocks.as_ref()))
    }
}

/// Every family from what the reader has seen, and the superblock records
/// when this round has them. Pure.
pub fn build(seen: &Shared, limit: usize, superblocks: Option<&Superblocks>) -> Collection {
    let reading = seen.log == LogState::Reading;
    let mut readable = Family::gauge(
        "sentinel_kernel_log_readable",
        "1 if the kernel log (/dev/kmsg) is being read; 0 if it cannot be (see the exporter's log), and the problem counters are then absent.",
    );
    let mut families = Vec::new();
    let mut dropped = 0;
    if seen.log != LogState::Starting {
        readable.push(vec![], flag(reading));
    }
    families.push(readable);

    if reading {
        let mut problems = Family::counter(
            "sentinel_kernel_problems",
            "Kernel-facility log records seen since the exporter started, by reason.",
        );
        for r in Reason::ALL {
            problems.push(
                vec![("reason", r.label().to_string())],
                seen.problems_of(r) as f64,
            );
        }
        let mut missed = Family::counter(
            "sentinel_kernel_log_records_missed",
            "Kernel log records overwritten before they were read (an overrun).",
        );
        missed.push(vec![], seen.missed as f64);
        let mut malformed = Family::counter(
            "sentinel_kernel_log_records_malformed",
            "Kernel log records that did not parse.",
        );
        malformed.push(vec![], seen.malformed as f64);
        let mut records = Family::counter(
            "sentinel_kernel_log_records",
            "Kernel log records read since start, by facility: kernel, or other (written by a process, never counted as a problem).",
        );
        records.push(
            vec![("facility", "kernel".into())],
            seen.kernel_records as f64,
        );
        records.push(vec![("facility", "other".into())], seen.other_records as f64);

        let mut last = Family::gauge(
            "sentinel_kernel_last_problem_timestamp_seconds",
            "When each reason was last seen in the kernel log, with the process it names as hung or killed (empty when none).",
        );
        // Every reason has its `comm=""` series from start, 0 until seen, so
        // rules and dashboards find the name on a quiet node too; the named
        // processes are capped, these nine are not.
        for r in Reason::ALL {
            let when = seen.last_seen.get(&(r, String::new())).copied();
            last.push(
                vec![("comm", String::new()), ("reason", r.label().to_string())],
                when.unwrap_or(0.0),
            );
        }
        let mut newest: Vec<_> = seen
            .last_seen
            .iter()
            .filter(|((_, comm), _)| !comm.is_empty())
            .collect();
        newest.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
        dropped += newest.len().saturating_sub(limit) as u64;
        newest.truncate(limit);
        for ((reason, comm), when) in newest {
            last.push(
                vec![
                    ("comm", comm.clone()),
                    ("reason", reason.label().to_string()),
                ],
                *when,
            );
        }
        families.extend([problems, missed, malformed, records, last]);
    }

    let mut hung = Family::counter(
        "sentinel_kernel_hung_tasks",
        "Tasks the kernel's hung-task detector reported (hung_task_detect_count where the kernel has it, else task_hung records seen since start).",
    );
    match (seen.hung_task_detect_count, reading) {
        (Some(n), _) => {
            hung.push(vec![], n as f64);
        }
        (None, true) => {
            hung.push(vec![], seen.problems_of(Reason::TaskHung) as f64);
        }
        (None, false) => {}
    }
    let mut oom = Family::counter(
        "sentinel_kernel_oom_kills",
        "Processes the kernel's OOM killer killed since boot (/proc/vmstat oom_kill).",
    );
    if let Some(n) = seen.oom_kills {
        oom.push(vec![], n as f64);
    }
    families.extend([hung, oom]);
    if let Some(found) = superblocks {
        families.extend(superblock_families(found));
        dropped += found.dropped;
    }
    Collection {
        families,
        series_dropped: dropped,
    }
}

fn superblock_families(found: &Superblocks) -> [Family; 2] {
    let mut errors = Family::gauge(
        "sentinel_kernel_filesystem_errors",
        "Errors ext4 recorded in this filesystem's superblock (sysfs errors_count): kept across reboots until fsck repairs the filesystem.",
    );
    let mut last = Family::gauge(
        "sentinel_kernel_filesystem_last_error_timestamp_seconds",
        "When ext4 last recorded an error in this filesystem's superblock (sysfs last_error_time), 0 if never.",
    );
    for fs in &found.filesystems {
        let labels = vec![
            ("device", fs.device.clone()),
            ("fstype", fs.fstype.clone()),
            ("mountpoint", fs.mountpoint.clone()),
        ];
        errors.push(labels.clone(), fs.errors as f64);
        last.push(labels, fs.last_error_time as f64);
    }
    [errors, last]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Value;
    use record::Problem;

    fn values(c: &Collection, name: &str) -> Vec<(Vec<(&'static str, String)>, f64)> {
        c.families
            .iter()
            .filter(|f| f.name == name)
            .flat_map(|f| f.samples.iter())
            .map(|s| match s.value {
                Value::Number(v) => (s.labels.clone(), v),
                Value::Histogram(_) => panic!("histogram"),
            })
            .collect()
    }

    #[test]
    fn every_reason_exists_from_start_at_zero() {
        let seen = Shared {
            log: LogState::Reading,
            ..Shared::default()
        };
        let c = build(&seen, 5, None);
        let problems = values(&c, "sentinel_kernel_problems");
        assert_eq!(problems.len(), Reason::ALL.len());
        assert!(problems.iter().all(|(_, v)| *v == 0.0));
        assert_eq!(values(&c, "sentinel_kernel_log_readable")[0].1, 1.0);
        // No procfs counter: the hung count comes from the log.
        assert_eq!(values(&c, "sentinel_kernel_hung_tasks")[0].1, 0.0);
        assert!(values(&c, "sentinel_kernel_oom_kills").is_empty());
        let last = values(&c, "sentinel_kernel_last_problem_timestamp_seconds");
        assert_eq!(last.len(), Reason::ALL.len());
        assert!(last.iter().all(|(l, v)| l[0] == ("comm", String::new()) && *v == 0.0));
    }

    #[test]
    fn an_unreadable_log_withdraws_the_problem_counters_only() {
        let seen = Shared {
            log: LogState::Unreadable("permission denied".into()),
            hung_task_detect_count: Some(3),
            oom_kills: Some(2),
            ..Shared::default()
        };
        let c = build(&seen, 5, None);
        assert_eq!(values(&c, "sentinel_kernel_log_readable")[0].1, 0.0);
        assert!(values(&c, "sentinel_kernel_problems").is_empty());
        assert_eq!(values(&c, "sentinel_kernel_hung_tasks")[0].1, 3.0);
        assert_eq!(values(&c, "sentinel_kernel_oom_kills")[0].1, 2.0);
        // Without the kernel's own count there is no hung-task figure at all.
        let seen = Shared {
            log: LogState::Unreadable("x".into()),
            ..Shared::default()
        };
        assert!(values(&build(&seen, 5, None), "sentinel_kernel_hung_tasks").is_empty());
    }

    #[test]
    fn last_seen_keeps_the_newest_and_counts_the_cut() {
        let mut seen = Shared {
            log: LogState::Reading,
            hung_task_detect_count: Some(9),
            ..Shared::default()
        };
        for (i, comm) in ["a", "b", "c"].iter().enumerate() {
            let p = Problem {
                reason: Reason::OomKill,
                comm: comm.to_string(),
            };
            seen.count(p, 100.0 + i as f64);
        }
        seen.count(
            Problem {
                reason: Reason::FsError,
                comm: String::new(),
            },
            50.0,
        );
        let c = build(&seen, 2, None);
        assert_eq!(c.series_dropped, 1);
        let last = values(&c, "sentinel_kernel_last_problem_timestamp_seconds");
        let fs = (vec![("comm", String::new()), ("reason", "fs_error".into())], 50.0);
        assert!(last.contains(&fs), "{last:?}");
        let named: Vec<_> = last.into_iter().filter(|(l, _)| !l[0].1.is_empty()).collect();
        assert_eq!(
            named,
            [
                (vec![("comm", "c".into()), ("reason", "oom_kill".into())], 102.0),
                (vec![("comm", "b".into()), ("reason", "oom_kill".into())], 101.0),
            ]
        );
        let problems = values(&c, "sentinel_kernel_problems");
        assert!(problems.contains(&(vec![("reason", "oom_kill".into())], 3.0)));
        assert!(problems.contains(&(vec![("reason", "fs_error".into())], 1.0)));
        // The kernel's own count wins over the log's.
        assert_eq!(values(&c, "sentinel_kernel_hung_tasks")[0].1, 9.0);
    }
}
