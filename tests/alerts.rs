//! The bundled alert rules and dashboards, checked offline: generated files
//! match their generators, `promtool check rules` and `promtool test rules`
//! (Debian's prometheus package) pass, every alert has a pending and a firing
//! unit test, a severity, a static summary, a templated description and a
//! runbook_url whose file and anchor exist, dashboards follow the conventions
//! (datasource/job/instance variables, units, `$__rate_interval`), and every
//! `sentinel_*` name they use is in the metric contract. tests/drills.rs
//! checks the same names against what real exporters serve.
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
                            labels.contains_key(key) || name == "SentinelExporterAbsent",
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
            desc.contains("{{ $labels.instance }}") || name == "SentinelExporterAbsent",
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
