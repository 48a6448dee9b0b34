//! The bundled alert rules and dashboards, checked offline: generated files
//! match their generators, `promtool check rules` and `promtool test rules`
//! (Debian's prometheus package) pass, every alert has a pending and a firing
//! unit test, a severity, a static summary, a templated description and a
//! runbook_url whose file and anchor exist, dashboards follow the conventions
//! (datasource/job/instance variables, units, `$__rate_interval`), and every
//! `sentinel_*` name they use is in the metric contract. tests/drills.rs
//! checks the same names against what real exporters serve.
//!
//! The findings table and the rules are checked against each other: every
//! alert has a finding or is named history-only, and on the same snapshots
//! promtool's pending and firing alerts are exactly the findings
//! `node-sentinel diagnose` reports. The shipped Alertmanager snippet
//! (deploy/alertmanager/) is loaded into a real Alertmanager: one node's
//! critical must not inhibit another node's warning.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;
#[path = "alerts/names.rs"]
mod names;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

const RUNBOOK_BASE: &str =
    "https://github.com/node-sentinel/node-sentinel/blob/main/docs/runbooks/";

fn run_ok(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(names::root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?} failed:\n{text}");
    text
}

fn promtool() -> Option<std::path::PathBuf> {
    common::require("/usr/bin/promtool")
}

fn python() -> bool {
    common::require("python3").is_some()
}

