//! Yes/no findings read off the latest snapshots, in words: what the landing
//! page and `node-sentinel diagnose` show a person on the box at 3 a.m.
//!
//! They read the same families `/metrics` serves, so a finding here is exactly
//! what the bundled alert rules see, minus the rules' `for:` and thresholds
//! tuned per fleet.
//!
//! Kernel problems are events, not states: the latest of each reason logged
//! within the last day is a finding ("kernel: the OOM killer killed java 5m 0s
//! ago"), critical when it is a filesystem error, a read-only remount, a full
//! conntrack table, or the container runtime or kubelet hung or killed.

use crate::metrics::{Family, Labels, Value};

/// How bad a finding is; mirrors the alert rules' severities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One thing that is wrong now.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub severity: Severity,
    pub text: String,
}

/// When a series counts as a finding.
#[derive(Debug, Clone, Copy)]
enum When {
    Is(f64),
    AtLeast(f64),
    Below(f64),
}

impl When {
    fn holds(self, v: f64) -> bool {
        match self {
            When::Is(x) => v == x,
            When::AtLeast(x) => v >= x,
            When::Below(x) => v < x,
        }
    }
}

const DAY: f64 = 86_400.0;

/// (metric, condition, severity, text with `{label}` and `{value}` placeholders).
const RULES: &[(&str, When, Severity, &str)] = &[
    (
        "sentinel_docker_hung",
        When::Is(1.0),
        Severity::Critical,
        "Docker daemon is hung: its socket accepts connections but probes go unanswered",
    ),
    (
        "sentinel_docker_up",
        When::Is(0.0),
        Severity::Warning,
        "Docker daemon is not answering (down, missing, or slower than the timeout)",
    ),
    (
        "sentinel_systemd_up",
        When::Is(0.0),
        Severity::Warning,
        "systemd does not answer on the bus: unit findings are unknown",
    ),
    (
        "sentinel_filesystem_stat_hung",
        When::Is(1.0),
        Severity::Critical,
        "statvfs on {mountpoint} ({fstype}) hangs: a hung NFS/FUSE mount",
    ),
    (
        "sentinel_filesystem_seconds_until_full",
        When::Below(DAY),
        Severity::Critical,
        "{mountpoint} will be full in {value} at the current fill rate",
    ),
    (
        "sentinel_log_seconds_until_filesystem_full",
        When::Below(DAY),
        Severity::Critical,
        "logs of group {group} will fill {mountpoint} in {value}",
    ),
    (
        "sentinel_systemd_unit_stranded",
        When::Is(1.0),
        Severity::Critical,
        "{unit} was stopped by a restart of {dependency} and will not come back by itself",
    ),
    (
        "sentinel_systemd_unit_restart_loop",
        When::Is(1.0),
        Severity::Warning,
        "{unit} is in a restart loop",
    ),
    (
        "sentinel_systemd_unit_failed",
        When::Is(1.0),
        Severity::Warning,
        "{unit} failed (result {result})",
    ),
    (
        "sentinel_zombie_processes_reaped_by_init_pending",
        When::AtLeast(1.0),
        Severity::Warning,
        "{value} zombies wait for PID 1 to reap them",
    ),
    (
        "sentinel_zombie_processes",
        When::AtLeast(1.0),
        Severity::Warning,
        "{value} zombie {comm} processes under {parent_comm}",
    ),
    (
        "sentinel_processes_uninterruptible",
        When::AtLeast(1.0),
        Severity::Warning,
        "{value} {comm} processes stuck in D state",
    ),
    (
        "sentinel_kernel_log_readable",
        When::Is(0.0),
        Severity::Warning,
        "the kernel log (/dev/kmsg) cannot be read: kernel problems other than hung tasks and OOM kills go unseen",
    ),
    (
        "sentinel_systemd_unit_restart_unbounded",
        When::Is(1.0),
        Severity::Info,
        "{unit} restarts forever: Restart= without a start limit",
    ),
];

/// Findings in these families, most severe first.
pub fn evaluate<'a>(families: impl IntoIterator<Item = &'a Family>) -> Vec<Finding> {
    let families: Vec<&Family> = families.into_iter().collect();
    let mut found = kernel_findings(&families, crate::collector::unix_now());
    for family in families {
        for (name, when, severity, text) in RULES {
            if family.name != *name {
                continue;
            }
            for sample in &family.samples {
                if let Value::Number(v) = sample.value
                    && when.holds(v)
                {
                    found.push(Finding {
                        severity: *severity,
                        text: fill(text, &sample.labels, v, name),
                    });
                }
            }
        }
    }
    found.sort_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then_with(|| a.text.cmp(&b.text))
    });
    found
}

