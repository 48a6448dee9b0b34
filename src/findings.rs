//! Yes/no findings read off the latest snapshots, in words: what the landing
//! page and `node-sentinel diagnose` show a person on the box at 3 a.m.
//!
//! The conditions and severities are not written here: they are the rows of
//! `alerts/findings_table.rs`, which `alerts/generate.py` writes from
//! `alerts/config.yml` together with the bundled alert rules. Each row is the
//! condition of one alert rule (its terms joined on labels as PromQL's vector
//! matching does), so a finding is shown exactly when that rule's condition
//! holds on the exporter's own series, i.e. when the alert would be pending
//! or firing; `for:` and gap bridging are Prometheus's part. Alerts that need
//! Prometheus's history (rates over windows, `up`, restarts over time) have
//! no row and are listed in `HISTORY_ONLY`.
//!
//! Kernel problems are events: a finding for as long as the alert's window
//! (the table's age threshold) lasts after the record was logged.

use std::collections::BTreeMap;

use crate::metrics::{Family, Kind, Labels, Value};

/// How bad a finding is: the severity label of the alert rule it mirrors.
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
    /// The bundled alert whose condition holds.
    pub alert: &'static str,
    pub text: String,
}

/// A label matcher, as in PromQL (regexes arrive anchored).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    Eq,
    Ne,
    Re,
    NotRe,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Cmp {
    Eq,
    AtLeast,
    Above,
    Below,
}

impl Cmp {
    fn holds(self, v: f64, x: f64) -> bool {
        match self {
            Cmp::Eq => v == x,
            Cmp::AtLeast => v >= x,
            Cmp::Above => v > x,
            Cmp::Below => v < x,
        }
    }
}

/// How the first term's value reads in the text.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Unit {
    None,
    Duration,
    Percent,
    Count,
    Rate,
    Age,
}

/// One instant condition on one metric (see `Term` in alerts/generate.py).
#[derive(Debug)]
pub(crate) struct Term {
    pub metric: &'static str,
    pub matchers: &'static [(&'static str, Op, &'static str)],
    /// Divide by this metric's matching sample, as a percentage.
    pub per: Option<&'static str>,
    /// Labels the denominator is aggregated without (max) before matching.
    pub per_without: &'static [&'static str],
    /// Numerator labels ignored when matching the denominator.
    pub per_ignoring: &'static [&'static str],
    /// Sum the samples without these labels first.
    pub sum_without: Option<&'static [&'static str]>,
    pub cmp: Cmp,
    pub threshold: f64,
    /// Compare the time since the value (a timestamp), not the value.
    pub age: bool,
    /// Labels ignored when this term joins the first.
    pub ignoring: &'static [&'static str],
}

/// The snapshot side of one alert rule.
#[derive(Debug)]
pub(crate) struct Row {
    pub alert: &'static str,
    pub severity: Severity,
    /// All must hold on one subject; the first names it and gives the value.
    pub terms: &'static [Term],
    /// None of these may hold on that subject.
    pub unless: &'static [Term],
    pub text: &'static str,
    pub unit: Unit,
    /// The rule's expression is rendered from this row itself; otherwise the
    /// row is the same condition on the exporter's own series (a kernel
    /// record's timestamp for a counter's increase, the hang flag without the
    /// figure the alert prints).
    pub exact: bool,
}

include!("../alerts/findings_table.rs");

/// Findings in these families, most severe first.
pub fn evaluate<'a>(families: impl IntoIterator<Item = &'a Family>) -> Vec<Finding> {
    evaluate_at(families, crate::collector::unix_now())
}

/// [`evaluate`] with the clock given (kernel problems are judged by age).
pub fn evaluate_at<'a>(families: impl IntoIterator<Item = &'a Family>, now: f64) -> Vec<Finding> {
    let families: Vec<&Family> = families.into_iter().collect();
    let mut found = Vec::new();
    let mut regexes = Regexes::default();
    for row in ROWS {
        let Some((first, rest)) = row.terms.split_first() else {
            continue;
        };
        let subjects = term(first, &families, now, &mut regexes);
        let others: Vec<_> = rest
            .iter()
            .map(|t| (t, term(t, &families, now, &mut regexes)))
            .collect();
        let unless: Vec<_> = row
            .unless
            .iter()
            .map(|t| (t, term(t, &families, now, &mut regexes)))
            .collect();
        for (labels, value) in &subjects {
            let joined = |(t, hits): &(&Term, Vec<(Labels, f64)>)| {
                hits.iter()
                    .any(|(l, _)| key(l, t.ignoring) == key(labels, t.ignoring))
            };
            if others.iter().all(joined) && !unless.iter().any(joined) {
                found.push(Finding {
                    severity: row.severity,
                    alert: row.alert,
                    text: fill(row.text, labels, &show(row.unit, *value)),
                });
            }
        }
    }
    found.sort_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then_with(|| a.text.cmp(&b.text))
    });
    found.dedup();
    found
}