fn test_files() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(names::root().join("alerts/tests"))
        .expect("alerts/tests")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .map(|p| {
            p.strip_prefix(names::root())
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn generated_files_match_their_generators() {
    if !python() {
        return;
    }
    run_ok("python3", &["alerts/generate.py", "--check"]);
    run_ok("python3", &["dashboards/generate.py", "--check"]);
}

#[test]
fn promtool_check_rules_passes() {
    let Some(promtool) = promtool() else { return };
    let out = run_ok(
        promtool.to_str().unwrap(),
        &["check", "rules", "alerts/node-sentinel.rules.yml"],
    );
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn promtool_unit_tests_pass() {
    let Some(promtool) = promtool() else { return };
    let files = test_files();
    assert!(!files.is_empty());
    let mut args = vec!["test", "rules"];
    args.extend(files.iter().map(String::as_str));
    let out = run_ok(promtool.to_str().unwrap(), &args);
    assert!(!out.contains("FAILED"), "{out}");
}

#[test]
fn every_alert_has_a_pending_and_a_firing_unit_test() {
    let rules = names::rules();
    // alertname -> (has a case expecting nothing, severities of firing cases)
    let mut seen: BTreeMap<String, (bool, BTreeSet<String>)> = BTreeMap::new();
    for file in test_files() {
        let doc = names::yaml(&names::root().join(&file));
        for test in doc["tests"].as_array().expect("tests") {
            for case in test["alert_rule_test"].as_array().into_iter().flatten() {
                let name = case["alertname"].as_str().expect("alertname").to_string();
                let entry = seen.entry(name.clone()).or_default();
                let exp = case["exp_alerts"].as_array().cloned().unwrap_or_default();
                if exp.is_empty() {
                    entry.0 = true;
                }
                for alert in exp {
                    let labels = alert["exp_labels"].as_object().expect("exp_labels");
                    let ann = alert["exp_annotations"]
                        .as_object()
                        .expect("exp_annotations");
                    for key in ["summary", "description", "runbook_url"] {
                        assert!(ann.contains_key(key), "{file}: {name} case lacks {key}");
                    }
                    for key in ["severity", "instance", "job"] {
                        assert!(
                            labels.contains_key(key)
                                || (key == "instance" && name == "SentinelExporterFleetDown")
                                || name == "SentinelExporterAbsent",
                            "{file}: {name} case lacks label {key}"
                        );
                    }
                    entry
                        .1
                        .insert(labels["severity"].as_str().unwrap().to_string());
                }
            }
        }
    }
    for rule in &rules {
        let name = rule["alert"].as_str().unwrap();
        let severity = rule["labels"]["severity"].as_str().unwrap();
        let (pending, firing) = seen
            .get(name)
            .unwrap_or_else(|| panic!("{name} has no promtool unit test"));
        assert!(pending, "{name} has no not-firing case");
        assert!(
            firing.contains(severity),
            "{name} has no firing case at severity {severity}"
        );
    }
}

/// GitHub's anchor for a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(md: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(md)
        .unwrap_or_else(|e| panic!("{}: {e}", md.display()))
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect()
}

#[test]
fn every_alert_is_complete_and_links_an_existing_runbook_section() {
    let rules = names::rules();
    assert!(rules.len() >= 20, "only {} rules", rules.len());
    for rule in &rules {
        let name = rule["alert"].as_str().expect("alerting rules only");
        assert!(name.starts_with("Sentinel"), "{name}: alerts are prefixed");
        assert!(rule["for"].is_string(), "{name}: no for:");
        let sev = rule["labels"]["severity"].as_str().unwrap_or("");
        assert!(
            ["critical", "warning", "info"].contains(&sev),
            "{name}: severity {sev:?}"
        );
        let ann = &rule["annotations"];
        let summary = ann["summary"].as_str().unwrap_or("");
        assert!(
            !summary.is_empty() && !summary.contains("{{"),
            "{name}: summary must be static: {summary:?}"
        );
        let desc = ann["description"].as_str().unwrap_or("");
        assert!(
            desc.contains("{{ $labels.instance }}")
                || name == "SentinelExporterAbsent"
                || name == "SentinelExporterFleetDown",
            "{name}: description does not name the instance: {desc:?}"
        );
        let url = ann["runbook_url"].as_str().unwrap_or("");
        let rest = url
            .strip_prefix(RUNBOOK_BASE)
            .unwrap_or_else(|| panic!("{name}: runbook_url {url} not under {RUNBOOK_BASE}"));
        let (file, frag) = rest.split_once('#').expect("runbook_url has an anchor");
        let md = names::root().join("docs/runbooks").join(file);
        assert!(md.exists(), "{name}: {} missing", md.display());
        assert!(
            anchors(&md).contains(frag),
            "{name}: no heading for #{frag} in {}",
            md.display()
        );
    }
}

#[test]
fn every_contract_finding_has_an_alert() {
    let used: BTreeSet<String> = names::rule_exprs()
        .iter()
        .flat_map(|(_, e)| names::tokens(e))
        .map(|t| names::family(&t))
        .collect();
    for finding in [
        "sentinel_docker_hung",
        "sentinel_docker_up",
        "sentinel_docker_probe_duration_seconds",
        "sentinel_docker_daemon_restarts_total",
        "sentinel_filesystem_seconds_until_full",
        "sentinel_filesystem_avail_bytes",
        "sentinel_filesystem_inodes_seconds_until_full",
        "sentinel_filesystem_stat_hung",
        "sentinel_systemd_up",
        "sentinel_systemd_unit_stranded",
        "sentinel_systemd_unit_restart_loop",
        "sentinel_systemd_unit_failed",
        "sentinel_systemd_unit_restart_unbounded",
        "sentinel_systemd_unit_start_limit_hit",
        "sentinel_systemd_unit_state",
        "sentinel_systemd_unit_activations_total",
        "sentinel_filesystem_fill_rate_bytes_per_second",
        "sentinel_docker_last_success_timestamp_seconds",
        "sentinel_zombie_processes",
        "sentinel_zombie_processes_reaped_by_init_pending",
        "sentinel_processes_uninterruptible_oldest_seconds",
        "sentinel_deleted_open_files_bytes",
        "sentinel_log_file_growth_bytes_per_second",
        "sentinel_log_seconds_until_filesystem_full",
        "sentinel_kernel_problems_total",
        "sentinel_kernel_hung_tasks_total",
        "sentinel_kernel_oom_kills_total",
        "sentinel_kernel_last_problem_timestamp_seconds",
        "sentinel_kernel_log_readable",
        "sentinel_kubelet_seconds_until_eviction",
        "sentinel_kubelet_eviction_headroom_bytes",
        "sentinel_kubelet_eviction_headroom_inodes",
        "sentinel_kubelet_eviction_signal_disabled",
        "sentinel_kubelet_image_gc_headroom_bytes",
        "sentinel_kubelet_container_log_oversize",
        "sentinel_kubelet_healthz_up",
        "sentinel_collector_success",
        "sentinel_collector_last_success_timestamp_seconds",
        "sentinel_series_dropped",
    ] {
        assert!(used.contains(finding), "no alert uses {finding}");
    }
}

#[test]
fn rules_and_dashboards_use_only_contract_metric_names() {
    let known: BTreeSet<String> = names::CONTRACT.iter().map(|s| s.to_string()).collect();
    let bad = names::unknown(&known, &BTreeSet::new());
    assert!(bad.is_empty(), "not in the metric contract: {bad:#?}");
    assert!(names::used().len() > 40);
}

#[test]
fn dashboards_follow_the_conventions() {
    let files = names::dashboards();
    assert!(!files.is_empty());
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{file}: not JSON: {e}"));
        assert!(
            json["uid"].is_string() && json["title"].is_string(),
            "{file}"
        );
        let vars: BTreeMap<&str, &str> = json["templating"]["list"]
            .as_array()
            .expect("templating")
            .iter()
            .map(|v| (v["name"].as_str().unwrap(), v["type"].as_str().unwrap()))
            .collect();
        assert_eq!(vars.get("datasource"), Some(&"datasource"), "{file}");
        assert_eq!(vars.get("job"), Some(&"query"), "{file}");
        assert_eq!(vars.get("instance"), Some(&"query"), "{file}");

        let mut ids = BTreeSet::new();
        let mut graphs = 0;
        for p in names::panels(&json) {
            let title = p["title"].as_str().unwrap_or("");
            assert!(!title.is_empty(), "{file}: panel without title");
            assert!(
                ids.insert(p["id"].as_u64().expect("panel id")),
                "{file}: duplicate id"
            );
            assert!(p["gridPos"]["w"].is_u64(), "{file}: {title}: no gridPos");
            if p["type"] == "row" {
                continue;
            }
            graphs += 1;
            assert_eq!(
                p["datasource"]["uid"], "${datasource}",
                "{file}: {title}: datasource is not the variable"
            );
            let unit = p["fieldConfig"]["defaults"]["unit"].as_str().unwrap_or("");
            assert!(!unit.is_empty(), "{file}: {title}: no unit");
            let targets = p["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{file}: {title}: no query");
            for t in targets {
                let e = t["expr"].as_str().unwrap();
                assert_eq!(t["datasource"]["uid"], "${datasource}", "{file}: {title}");
                for f in ["rate(", "increase("] {
                    for (i, _) in e.match_indices(f) {
                        let window = e[i..].split('[').nth(1).unwrap_or("");
                        assert!(
                            window.starts_with("$__rate_interval]"),
                            "{file}: {title}: {f} without $__rate_interval: {e}"
                        );
                    }
                }
                for (i, _) in e.match_indices("sentinel_") {
                    let sel = &e[i..];
                    // A recorded series (`instance:sentinel_...:min`) is
                    // selected like the families it reduces.
                    let end = sel
                        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                        .unwrap();
                    assert!(
                        sel[end..].starts_with("{job=~\"$job\", instance=~\"$instance\""),
                        "{file}: {title}: {} not selected by $job/$instance: {e}",
                        &sel[..end]
                    );
                }
            }
        }
        // The node dashboard covers every area; the fleet view is one table and its lists.
        let least = if file.contains("fleet") { 8 } else { 30 };
        assert!(graphs >= least, "{file}: only {graphs} panels");
    }
}

// ------------------------------------------------- the findings table

use node_sentinel::findings::{self, Severity};
use node_sentinel::metrics::Family;

fn severity(s: Severity) -> &'static str {
    s.as_str()
}