/// Kernel problems are events, not states: the latest of each reason is a
/// finding for a day after it was logged.
const KERNEL_RECENT: f64 = DAY;

/// The processes whose hang or OOM kill takes the node's containers down
/// (the default of `kernel.runtimeComms` in alerts/config.yml).
const RUNTIME_COMMS: &[&str] = &[
    "dockerd",
    "containerd",
    "containerd-shim",
    "kubelet",
    "crio",
    "cri-dockerd",
    "runc",
    "conmon",
];

/// (reason, severity, words; `{comm}` is the process the record named).
const KERNEL_REASONS: &[(&str, Severity, &str)] = &[
    (
        "task_hung",
        Severity::Warning,
        "kernel: task {comm} was blocked in D state past the hung-task timeout",
    ),
    (
        "oom_kill",
        Severity::Warning,
        "kernel: the OOM killer killed {comm}",
    ),
    (
        "soft_lockup",
        Severity::Warning,
        "kernel: a CPU soft lockup",
    ),
    ("rcu_stall", Severity::Warning, "kernel: an RCU stall"),
    ("fs_error", Severity::Critical, "kernel: a filesystem error"),
    (
        "fs_remount_readonly",
        Severity::Critical,
        "kernel: a filesystem was remounted read-only after an error",
    ),
    ("io_error", Severity::Warning, "kernel: a block I/O error"),
    (
        "nfs_not_responding",
        Severity::Warning,
        "kernel: an NFS server did not respond",
    ),
    (
        "conntrack_full",
        Severity::Critical,
        "kernel: the conntrack table was full, packets dropped",
    ),
];

