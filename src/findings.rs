//! Yes/no findings read off the latest snapshots, in words: what the landing
//! page and `node-sentinel diagnose` show a person on the box at 3 a.m.
//!
//! They read the same families `/metrics` serves, so a finding here is exactly
//! what the bundled alert rules see, minus the rules' `for:` and thresholds
//! tuned per fleet.

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
        "sentinel_systemd_unit_restart_unbounded",
        When::Is(1.0),
        Severity::Info,
        "{unit} restarts forever: Restart= without a start limit",
    ),
];

/// Findings in these families, most severe first.
pub fn evaluate<'a>(families: impl IntoIterator<Item = &'a Family>) -> Vec<Finding> {
    let mut found = Vec::new();
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
    fn durations_for_people() {
        assert_eq!(human_duration(59.0), "59s");
        assert_eq!(human_duration(3700.0), "1h 1m");
        assert_eq!(human_duration(90061.0), "1d 1h");
        assert_eq!(human_duration(f64::INFINITY), "never");
        assert_eq!(human_duration(-3.0), "0s");
    }
}