/// The bundled alerts a snapshot cannot judge, with the reason: shown by
/// `diagnose` so nobody reads "nothing found" as "no alert can fire".
pub fn history_only() -> &'static [(&'static str, Severity, &'static str)] {
    HISTORY_ONLY
}

/// Every bundled alert that has a finding, once per row, and whether the
/// rule's expression is rendered from that row itself.
pub fn judged_alerts() -> impl Iterator<Item = (&'static str, Severity, bool)> {
    ROWS.iter().map(|r| (r.alert, r.severity, r.exact))
}

/// Compiled regex matchers, once per evaluation. A pattern that does not
/// compile matches nothing (generate.py writes them from PromQL matchers that
/// promtool has checked, and a unit test compiles every one).
#[derive(Default)]
struct Regexes(BTreeMap<&'static str, Option<regex::Regex>>);

impl Regexes {
    fn is_match(&mut self, pattern: &'static str, value: &str) -> bool {
        self.0
            .entry(pattern)
            .or_insert_with(|| regex::Regex::new(pattern).ok())
            .as_ref()
            .is_some_and(|re| re.is_match(value))
    }
}

fn label<'l>(labels: &'l Labels, name: &str) -> &'l str {
    labels
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// The labels that identify a subject for a join, without `ignoring`.
fn key(labels: &Labels, ignoring: &[&str]) -> Vec<(&'static str, String)> {
    let mut k: Vec<_> = labels
        .iter()
        .filter(|(n, v)| !ignoring.contains(n) && !v.is_empty())
        .cloned()
        .collect();
    k.sort();
    k
}