/// The latest kernel problem of each reason within [`KERNEL_RECENT`] of `now`,
/// in words: "kernel: the OOM killer killed java 5m 0s ago (3 since start)".
fn kernel_findings(families: &[&Family], now: f64) -> Vec<Finding> {
    let label = |labels: &Labels, key: &str| -> String {
        labels
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let number = |v: &Value| match v {
        Value::Number(n) => Some(*n),
        Value::Histogram(_) => None,
    };
    let mut found = Vec::new();
    for (reason, severity, words) in KERNEL_REASONS {
        let latest = families
            .iter()
            .filter(|f| f.name == "sentinel_kernel_last_problem_timestamp_seconds")
            .flat_map(|f| f.samples.iter())
            .filter(|s| label(&s.labels, "reason") == *reason)
            .filter_map(|s| Some((number(&s.value)?, label(&s.labels, "comm"))))
            // 0: not seen since the exporter started.
            .filter(|(when, _)| *when > 0.0 && now - when < KERNEL_RECENT)
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let Some((when, comm)) = latest else {
            continue;
        };
        let count = families
            .iter()
            .filter(|f| f.name == "sentinel_kernel_problems")
            .flat_map(|f| f.samples.iter())
            .find(|s| label(&s.labels, "reason") == *reason)
            .and_then(|s| number(&s.value));
        let comm_words = if comm.is_empty() {
            "a process"
        } else {
            comm.as_str()
        };
        let mut text = format!(
            "{} {} ago",
            words.replace("{comm}", comm_words),
            human_duration(now - when)
        );
        if let Some(n) = count.filter(|n| *n > 1.0) {
            text.push_str(&format!(" ({n} since the exporter started)"));
        }
        let severity = if RUNTIME_COMMS.contains(&comm.as_str()) {
            Severity::Critical
        } else {
            *severity
        };
        found.push(Finding { severity, text });
    }
    found
}

fn fill(template: &str, labels: &Labels, value: f64, metric: &str) -> String {
    let mut out = template.to_string();
    for (key, label_value) in labels {
        out = out.replace(&format!("{{{key}}}"), label_value);
    }
    let value = if metric.ends_with("seconds_until_full") || metric.ends_with("filesystem_full") {
        human_duration(value)
    } else {
        format!("{value}")
    };
    out.replace("{value}", &value)
}

/// 90061 → "1d 1h", 3700 → "1h 1m", 59 → "59s".
pub fn human_duration(secs: f64) -> String {
    if !secs.is_finite() {
        return "never".into();
    }
    let s = secs.max(0.0) as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_in_words_most_severe_first() {
        let mut stranded = Family::gauge("sentinel_systemd_unit_stranded", "");
        stranded.push(
            vec![
                ("dependency", "flanneld.service".into()),
                ("unit", "docker.service".into()),
            ],
            1.0,
        );
        stranded.push(
            vec![
                ("dependency", "".into()),
                ("unit", "kubelet.service".into()),
            ],
            0.0,
        );
        let mut ttf = Family::gauge("sentinel_filesystem_seconds_until_full", "");
        ttf.push(vec![("mountpoint", "/".into())], 5400.0);
        ttf.push(vec![("mountpoint", "/data".into())], f64::INFINITY);
        let mut zombies = Family::gauge("sentinel_zombie_processes", "");
        zombies.push(
            vec![
                ("comm", "dockerd".into()),
                ("parent_comm", "systemd".into()),
            ],
            3.0,
        );
        let mut unbounded = Family::gauge("sentinel_systemd_unit_restart_unbounded", "");
        unbounded.push(vec![("unit", "protokube.service".into())], 1.0);
        let found = evaluate(&[unbounded, zombies, ttf, stranded]);
        let texts: Vec<(&str, &str)> = found
            .iter()
            .map(|f| (f.severity.as_str(), f.text.as_str()))
            .collect();
        assert_eq!(
            texts,
            [
                (
                    "critical",
                    "/ will be full in 1h 30m at the current fill rate"
                ),
                (
                    "critical",
                    "docker.service was stopped by a restart of flanneld.service and will not come back by itself"
                ),
                ("warning", "3 zombie dockerd processes under systemd"),
                (
                    "info",
                    "protokube.service restarts forever: Restart= without a start limit"
                ),
            ]
        );
    }

    #[test]
    fn the_latest_kernel_problem_of_each_reason_in_words() {
        let now = 1_000_000.0;
        let mut last = Family::gauge("sentinel_kernel_last_problem_timestamp_seconds", "");
        let ts = |reason: &str, comm: &str| -> Labels {
            vec![("comm", comm.into()), ("reason", reason.into())]
        };
        last.push(ts("oom_kill", "java"), now - 600.0);
        last.push(ts("oom_kill", "stress"), now - 60.0);
        last.push(ts("task_hung", "dockerd"), now - 30.0);
        last.push(ts("fs_error", ""), now - 3700.0);
        // More than a day ago: no longer a finding.
        last.push(ts("nfs_not_responding", ""), now - 2.0 * DAY);
        last.push(ts("soft_lockup", ""), 0.0);
        let mut problems = Family::counter("sentinel_kernel_problems", "");
        problems.push(vec![("reason", "oom_kill".into())], 3.0);
        problems.push(vec![("reason", "fs_error".into())], 1.0);
        let mut texts: Vec<(&str, String)> = kernel_findings(&[&last, &problems], now)
            .into_iter()
            .map(|f| (f.severity.as_str(), f.text))
            .collect();
        texts.sort();
        assert_eq!(
            texts,
            [
                ("critical", "kernel: a filesystem error 1h 1m ago".to_string()),
                (
                    "critical",
                    "kernel: task dockerd was blocked in D state past the hung-task timeout 30s ago"
                        .to_string()
                ),
                (
                    "warning",
                    "kernel: the OOM killer killed stress 1m 0s ago (3 since the exporter started)"
                        .to_string()
                ),
            ]
        );
        assert!(kernel_findings(&[&problems], now).is_empty());
        let mut unreadable = Family::gauge("sentinel_kernel_log_readable", "");
        unreadable.push(vec![], 0.0);
        let found = evaluate(&[unreadable]);
        assert_eq!(found.len(), 1);
        assert!(
            found[0]
                .text
                .starts_with("the kernel log (/dev/kmsg) cannot be read")
        );
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(human_duration(59.0), "59s");
        assert_eq!(human_duration(3700.0), "1h 1m");
        assert_eq!(human_duration(90061.0), "1d 1h");
        assert_eq!(human_duration(f64::INFINITY), "never");
        assert_eq!(human_duration(-3.0), "0s");
    }
}
