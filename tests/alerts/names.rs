//! The `sentinel_*` metric names the bundled alert rules and dashboards use,
//! and the check that each exists in a given set of known names: the contract
//! (tests/alerts.rs) or the names real exporters produced (tests/drills.rs).
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Metric names in /work/shared/METRICS.md's contract (copied here so the
/// test does not depend on a file outside the repository), plus the
/// exporter's self metrics.
pub const CONTRACT: &[&str] = &[
    "sentinel_docker_up",
    "sentinel_docker_hung",
    "sentinel_docker_probe_duration_seconds",
    "sentinel_docker_probe_in_flight_seconds",
    "sentinel_docker_probe_failures_total",
    "sentinel_docker_last_success_timestamp_seconds",
    "sentinel_docker_daemon_restarts_total",
    "sentinel_docker_daemon_start_time_seconds",
    "sentinel_docker_containers",
    "sentinel_docker_info",
    "sentinel_cri_up",
    "sentinel_cri_hung",
    "sentinel_cri_probe_duration_seconds",
    "sentinel_cri_probe_in_flight_seconds",
    "sentinel_cri_probe_failures_total",
    "sentinel_cri_last_success_timestamp_seconds",
    "sentinel_cri_info",
    "sentinel_cri_runtime_condition",
    "sentinel_cri_runtime_restarts_total",
    "sentinel_cri_runtime_start_time_seconds",
    "sentinel_cri_pod_sandboxes",
    "sentinel_cri_containers",
    "sentinel_cri_container_stuck",
    "sentinel_cri_image_filesystem_used_bytes",
    "sentinel_filesystem_size_bytes",
    "sentinel_filesystem_avail_bytes",
    "sentinel_filesystem_free_bytes",
    "sentinel_filesystem_files",
    "sentinel_filesystem_files_free",
    "sentinel_filesystem_readonly",
    "sentinel_filesystem_fill_rate_bytes_per_second",
    "sentinel_filesystem_seconds_until_full",
    "sentinel_filesystem_inodes_fill_rate_per_second",
    "sentinel_filesystem_inodes_seconds_until_full",
    "sentinel_filesystem_stat_hung",
    "sentinel_systemd_up",
    "sentinel_systemd_unit_state",
    "sentinel_systemd_unit_restarts_total",
    "sentinel_systemd_unit_activations_total",
    "sentinel_systemd_unit_restart_loop",
    "sentinel_systemd_unit_restart_unbounded",
    "sentinel_systemd_unit_stranded",
    "sentinel_systemd_unit_failed",
    "sentinel_systemd_unit_start_limit_hit",
    "sentinel_zombie_processes",
    "sentinel_zombie_oldest_age_seconds",
    "sentinel_zombie_processes_reaped_by_init_pending",
    "sentinel_processes_uninterruptible",
    "sentinel_processes_uninterruptible_oldest_seconds",
    "sentinel_deleted_open_files_bytes",
    "sentinel_log_size_bytes",
    "sentinel_log_growth_bytes_per_second",
    "sentinel_log_file_growth_bytes_per_second",
    "sentinel_log_rotations_total",
    "sentinel_log_seconds_until_filesystem_full",
    "sentinel_kubelet_eviction_threshold_bytes",
    "sentinel_kubelet_eviction_threshold_inodes",
    "sentinel_kubelet_eviction_headroom_bytes",
    "sentinel_kubelet_eviction_headroom_inodes",
    "sentinel_kubelet_seconds_until_eviction",
    "sentinel_kubelet_eviction_signal_disabled",
    "sentinel_kubelet_image_gc_headroom_bytes",
    "sentinel_kubelet_healthz_up",
    "sentinel_kubelet_healthz_duration_seconds",
    "sentinel_kubelet_healthz_in_flight_seconds",
    "sentinel_kubelet_config_info",
    "sentinel_kubelet_container_log_oversize",
    "sentinel_kernel_problems_total",
    "sentinel_kernel_hung_tasks_total",
    "sentinel_kernel_oom_kills_total",
    "sentinel_kernel_filesystem_errors",
    "sentinel_kernel_filesystem_last_error_timestamp_seconds",
    "sentinel_kernel_last_problem_timestamp_seconds",
    "sentinel_kernel_log_readable",
    "sentinel_kernel_log_records_total",
    "sentinel_kernel_log_records_missed_total",
    "sentinel_collector_success",
    "sentinel_collector_duration_seconds",
    "sentinel_collector_last_success_timestamp_seconds",
    "sentinel_series_dropped",
    "sentinel_collector_installed",
    "sentinel_build_info",
];

/// Histogram families, whose series carry `_bucket`/`_sum`/`_count`.
pub const HISTOGRAMS: &[&str] = &[
    "sentinel_docker_probe_duration_seconds",
    "sentinel_cri_probe_duration_seconds",
    "sentinel_kubelet_healthz_duration_seconds",
];