fn samples<'f>(
    families: &'f [&Family],
    metric: &str,
) -> impl Iterator<Item = (&'f Labels, f64)> + 'f {
    let metric = metric.to_string();
    families
        .iter()
        .filter(move |f| {
            f.name == metric
                || (f.kind == Kind::Counter && metric.strip_suffix("_total") == Some(f.name))
        })
        .flat_map(|f| f.samples.iter())
        .filter_map(|s| match s.value {
            Value::Number(v) => Some((&s.labels, v)),
            Value::Histogram(_) => None,
        })
}

/// The subjects for which `t` holds, with the value it compared.
fn term(t: &Term, families: &[&Family], now: f64, regexes: &mut Regexes) -> Vec<(Labels, f64)> {
    let mut values: Vec<(Labels, f64)> = samples(families, t.metric)
        .filter(|(labels, _)| {
            t.matchers.iter().all(|(name, op, want)| {
                let have = label(labels, name);
                match op {
                    Op::Eq => have == *want,
                    Op::Ne => have != *want,
                    Op::Re => regexes.is_match(want, have),
                    Op::NotRe => !regexes.is_match(want, have),
                }
            })
        })
        .map(|(labels, v)| (labels.clone(), v))
        .collect();
    if let Some(without) = t.sum_without {
        let mut sums: BTreeMap<Vec<(&'static str, String)>, f64> = BTreeMap::new();
        for (labels, v) in &values {
            *sums.entry(key(labels, without)).or_default() += v;
        }
        values = sums.into_iter().collect();
    }
    if let Some(per) = t.per {
        let mut denominators: BTreeMap<Vec<(&'static str, String)>, f64> = BTreeMap::new();
        for (labels, v) in samples(families, per) {
            let d = denominators
                .entry(key(labels, t.per_without))
                .or_insert(f64::NEG_INFINITY);
            *d = d.max(v);
        }
        values = values
            .into_iter()
            .filter_map(|(labels, v)| {
                let d = denominators.get(&key(&labels, t.per_ignoring))?;
                Some((labels, v / d * 100.0))
            })
            .collect();
    }
    values
        .into_iter()
        .map(|(labels, v)| (labels, if t.age { now - v } else { v }))
        .filter(|(_, v)| t.cmp.holds(*v, t.threshold))
        .collect()
}

fn show(unit: Unit, v: f64) -> String {
    match unit {
        Unit::None => String::new(),
        Unit::Duration | Unit::Age => human_duration(v),
        Unit::Percent => format!("{v:.1}%"),
        Unit::Count => format!("{v}"),
        Unit::Rate => format!("{}/s", human_bytes(v)),
    }
}

/// `{label}` and `{value}` replaced in one pass, so a label value that looks
/// like a placeholder (a process named `{value}`) is printed as it is.
fn fill(template: &str, labels: &Labels, value: &str) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                if name == "value" {
                    out.push_str(value);
                } else {
                    out.push_str(label(labels, name));
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// 3145728 → "3.0 MiB".
fn human_bytes(v: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = v;
    let mut i = 0;
    while v.abs() >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
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

    fn gauge(name: &'static str, series: &[(&[(&'static str, &str)], f64)]) -> Family {
        let mut f = Family::gauge(name, "");
        for (labels, v) in series {
            f.push(
                labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
                *v,
            );
        }
        f
    }

    fn texts(found: &[Finding]) -> Vec<(&str, &str, &str)> {
        found
            .iter()
            .map(|f| (f.severity.as_str(), f.alert, f.text.as_str()))
            .collect()
    }

    const ROOT: &[(&str, &str)] = &[
        ("device", "/dev/sda1"),
        ("fstype", "ext4"),
        ("mountpoint", "/"),
    ];
    const BOOT: &[(&str, &str)] = &[
        ("device", "/dev/sda2"),
        ("fstype", "ext4"),
        ("mountpoint", "/boot"),
    ];

    #[test]
    fn findings_in_words_most_severe_first() {
        let stranded = gauge(
            "sentinel_systemd_unit_stranded",
            &[
                (
                    &[
                        ("dependency", "flanneld.service"),
                        ("unit", "docker.service"),
                    ],
                    1.0,
                ),
                (&[("dependency", ""), ("unit", "kubelet.service")], 0.0),
            ],
        );
        let size = gauge(
            "sentinel_filesystem_size_bytes",
            &[(ROOT, 100.0), (BOOT, 100.0)],
        );
        let avail = gauge(
            "sentinel_filesystem_avail_bytes",
            &[(ROOT, 15.0), (BOOT, 50.0)],
        );
        let ttf = gauge(
            "sentinel_filesystem_seconds_until_full",
            &[(ROOT, 5400.0), (BOOT, 5400.0)],
        );
        let zombies = gauge(
            "sentinel_zombie_processes",
            &[
                (&[("comm", "sh"), ("parent_comm", "dockerd")], 7.0),
                (&[("comm", "curl"), ("parent_comm", "dockerd")], 3.0),
                (&[("comm", "sh"), ("parent_comm", "cron")], 2.0),
            ],
        );
        let unbounded = gauge(
            "sentinel_systemd_unit_restart_unbounded",
            &[
                (&[("unit", "protokube.service")], 1.0),
                // kubeadm sets no start limit on kubelet on purpose
                (&[("unit", "kubelet.service")], 1.0),
            ],
        );
        let found = evaluate(&[unbounded, zombies, ttf, avail, size, stranded]);
        assert_eq!(
            texts(&found),
            [
                (
                    "critical",
                    "SentinelFilesystemFillingUp",
                    "/ will be full in 1h 30m at the current fill rate, with less than 20% left"
                ),
                (
                    "critical",
                    "SentinelUnitStranded",
                    "docker.service was stopped by a restart of flanneld.service and will not come back by itself"
                ),
                (
                    "warning",
                    "SentinelFilesystemFillingUp",
                    "/ will be full in 1h 30m at the current fill rate, with less than 40% left"
                ),
                // summed over the children's names, as the rule does
                (
                    "warning",
                    "SentinelZombiesAccumulating",
                    "10 zombie children under dockerd, not reaped"
                ),
                (
                    "info",
                    "SentinelUnitRestartUnbounded",
                    "protokube.service restarts forever: Restart= without a start limit that can stop it"
                ),
            ]
        );
    }

    #[test]
    fn a_static_full_boot_is_a_ticket_and_a_filling_one_pages() {
        let size = gauge(
            "sentinel_filesystem_size_bytes",
            &[(ROOT, 1000.0), (BOOT, 1000.0)],
        );
        let avail = gauge(
            "sentinel_filesystem_avail_bytes",
            &[(ROOT, 25.0), (BOOT, 25.0)],
        );
        let rate = gauge(
            "sentinel_filesystem_fill_rate_bytes_per_second",
            &[(ROOT, 0.5), (BOOT, 0.0)],
        );
        let found = evaluate(&[size, avail, rate]);
        assert_eq!(
            texts(&found),
            [
                (
                    "critical",
                    "SentinelFilesystemAlmostFull",
                    "/ has only 2.5% space available and it is still filling"
                ),
                (
                    "warning",
                    "SentinelFilesystemAlmostFull",
                    "/ has only 2.5% space available"
                ),
                (
                    "warning",
                    "SentinelFilesystemAlmostFull",
                    "/boot has only 2.5% space available"
                ),
            ]
        );
    }

    #[test]
    fn d_state_is_judged_by_the_longest_stay_not_the_count() {
        let count = gauge(
            "sentinel_processes_uninterruptible",
            &[
                (&[("comm", "postgres")], 4.0),
                (&[("comm", "dockerd")], 1.0),
                (&[("comm", "rsync")], 1.0),
            ],
        );
        let oldest = gauge(
            "sentinel_processes_uninterruptible_oldest_seconds",
            // busy backends flicker in and out of D; dockerd and rsync are stuck
            &[
                (&[("comm", "postgres")], 0.4),
                (&[("comm", "dockerd")], 150.0),
                (&[("comm", "rsync")], 125.0),
            ],
        );
        let found = evaluate(&[count, oldest]);
        assert_eq!(
            texts(&found),
            [
                (
                    "critical",
                    "SentinelProcessesStuckInDState",
                    "a dockerd process (the container runtime or kubelet) has stayed in D state for 2m 30s without leaving it"
                ),
                (
                    "warning",
                    "SentinelProcessesStuckInDState",
                    "a rsync process (not the runtime) has stayed in D state for 2m 5s without leaving it"
                ),
            ]
        );
    }

    #[test]
    fn joins_and_exclusions_match_the_rules() {
        // Docker hung also fails its ping: one finding, the hang.
        let up = gauge("sentinel_docker_up", &[(&[], 0.0)]);
        let hung = gauge("sentinel_docker_hung", &[(&[], 1.0)]);
        let found = evaluate(&[up.clone(), hung]);
        assert_eq!(
            found.iter().map(|f| f.alert).collect::<Vec<_>>(),
            ["SentinelDockerHung"]
        );
        let not_hung = gauge("sentinel_docker_hung", &[(&[], 0.0)]);
        let found = evaluate(&[up, not_hung.clone()]);
        assert_eq!(
            found.iter().map(|f| f.alert).collect::<Vec<_>>(),
            ["SentinelDockerDown"]
        );

        // docker.service down pages only where the exporter watches Docker.
        let state = gauge(
            "sentinel_systemd_unit_state",
            &[
                (&[("state", "inactive"), ("unit", "docker.service")], 1.0),
                (&[("state", "failed"), ("unit", "crio.service")], 1.0),
            ],
        );
        let up = gauge("sentinel_docker_up", &[(&[], 1.0)]);
        let found = evaluate(&[state, up, not_hung]);
        assert_eq!(
            texts(&found),
            [(
                "critical",
                "SentinelRuntimeUnitDown",
                "docker.service is inactive: the node's containers depend on it"
            )]
        );

        // The journal is inside varlog: one runaway pages once, for varlog.
        let ttf = gauge(
            "sentinel_log_seconds_until_filesystem_full",
            &[
                (&[("group", "varlog"), ("mountpoint", "/")], 3000.0),
                (&[("group", "journal"), ("mountpoint", "/")], 3600.0),
                (&[("group", "pods"), ("mountpoint", "/var")], 3600.0),
            ],
        );
        let found = evaluate(&[ttf]);
        assert_eq!(
            texts(&found),
            [
                (
                    "critical",
                    "SentinelLogsFillingDisk",
                    "logs of group pods will fill /var in 1h 0m"
                ),
                (
                    "critical",
                    "SentinelLogsFillingDisk",
                    "logs of group varlog will fill / in 50m 0s"
                ),
            ]
        );

        // Deleted-open files join their filesystem on the mountpoint only.
        let deleted = gauge(
            "sentinel_deleted_open_files_bytes",
            &[(&[("comm", "java"), ("mountpoint", "/")], 80.0)],
        );
        let size = gauge("sentinel_filesystem_size_bytes", &[(ROOT, 1000.0)]);
        let found = evaluate(&[deleted, size]);
        assert_eq!(
            texts(&found),
            [(
                "warning",
                "SentinelDeletedFilesHoldingSpace",
                "java holds 8.0% of / in deleted files it keeps open"
            )]
        );
    }

    #[test]
    fn kernel_problems_count_for_the_alerts_window() {
        let now = 1_000_000.0;
        let ts = |reason: &'static str, comm: &'static str| -> Vec<(&'static str, &'static str)> {
            vec![("comm", comm), ("reason", reason)]
        };
        let series: Vec<(Vec<(&str, &str)>, f64)> = vec![
            (ts("oom_kill", "stress"), now - 60.0),
            (ts("task_hung", "dockerd"), now - 30.0),
            // older than the alert's 15m window: no longer a finding
            (ts("fs_error", ""), now - 3700.0),
            // never seen since the exporter started
            (ts("soft_lockup", ""), 0.0),
        ];
        let refs: Vec<(&[(&str, &str)], f64)> =
            series.iter().map(|(l, v)| (l.as_slice(), *v)).collect();
        let last = gauge("sentinel_kernel_last_problem_timestamp_seconds", &refs);
        let found = evaluate_at(&[last], now);
        assert_eq!(
            texts(&found),
            [
                (
                    "critical",
                    "SentinelKernelRuntimeTaskHung",
                    "kernel: dockerd was blocked in D state past the hung-task timeout 30s ago"
                ),
                (
                    "warning",
                    "SentinelKernelTaskHung",
                    "kernel: task dockerd was blocked in D state past the hung-task timeout 30s ago"
                ),
                (
                    "warning",
                    "SentinelKernelOomKill",
                    "kernel: the OOM killer killed stress 1m 0s ago"
                ),
            ]
        );
        let unreadable = gauge("sentinel_kernel_log_readable", &[(&[], 0.0)]);
        let found = evaluate(&[unreadable]);
        assert_eq!(found.len(), 1);
        assert!(
            found[0]
                .text
                .starts_with("the kernel log (/dev/kmsg) cannot be read")
        );
    }

    #[test]
    fn a_label_that_looks_like_a_placeholder_is_printed_as_it_is() {
        let stuck = gauge(
            "sentinel_processes_uninterruptible_oldest_seconds",
            &[(&[("comm", "{value}")], 300.0)],
        );
        let found = evaluate(&[stuck]);
        assert_eq!(
            found[0].text,
            "a {value} process (not the runtime) has stayed in D state for 5m 0s without leaving it"
        );
    }

    #[test]
    fn every_row_is_well_formed() {
        for row in ROWS {
            assert!(row.alert.starts_with("Sentinel"), "{}", row.alert);
            assert!(!row.terms.is_empty(), "{}", row.alert);
            for t in row.terms.iter().chain(row.unless) {
                for (_, op, pattern) in t.matchers {
                    if matches!(op, Op::Re | Op::NotRe) {
                        assert!(
                            regex::Regex::new(pattern).is_ok(),
                            "{}: {pattern}",
                            row.alert
                        );
                    }
                }
            }
        }
        for (name, severity, _) in HISTORY_ONLY {
            assert!(
                !ROWS
                    .iter()
                    .any(|r| r.alert == *name && r.severity == *severity),
                "{name} has a row and is listed as history-only"
            );
        }
    }

    #[test]
    fn durations_and_sizes_for_people() {
        assert_eq!(human_duration(59.0), "59s");
        assert_eq!(human_duration(3700.0), "1h 1m");
        assert_eq!(human_duration(90061.0), "1d 1h");
        assert_eq!(human_duration(f64::INFINITY), "never");
        assert_eq!(human_duration(-3.0), "0s");
        assert_eq!(human_bytes(3_145_728.0), "3.0 MiB");
        assert_eq!(human_bytes(12.0), "12 B");
    }
}