#[test]
fn every_alert_has_a_finding_or_is_named_history_only() {
    let mut rules: BTreeSet<(String, String)> = BTreeSet::new();
    for rule in names::rules() {
        rules.insert((
            rule["alert"].as_str().unwrap().to_string(),
            rule["labels"]["severity"].as_str().unwrap().to_string(),
        ));
    }
    let mut table: BTreeSet<(String, String)> = findings::judged_alerts()
        .map(|(a, s, _)| (a.to_string(), severity(s).to_string()))
        .collect();
    table.extend(
        findings::history_only()
            .iter()
            .map(|(a, s, _)| (a.to_string(), severity(*s).to_string())),
    );
    assert_eq!(
        rules, table,
        "alerts/findings_table.rs is out of step with the rules"
    );
}

/// One series of a snapshot: family, labels, value.
type Series = (&'static str, Vec<(&'static str, &'static str)>, f64);

fn fs(mp: &'static str, fstype: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![("device", "/dev/x"), ("fstype", fstype), ("mountpoint", mp)]
}

fn with(
    mut l: Vec<(&'static str, &'static str)>,
    extra: &[(&'static str, &'static str)],
) -> Vec<(&'static str, &'static str)> {
    l.extend_from_slice(extra);
    l
}

/// Snapshots of sick and healthy nodes, with every trap and boundary the
/// review names; values sit on both sides of each threshold.
fn snapshots() -> Vec<(&'static str, Vec<Series>)> {
    let u = |unit: &'static str| vec![("unit", unit)];
    vec![
        (
            "a sick node",
            vec![
                ("sentinel_docker_up", vec![], 0.0),
                ("sentinel_docker_hung", vec![], 0.0),
                ("sentinel_cri_up", vec![], 1.0),
                ("sentinel_cri_hung", vec![], 0.0),
                (
                    "sentinel_cri_runtime_condition",
                    vec![("condition", "NetworkReady")],
                    0.0,
                ),
                (
                    "sentinel_cri_runtime_condition",
                    vec![("condition", "RuntimeReady")],
                    1.0,
                ),
                (
                    "sentinel_cri_container_stuck",
                    vec![("container", "api"), ("namespace", "web"), ("pod", "api-1")],
                    1.0,
                ),
                ("sentinel_filesystem_size_bytes", fs("/", "ext4"), 1000.0),
                ("sentinel_filesystem_avail_bytes", fs("/", "ext4"), 25.0),
                (
                    "sentinel_filesystem_seconds_until_full",
                    fs("/", "ext4"),
                    3000.0,
                ),
                (
                    "sentinel_filesystem_fill_rate_bytes_per_second",
                    fs("/", "ext4"),
                    0.01,
                ),
                ("sentinel_filesystem_files", fs("/", "ext4"), 1000.0),
                ("sentinel_filesystem_files_free", fs("/", "ext4"), 150.0),
                (
                    "sentinel_filesystem_inodes_seconds_until_full",
                    fs("/", "ext4"),
                    10000.0,
                ),
                ("sentinel_filesystem_stat_hung", fs("/mnt/nfs", "nfs4"), 1.0),
                (
                    "sentinel_systemd_unit_stranded",
                    with(u("kubelet.service"), &[("dependency", "docker.service")]),
                    1.0,
                ),
                (
                    "sentinel_systemd_unit_state",
                    with(u("docker.service"), &[("state", "failed")]),
                    1.0,
                ),
                (
                    "sentinel_systemd_unit_start_limit_hit",
                    u("docker.service"),
                    1.0,
                ),
                (
                    "sentinel_systemd_unit_restart_loop",
                    u("protokube.service"),
                    1.0,
                ),
                (
                    "sentinel_systemd_unit_restart_loop",
                    u("user@1000.service"),
                    1.0,
                ),
                (
                    "sentinel_systemd_unit_failed",
                    with(u("docker.service"), &[("result", "start-limit-hit")]),
                    1.0,
                ),
                (
                    "sentinel_systemd_unit_restart_unbounded",
                    u("protokube.service"),
                    1.0,
                ),
                (
                    "sentinel_systemd_unit_restart_unbounded",
                    u("kubelet.service"),
                    1.0,
                ),
                ("sentinel_systemd_up", vec![], 1.0),
                (
                    "sentinel_zombie_processes",
                    vec![("comm", "sh"), ("parent_comm", "docker-healthc")],
                    6.0,
                ),
                (
                    "sentinel_zombie_processes",
                    vec![("comm", "dockerd"), ("parent_comm", "docker-healthc")],
                    4.0,
                ),
                (
                    "sentinel_zombie_processes_reaped_by_init_pending",
                    vec![],
                    1.0,
                ),
                (
                    "sentinel_processes_uninterruptible_oldest_seconds",
                    vec![("comm", "kubelet")],
                    120.0,
                ),
                (
                    "sentinel_processes_uninterruptible_oldest_seconds",
                    vec![("comm", "tar")],
                    400.0,
                ),
                (
                    "sentinel_processes_uninterruptible_oldest_seconds",
                    vec![("comm", "postgres")],
                    119.0,
                ),
                (
                    "sentinel_deleted_open_files_bytes",
                    vec![("comm", "java"), ("mountpoint", "/")],
                    60.0,
                ),
                (
                    "sentinel_log_file_growth_bytes_per_second",
                    vec![("group", "varlog"), ("path", "/var/log/syslog")],
                    2e6,
                ),
                (
                    "sentinel_log_seconds_until_filesystem_full",
                    vec![("group", "varlog"), ("mountpoint", "/")],
                    3000.0,
                ),
                (
                    "sentinel_log_seconds_until_filesystem_full",
                    vec![("group", "journal"), ("mountpoint", "/")],
                    3500.0,
                ),
                (
                    "sentinel_collector_success",
                    vec![("collector", "logs")],
                    0.0,
                ),
                (
                    "sentinel_series_dropped",
                    vec![("collector", "docker")],
                    3.0,
                ),
                ("sentinel_kernel_log_readable", vec![], 0.0),
            ],
        ),
        (
            "a healthy node with the review's traps",
            vec![
                // hung: the hang pages, not "down"
                ("sentinel_docker_up", vec![], 0.0),
                ("sentinel_docker_hung", vec![], 1.0),
                ("sentinel_cri_up", vec![], 0.0),
                ("sentinel_cri_hung", vec![], 1.0),
                (
                    "sentinel_cri_runtime_condition",
                    vec![("condition", "NetworkReady")],
                    0.0,
                ),
                // a static full /boot, a full squashfs, a roomy /
                (
                    "sentinel_filesystem_size_bytes",
                    fs("/boot", "ext4"),
                    1000.0,
                ),
                ("sentinel_filesystem_avail_bytes", fs("/boot", "ext4"), 50.0),
                (
                    "sentinel_filesystem_fill_rate_bytes_per_second",
                    fs("/boot", "ext4"),
                    0.0,
                ),
                (
                    "sentinel_filesystem_seconds_until_full",
                    fs("/boot", "ext4"),
                    f64::INFINITY,
                ),
                (
                    "sentinel_filesystem_size_bytes",
                    fs("/snap/core", "squashfs"),
                    1000.0,
                ),
                (
                    "sentinel_filesystem_avail_bytes",
                    fs("/snap/core", "squashfs"),
                    0.0,
                ),
                ("sentinel_filesystem_size_bytes", fs("/", "ext4"), 1000.0),
                ("sentinel_filesystem_avail_bytes", fs("/", "ext4"), 400.0),
                (
                    "sentinel_filesystem_seconds_until_full",
                    fs("/", "ext4"),
                    86400.0,
                ),
                ("sentinel_filesystem_files", fs("/", "ext4"), 1000.0),
                ("sentinel_filesystem_files_free", fs("/", "ext4"), 50.0),
                ("sentinel_filesystem_stat_hung", fs("/", "ext4"), 0.0),
                // an installed, unused docker.service on a containerd node
                (
                    "sentinel_systemd_unit_state",
                    with(u("crio.service"), &[("state", "inactive")]),
                    1.0,
                ),
                (
                    "sentinel_systemd_unit_restart_loop",
                    u("logrotate.service"),
                    0.0,
                ),
                (
                    "sentinel_systemd_unit_stranded",
                    with(u("a.service"), &[("dependency", "")]),
                    0.0,
                ),
                (
                    "sentinel_zombie_processes",
                    vec![("comm", "sh"), ("parent_comm", "cron")],
                    9.0,
                ),
                (
                    "sentinel_zombie_processes_reaped_by_init_pending",
                    vec![],
                    0.0,
                ),
                // busy postgres: always some backend in D, none for long
                (
                    "sentinel_processes_uninterruptible",
                    vec![("comm", "postgres")],
                    40.0,
                ),
                (
                    "sentinel_processes_uninterruptible_oldest_seconds",
                    vec![("comm", "postgres")],
                    0.3,
                ),
                // a capped journal: not growing
                (
                    "sentinel_log_seconds_until_filesystem_full",
                    vec![("group", "journal"), ("mountpoint", "/")],
                    f64::INFINITY,
                ),
                (
                    "sentinel_log_file_growth_bytes_per_second",
                    vec![("group", "varlog"), ("path", "/var/log/syslog")],
                    1048576.0,
                ),
                (
                    "sentinel_collector_success",
                    vec![("collector", "logs")],
                    1.0,
                ),
                (
                    "sentinel_series_dropped",
                    vec![("collector", "docker")],
                    0.0,
                ),
                ("sentinel_kernel_log_readable", vec![], 1.0),
                ("sentinel_systemd_up", vec![], 0.0),
            ],
        ),
    ]
}

fn promql_labels(labels: &[(&str, &str)]) -> String {
    let mut parts = vec![
        "instance=\"n1\"".to_string(),
        "job=\"node-sentinel\"".to_string(),
    ];
    parts.extend(labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")));
    parts.join(", ")
}

#[test]
fn findings_are_exactly_the_pending_and_firing_alerts_on_the_same_snapshot() {
    let Some(promtool) = promtool() else { return };
    let dir = common::TempDir::new("findings-vs-rules");
    // Rules whose expression is rendered from their row; the others are the
    // same condition on another series (a kernel record's time for a counter's
    // increase) and are checked in src/findings.rs.
    let exact: BTreeSet<(&str, &str)> = findings::judged_alerts()
        .filter(|(_, _, exact)| *exact)
        .map(|(a, s, _)| (a, severity(s)))
        .collect();
    let names: BTreeSet<&str> = exact.iter().map(|(a, _)| *a).collect();
    let selector = names.iter().copied().collect::<Vec<_>>().join("|");
    let eval = 65 * 60;
    for (what, series) in snapshots() {
        let mut families: BTreeMap<&str, Family> = BTreeMap::new();
        for (name, labels, v) in &series {
            families
                .entry(name)
                .or_insert_with(|| Family::gauge(name, ""))
                .push(
                    labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
                    *v,
                );
        }
        let found = findings::evaluate_at(families.values(), eval as f64);
        let mut want: BTreeMap<(&str, &str), usize> = BTreeMap::new();
        for f in &found {
            if exact.contains(&(f.alert, severity(f.severity))) {
                *want.entry((f.alert, severity(f.severity))).or_default() += 1;
            }
        }
        assert!(
            !want.is_empty() || what.starts_with("a healthy"),
            "{what}: {found:#?}"
        );
        let mut yaml = format!(
            "rule_files: [{}]\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n",
            names::rule_file().display()
        );
        for (name, labels, v) in &series {
            let value = if v.is_infinite() {
                "Inf".to_string()
            } else {
                format!("{v}")
            };
            let values = vec![value; 71].join(" ");
            yaml.push_str(&format!(
                "      - series: '{name}{{{}}}'\n        values: '{values}'\n",
                promql_labels(labels)
            ));
        }
        yaml.push_str(&format!(
            "    promql_expr_test:\n      - expr: 'count by (alertname, severity) (ALERTS{{alertname=~\"{selector}\"}})'\n        eval_time: {eval}s\n        exp_samples:\n"
        ));
        for ((alert, sev), n) in &want {
            yaml.push_str(&format!(
                "          - labels: '{{alertname=\"{alert}\", severity=\"{sev}\"}}'\n            value: {n}\n"
            ));
        }
        if want.is_empty() {
            yaml.push_str("          []\n");
        }
        let file = dir.path().join("snapshot.yml");
        std::fs::write(&file, &yaml).unwrap();
        let out = Command::new(&promtool)
            .args(["test", "rules", file.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{what}: the findings {want:?} are not what the rules raise:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ------------------------------------------------- Alertmanager snippet

const SNIPPET: &str = "deploy/alertmanager/alertmanager.yml";

fn amtool() -> Option<std::path::PathBuf> {
    common::require("/usr/bin/amtool")
}

#[test]
fn the_alertmanager_snippet_routes_criticals_to_the_pager_and_warnings_to_tickets() {
    let Some(amtool) = amtool() else { return };
    let amtool = amtool.to_str().unwrap();
    run_ok(amtool, &["check-config", SNIPPET]);
    for (labels, receiver) in [
        (
            &[
                "alertname=SentinelDockerHung",
                "severity=critical",
                "instance=node-a",
            ][..],
            "pager",
        ),
        (
            &[
                "alertname=SentinelFilesystemFillingUp",
                "severity=warning",
                "instance=node-b",
            ][..],
            "tickets",
        ),
        (
            &[
                "alertname=SentinelSeriesDropped",
                "severity=info",
                "instance=node-b",
            ][..],
            "tickets",
        ),
    ] {
        let mut args = vec!["config", "routes", "test", "--config.file", SNIPPET];
        args.extend_from_slice(labels);
        let out = run_ok(amtool, &args);
        assert_eq!(
            out.lines().next().unwrap_or(""),
            receiver,
            "{labels:?}: {out}"
        );
    }
}

/// Alertmanager started by this test, stopped on drop.
struct Alertmanager(std::process::Child);

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn one_nodes_critical_does_not_inhibit_another_nodes_warning() {
    let Some(amtool) = amtool() else { return };
    let Some(am) = common::require("/usr/bin/prometheus-alertmanager") else {
        return;
    };
    let dir = common::TempDir::new("alertmanager");
    let port = common::free_port();
    let log = std::fs::File::create(dir.path().join("am.log")).unwrap();
    let _am = Alertmanager(
        Command::new(am)
            .arg(format!(
                "--config.file={}",
                names::root().join(SNIPPET).display()
            ))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    common::wait_until(
        std::time::Duration::from_secs(30),
        "alertmanager ready",
        || matches!(common::http_get(port, "/-/ready"), Ok((200, _))).then_some(()),
    );
    let url = format!("--alertmanager.url=http://127.0.0.1:{port}");
    // kube-prometheus stamps its own namespace on every scraped series: the
    // trap its default inhibition (equal: [namespace, alertname]) falls into.
    let kube = [
        "namespace=monitoring",
        "pod=node-sentinel-x",
        "job=node-sentinel",
    ];
    let alerts: [&[&str]; 4] = [
        &[
            "alertname=SentinelFilesystemFillingUp",
            "severity=critical",
            "instance=node-a",
            "mountpoint=/",
        ],
        &[
            "alertname=SentinelFilesystemFillingUp",
            "severity=warning",
            "instance=node-a",
            "mountpoint=/",
        ],
        &[
            "alertname=SentinelFilesystemFillingUp",
            "severity=warning",
            "instance=node-b",
            "mountpoint=/",
        ],
        &[
            "alertname=SentinelFilesystemFillingUp",
            "severity=warning",
            "instance=node-a",
            "mountpoint=/data",
        ],
    ];
    for labels in alerts {
        let mut args = vec!["alert", "add", url.as_str()];
        args.extend_from_slice(labels);
        args.extend_from_slice(&kube);
        run_ok(amtool.to_str().unwrap(), &args);
    }
    let state = |instance: &str, severity: &str, mountpoint: &str| -> Option<String> {
        let out = Command::new(&amtool)
            .args([
                "-o",
                "json",
                "alert",
                "query",
                "--active",
                "--inhibited",
                url.as_str(),
            ])
            .output()
            .ok()?;
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        list.as_array()?
            .iter()
            .find(|a| {
                a["labels"]["instance"] == instance
                    && a["labels"]["severity"] == severity
                    && a["labels"]["mountpoint"] == mountpoint
            })
            .and_then(|a| a["status"]["state"].as_str().map(str::to_string))
    };
    common::wait_until(
        std::time::Duration::from_secs(30),
        "node-a's warning on / inhibited by its critical",
        || (state("node-a", "warning", "/").as_deref() == Some("suppressed")).then_some(()),
    );
    assert_eq!(
        state("node-b", "warning", "/").as_deref(),
        Some("active"),
        "another node"
    );
    assert_eq!(
        state("node-a", "warning", "/data").as_deref(),
        Some("active"),
        "another mount"
    );
    assert_eq!(state("node-a", "critical", "/").as_deref(), Some("active"));
}