/// The collector a metric name belongs to ("self" for the exporter's own).
pub fn collector_of(name: &str) -> &'static str {
    if name.starts_with("sentinel_docker_") {
        "docker"
    } else if name.starts_with("sentinel_cri_") {
        "cri"
    } else if name.starts_with("sentinel_filesystem_") {
        "filesystem"
    } else if name.starts_with("sentinel_systemd_") {
        "systemd"
    } else if name.starts_with("sentinel_zombie_")
        || name.starts_with("sentinel_processes_")
        || name.starts_with("sentinel_deleted_")
    {
        "processes"
    } else if name.starts_with("sentinel_log_") {
        "logs"
    } else if name.starts_with("sentinel_kernel_") {
        "kernel"
    } else if name.starts_with("sentinel_kubelet_") {
        "kubelet"
    } else {
        "self"
    }
}

/// Every `sentinel_*` token in `text`. A recorded series
/// (`level:sentinel_...:operation` of alerts/node-sentinel.recording.yml)
/// stands for the families its rule reads; a colon name that no rule records
/// is returned whole, so the name checks report it.
pub fn tokens(text: &str) -> BTreeSet<String> {
    tokens_within(text, &recorded(), 0)
}

fn tokens_within(
    text: &str,
    recorded: &std::collections::BTreeMap<String, String>,
    depth: usize,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("sentinel_") {
        let before = rest[..i].chars().last();
        let preceded_by_word =
            before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        if before == Some(':') {
            let start = rest[..i]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(0, |s| s + 1);
            let name = format!("{}{}", &rest[start..i], &tail[..end]);
            match recorded.get(&name) {
                Some(expr) if depth < 8 => out.extend(tokens_within(expr, recorded, depth + 1)),
                _ => {
                    out.insert(name);
                }
            }
        } else if !preceded_by_word {
            let name = &tail[..end];
            out.insert(name.split(':').next().unwrap_or(name).to_string());
        }
        rest = &tail[end..];
    }
    out
}

/// The recording rules' file.
pub fn recording_file() -> PathBuf {
    root().join("alerts/node-sentinel.recording.yml")
}

/// Recorded series name -> its expression (none if the file is absent).
pub fn recorded() -> std::collections::BTreeMap<String, String> {
    let path = recording_file();
    if !path.exists() {
        return Default::default();
    }
    let doc = yaml(&path);
    doc["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| {
            Some((
                r["record"].as_str()?.to_string(),
                r["expr"].as_str()?.to_string(),
            ))
        })
        .collect()
}

/// The family name of a series name (`x_bucket` of a histogram is `x`).
pub fn family(name: &str) -> String {
    for h in HISTOGRAMS {
        for suffix in ["_bucket", "_sum", "_count"] {
            if name.strip_suffix(suffix) == Some(h) {
                return (*h).to_string();
            }
        }
    }
    name.to_string()
}

/// The expressions of the shipped rule file and of every dashboard target,
/// as (where, expression).
pub fn expressions() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (alert, expr) in rule_exprs() {
        out.push((format!("rule {alert}"), expr));
    }
    for path in dashboards() {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read dashboard"))
                .expect("dashboard is JSON");
        for p in panels(&json) {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push((
                        format!(
                            "{} panel {:?}",
                            path.file_name().unwrap().to_string_lossy(),
                            p["title"].as_str().unwrap_or("")
                        ),
                        e.to_string(),
                    ));
                }
            }
        }
    }
    out
}

/// The dashboard JSON files.
pub fn dashboards() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("dashboards"))
        .expect("dashboards/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    v.sort();
    v
}

/// A YAML file as a JSON value.
pub fn yaml(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()))
}

/// The shipped rule file.
pub fn rule_file() -> PathBuf {
    root().join("alerts/node-sentinel.rules.yml")
}

/// Every alerting rule of the shipped file.
pub fn rules() -> Vec<serde_json::Value> {
    let doc = yaml(&rule_file());
    doc["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").clone())
        .collect()
}

/// (alert name, expression) of every rule.
pub fn rule_exprs() -> Vec<(String, String)> {
    rules()
        .iter()
        .map(|r| {
            (
                r["alert"].as_str().unwrap_or("?").to_string(),
                r["expr"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// Every panel of a dashboard, rows' nested panels included (rows themselves too).
pub fn panels(dashboard: &serde_json::Value) -> Vec<&serde_json::Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(p);
        for q in p["panels"].as_array().into_iter().flatten() {
            out.push(q);
        }
    }
    out
}

/// Metric families used by rules and dashboards, with where each is used.
pub fn used() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (where_, expr) in expressions() {
        for t in tokens(&expr) {
            out.push((family(&t), where_.clone()));
        }
    }
    out
}

/// Names used but not in `known` (family names), as "name (where)".
pub fn unknown(known: &BTreeSet<String>, skip_collectors: &BTreeSet<&str>) -> Vec<String> {
    let mut bad: Vec<String> = used()
        .into_iter()
        .filter(|(n, _)| !skip_collectors.contains(collector_of(n)) && !known.contains(n))
        .map(|(n, w)| format!("{n} ({w})"))
        .collect();
    bad.dedup();
    bad
}

/// Family names from a list of series/metric names (`_bucket` etc. folded).
pub fn families<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    names.into_iter().map(family).collect()
}
