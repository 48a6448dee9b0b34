//! The bundled dashboards and the fleet recording rules.
//!
//! Offline: both dashboards match dashboards/generate.py; the recording rules
//! pass `promtool check rules` and their unit tests and select what the alert
//! rules select; the node dashboard passes the 3 a.m. test's structure (a
//! single-node `instance`, the verdict row first and expanded, every stat and
//! table outside collapsed rows); every runbook link names an existing
//! runbook section; the fleet dashboard reads only recorded series and
//! per-node gauges, so it stays cheap at fleet scale.
//!
//! Live: two real exporters (node-a with findings, node-b quiet) scraped by a
//! real Prometheus (Debian's `/usr/bin/prometheus`, 1 s scrape and evaluation)
//! that loads the recording rules as shipped and the alert rules shortened as
//! the drills shorten them (`common::rules`: an alert fires within seconds). node-a's findings are real: a 256 MiB tmpfs filled at
//! 1 MiB/s by a growing log, a Docker socket that accepts connections and
//! never answers (what a SIGSTOPped dockerd's socket does; the exporter's
//! hang threshold cut to 2 s), and a zombie nobody reaps. Every query of both
//! dashboards (annotations included) must parse (Prometheus answers
//! `status: success`; promtool has no query checker), every fleet query must
//! return data with `$instance` = All (`.+`), and the fleet table must rank
//! node-a above node-b. A fleet query may stay empty only when every
//! collector it reads serves nothing in this build (a note says so).
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod common;
#[path = "alerts/names.rs"]
mod names;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::prometheus::{EVERY_SECOND, PROMETHEUS, Prometheus};
use common::{Daemon, Exporter, TempDir};

const JOB: &str = "node-sentinel";
/// How long the live test waits for every fleet query to return data.
const DATA_TIMEOUT: Duration = Duration::from_secs(90);

fn root() -> PathBuf {
    names::root()
}

fn run_in_root(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(root())
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

fn dashboard(file: &str) -> serde_json::Value {
    let path = root().join("dashboards").join(file);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

/// (panel title, expression) of every query of a dashboard, annotations included.
fn queries(d: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in names::panels(d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let title = p["title"].as_str().unwrap_or("").to_string();
            out.push((title, t["expr"].as_str().unwrap().to_string()));
        }
    }
    for a in d["annotations"]["list"].as_array().into_iter().flatten() {
        if let Some(e) = a["expr"].as_str() {
            out.push((format!("annotation {}", a["name"]), e.to_string()));
        }
    }
    out
}

/// Every `level:name:operation` series a query reads.
fn recorded_names_in(expr: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"[a-z_]+:[a-z_]+:[a-z_]+").unwrap();
    re.find_iter(expr).map(|m| m.as_str().to_string()).collect()
}

// ------------------------------------------------------------------ offline

#[test]
fn generated_dashboards_are_up_to_date() {
    if common::require("python3").is_none() {
        return;
    }
    run_in_root("python3", &["dashboards/generate.py", "--check"]);
}

#[test]
fn recording_rules_check_and_pass_their_unit_tests() {
    let Some(promtool) = common::require("/usr/bin/promtool") else {
        return;
    };
    let promtool = promtool.to_str().unwrap();
    let out = run_in_root(
        promtool,
        &["check", "rules", "alerts/node-sentinel.recording.yml"],
    );
    assert!(out.contains("SUCCESS"), "{out}");
    let out = run_in_root(promtool, &["test", "rules", "alerts/tests/recording.yml"]);
    assert!(!out.contains("FAILED"), "{out}");
}

#[test]
fn recording_rules_select_what_the_alert_rules_select() {
    let config = std::fs::read_to_string(root().join("alerts/config.yml")).unwrap();
    let selector = regex::Regex::new(r#"(?m)^selector:\s*'([^']*)'"#)
        .unwrap()
        .captures(&config)
        .expect("alerts/config.yml: selector")[1]
        .to_string();
    let rules = names::recorded();
    assert!(rules.len() >= 10, "{rules:?}");
    // Every vector selector of a raw series (not a recorded one) carries it.
    let sel = regex::Regex::new(r"\b(sentinel_[a-z_]+|up|ALERTS)\{([^}]*)\}").unwrap();
    let bare = regex::Regex::new(r"\b(sentinel_[a-z_]+|up|ALERTS)\b[^{_:]").unwrap();
    let aggregation = regex::Regex::new(r"by \(([^)]*)\)").unwrap();
    for (name, expr) in &rules {
        for c in sel.captures_iter(expr) {
            assert!(
                c[2].contains(&selector),
                "{name}: {}{{{}}} lacks the rules' selector {selector}",
                &c[1],
                &c[2]
            );
        }
        assert!(
            bare.find(expr).is_none(),
            "{name}: a series without a selector: {expr}"
        );
        // One series per node (or per mount/signal for the short lists):
        // every aggregation keeps job and instance.
        for by in aggregation.captures_iter(expr) {
            assert!(
                by[1].starts_with("job, instance"),
                "{name}: aggregates by ({}), dropping job or instance",
                &by[1]
            );
        }
        let level = name.split(':').next().unwrap();
        assert!(
            level.starts_with("instance"),
            "{name}: level is not per instance"
        );
    }
}

#[test]
fn the_node_dashboard_passes_the_3am_structure() {
    let d = dashboard("node-sentinel.json");
    let vars = d["templating"]["list"].as_array().unwrap();
    let instance = vars.iter().find(|v| v["name"] == "instance").unwrap();
    assert_eq!(instance["multi"], false, "one node at a time");
    assert_eq!(instance["includeAll"], false, "no All over 1,000 nodes");

    let panels = d["panels"].as_array().unwrap();
    assert_eq!(panels[0]["type"], "row");
    assert!(panels[0]["title"].as_str().unwrap().starts_with("Verdict"));
    assert_eq!(panels[0]["collapsed"], false);
    // The verdict: every panel between the first row and the next one.
    let verdict: Vec<&serde_json::Value> = panels[1..]
        .iter()
        .take_while(|p| p["type"] != "row")
        .collect();
    let exprs: String = verdict
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    for must in [
        "up{",
        "ALERTS{",
        "sentinel_filesystem_avail_bytes{",
        "sentinel_filesystem_seconds_until_full{",
        "sentinel_kubelet_seconds_until_eviction{",
        "sentinel_docker_hung{",
        "sentinel_cri_hung{",
        "sentinel_systemd_unit_stranded{",
        "sentinel_filesystem_stat_hung{",
        "sentinel_zombie_processes{",
        "sentinel_collector_success{",
    ] {
        assert!(exprs.contains(must), "the verdict row does not read {must}");
    }
    // Nothing but history in collapsed rows: no stat of a finding hides there.
    for r in panels.iter().filter(|p| p["collapsed"] == true) {
        for p in r["panels"].as_array().unwrap() {
            let t = p["title"].as_str().unwrap();
            assert!(
                p["type"] != "stat" || t == "systemd manager" || t == "Kernel log readable",
                "row {:?} hides the stat {t:?}",
                r["title"]
            );
        }
    }
    // Tables name their subject: each keeps a subject label column.
    for p in names::panels(&d)
        .into_iter()
        .filter(|p| p["type"] == "table")
    {
        let title = p["title"].as_str().unwrap();
        let organize = p["transformations"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["id"] == "organize"));
        if let Some(o) = organize {
            let renamed = o["options"]["renameByName"].as_object().unwrap();
            assert!(
                renamed.keys().any(|k| !k.starts_with("Value")),
                "{title}: no subject column"
            );
        }
    }
    // The Kubernetes node row is built to the contract's kubelet names.
    let k = panels
        .iter()
        .find(|p| p["title"] == "Kubernetes node")
        .expect("a Kubernetes node row");
    assert_eq!(k["collapsed"], false);
    let all: String = queries(&d)
        .into_iter()
        .map(|(_, e)| e)
        .collect::<Vec<_>>()
        .join("\n");
    for name in [
        "sentinel_kubelet_eviction_headroom_bytes",
        "sentinel_kubelet_eviction_headroom_inodes",
        "sentinel_kubelet_seconds_until_eviction",
        "sentinel_kubelet_eviction_signal_disabled",
        "group=\"pods\"",
    ] {
        assert!(
            all.contains(name),
            "the node dashboard does not read {name}"
        );
    }
}

#[test]
fn runbook_links_name_existing_sections() {
    let config = std::fs::read_to_string(root().join("alerts/config.yml")).unwrap();
    let base = regex::Regex::new(r"(?m)^runbookBase:\s*(\S+)")
        .unwrap()
        .captures(&config)
        .unwrap()[1]
        .trim_end_matches('/')
        .to_string();
    let mut linked = 0;
    for file in ["node-sentinel.json", "node-sentinel-fleet.json"] {
        let d = dashboard(file);
        let mut links: Vec<String> = d["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["url"].as_str().unwrap().to_string())
            .collect();
        for p in names::panels(&d) {
            for l in p["links"].as_array().into_iter().flatten() {
                links.push(l["url"].as_str().unwrap().to_string());
            }
        }
        for url in links.iter().filter(|u| u.starts_with("http")) {
            let rest = url
                .strip_prefix(&base)
                .unwrap_or_else(|| panic!("{file}: {url} is not under runbookBase {base}"));
            if rest.is_empty() {
                continue;
            }
            let (md, anchor) = rest
                .trim_start_matches('/')
                .split_once('#')
                .unwrap_or((rest.trim_start_matches('/'), ""));
            let path = root().join("docs/runbooks").join(md);
            if !path.exists() {
                // The kubelet runbook lands with the kubelet collector.
                assert_eq!(md, "kubelet.md", "{file}: {url}: no {}", path.display());
                eprintln!("note: {url}: docs/runbooks/kubelet.md is not written yet");
                continue;
            }
            linked += 1;
            if anchor.is_empty() {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                text.lines().any(|l| l.starts_with('#')
                    && l.trim_start_matches('#').trim().to_lowercase() == anchor),
                "{file}: {url}: no heading for #{anchor} in {}",
                path.display()
            );
        }
    }
    assert!(linked >= 30, "only {linked} runbook links");
}

#[test]
fn the_fleet_dashboard_reads_one_series_per_node() {
    let d = dashboard("node-sentinel-fleet.json");
    let recorded = names::recorded();
    let per_node: BTreeSet<&str> = ["sentinel_build_info"].into();
    let raw = regex::Regex::new(r"(^|[^:a-z_])(sentinel_[a-z_]+)").unwrap();
    let qs = queries(&d);
    assert!(qs.len() >= 15, "{qs:?}");
    for (title, expr) in &qs {
        for name in recorded_names_in(expr) {
            assert!(
                recorded.contains_key(&name),
                "{title}: {name} is not recorded by alerts/node-sentinel.recording.yml"
            );
        }
        for c in raw.captures_iter(expr) {
            assert!(
                per_node.contains(&c[2]),
                "{title}: reads {} directly; at fleet scale read a recorded series: {expr}",
                &c[2]
            );
        }
    }
    // Sorted by urgency; the node name links to the node dashboard.
    let table = names::panels(&d)
        .into_iter()
        .find(|p| p["title"] == "Nodes by urgency")
        .unwrap();
    assert_eq!(table["options"]["sortBy"][0]["displayName"], "Urgency");
    assert_eq!(table["options"]["sortBy"][0]["desc"], true);
    let text = table.to_string();
    assert!(text.contains("/d/node-sentinel?var-job=$job&var-instance=${__value.raw}"));
    // Every name the dashboards use is in the contract (recorded names
    // resolve to the families they reduce).
    let known: BTreeSet<String> = names::CONTRACT.iter().map(|s| s.to_string()).collect();
    let bad = names::unknown(&known, &BTreeSet::new());
    assert!(bad.is_empty(), "not in the metric contract: {bad:#?}");
}

// --------------------------------------------------------------------- live

/// The query as Grafana sends it, for `instance` (a node, or `.+` for All).
fn substitute(expr: &str, instance: &str) -> String {
    expr.replace("$job", JOB)
        .replace("$instance", instance)
        .replace("$__rate_interval", "10s")
}

/// Unmounts on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).output();
    }
}

/// `--name=value` for each flag this build has (collectors land one by one).
fn known(help: &str, wanted: &[(&str, String)]) -> Vec<String> {
    wanted
        .iter()
        .filter(|(name, _)| {
            let has = help.contains(&format!("--{name} ")) || help.contains(&format!("--{name}\n"));
            if !has {
                eprintln!("note: this build has no --{name}; not passed");
            }
            has
        })
        .map(|(name, v)| format!("--{name}={v}"))
        .collect()
}

/// Writes 64 KiB every 62.5 ms (1 MiB/s) to `path` until stopped or ENOSPC.
fn fill(path: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let line = b"kubelet[812]: E1201 eviction manager: must evict pod(s) to reclaim ephemeral-storage\n";
        let chunk: Vec<u8> = line.iter().copied().cycle().take(64 << 10).collect();
        let start = Instant::now();
        let mut n = 0u32;
        while !stop.load(Ordering::Relaxed) {
            if f.write_all(&chunk).is_err() {
                return;
            }
            n += 1;
            let due = start + Duration::from_micros(62_500) * n;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    })
}

#[test]
fn every_dashboard_query_runs_on_a_live_prometheus() {
    if !common::require_root() {
        return;
    }
    for p in [PROMETHEUS, "python3", "mount"] {
        if common::require(p).is_none() {
            return;
        }
    }
    let started = Instant::now();
    let tmp = TempDir::new("dashboards");
    let dir = tmp.path().to_path_buf();

    // node-a's findings, made for real.
    let fs = dir.join("fs");
    std::fs::create_dir_all(&fs).unwrap();
    common::run(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            "size=256m",
            "tmpfs",
            fs.to_str().unwrap(),
        ],
    );
    let _unmount = Mounted(fs.clone());
    std::fs::create_dir_all(fs.join("logs")).unwrap();
    std::fs::create_dir_all(fs.join("kubelet")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = fill(fs.join("logs/app.log"), stop.clone());
    // A socket that accepts connections and never answers: connect() completes
    // in the kernel's backlog, as it does for a stopped dockerd.
    let docker_sock = dir.join("docker.sock");
    let _hung = std::os::unix::net::UnixListener::bind(&docker_sock).unwrap();
    let _zombie = Daemon::spawn(
        "zombie maker",
        Command::new("python3").args([
            "-c",
            "import os, time\nif os.fork() == 0:\n    os._exit(0)\ntime.sleep(600)\n",
        ]),
        &dir.join("zombie.log"),
    );
    let kubelet_config = dir.join("kubelet.yaml");
    std::fs::write(
        &kubelet_config,
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
         evictionHard:\n  nodefs.available: \"30%\"\n  imagefs.available: \"15%\"\n",
    )
    .unwrap();

    let help = String::from_utf8_lossy(
        &Command::new(common::binary())
            .arg("--help")
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    let closed_port = common::free_port();
    let a_args = known(
        &help,
        &[
            (
                "collector.docker.host",
                format!("unix://{}", docker_sock.display()),
            ),
            ("collector.docker.interval", "1s".into()),
            ("collector.docker.hang-threshold", "2s".into()),
            ("collector.filesystem.interval", "1s".into()),
            ("collector.filesystem.trend-window", "30s".into()),
            ("collector.processes.interval", "1s".into()),
            ("collector.systemd.interval", "1s".into()),
            ("collector.logs.interval", "1s".into()),
            ("collector.logs.trend-window", "30s".into()),
            (
                "collector.logs.path",
                format!("app={}/logs/*", fs.display()),
            ),
            (
                "collector.kubelet.config",
                kubelet_config.display().to_string(),
            ),
            (
                "collector.kubelet.root-dir",
                fs.join("kubelet").display().to_string(),
            ),
            (
                "collector.kubelet.healthz-url",
                format!("http://127.0.0.1:{closed_port}/healthz"),
            ),
        ],
    );
    let node_a = Exporter::start(&a_args.iter().map(String::as_str).collect::<Vec<_>>());
    // node-b: quiet, no Docker, no mounts, no processes.
    let node_b = Exporter::start(&[
        "--no-collector.docker",
        "--no-collector.processes",
        "--no-collector.logs",
        "--collector.filesystem.mount-points-exclude=.*",
    ]);

    let rules = std::fs::read_to_string(names::rule_file()).unwrap();
    std::fs::write(dir.join("rules.yml"), common::rules::shortened(&rules)).unwrap();
    let prom = Prometheus::start(
        &dir,
        &format!(
            "{EVERY_SECOND}rule_files: [{rules}, {recording}]\n\
             scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n\
             \x20     - targets: ['127.0.0.1:{a}']\n        labels: {{instance: node-a, node: node-a}}\n\
             \x20     - targets: ['127.0.0.1:{b}']\n        labels: {{instance: node-b, node: node-b}}\n",
            rules = dir.join("rules.yml").display(),
            recording = names::recording_file().display(),
            a = node_a.port,
            b = node_b.port,
        ),
    );
    common::wait_until(Duration::from_secs(30), "both targets up", || {
        (prom.value(&format!("sum(up{{job=\"{JOB}\"}})")) == Some(2.0)).then_some(())
    });
    // Rules load at start; a rule that does not parse is in the log, not an error here.
    let groups = prom.api("/api/v1/rules").to_string();
    assert!(
        groups.contains("node-sentinel.fleet"),
        "the recording rules did not load:\n{}",
        prom.log()
    );

    // Which collectors serve anything (the kubelet collector may not be built yet).
    let served: BTreeSet<String> = common::wait_until(Duration::from_secs(10), "names", || {
        let names = prom.try_api("/api/v1/label/__name__/values").ok()?;
        Some(
            names
                .as_array()?
                .iter()
                .filter_map(|n| n.as_str())
                .filter(|n| n.starts_with("sentinel_"))
                .map(|n| names::collector_of(n).to_string())
                .collect(),
        )
    });
    eprintln!("collectors serving: {served:?}");

    // Every query of both dashboards parses, for one node and for All.
    let node = dashboard("node-sentinel.json");
    let fleet = dashboard("node-sentinel-fleet.json");
    let mut invalid = Vec::new();
    for (file, d) in [("node", &node), ("fleet", &fleet)] {
        for (title, expr) in queries(d) {
            for instance in ["node-a", ".+"] {
                if let Err(e) = prom.try_query(&substitute(&expr, instance)) {
                    invalid.push(format!("{file} {title:?} ({instance}): {e}"));
                }
            }
        }
    }
    assert!(
        invalid.is_empty(),
        "queries Prometheus rejects: {invalid:#?}"
    );

    // Every fleet query returns data once the findings are in, except one
    // that reads only collectors serving nothing in this build.
    let unserved = |q: &str| {
        let from: BTreeSet<&str> = names::tokens(q)
            .iter()
            .map(|n| names::collector_of(n))
            .filter(|c| *c != "self")
            .collect();
        !from.is_empty() && from.iter().all(|c| !served.contains(*c))
    };
    let mut pending: BTreeMap<String, String> = BTreeMap::new();
    for (i, (title, expr)) in queries(&fleet).into_iter().enumerate() {
        let q = substitute(&expr, ".+");
        if unserved(&q) {
            eprintln!(
                "note: fleet panel {title:?} not required to have data: its collector serves nothing in this build"
            );
        } else {
            pending.insert(format!("{i:02} {title}"), q);
        }
    }
    let deadline = Instant::now() + DATA_TIMEOUT;
    while !pending.is_empty() && Instant::now() < deadline {
        pending.retain(|_, q| prom.try_query(q).map_or(true, |r| r.is_empty()));
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "fleet queries answered with data after {:.0}s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        pending.is_empty(),
        "fleet queries without data after {DATA_TIMEOUT:?}: {pending:#?}\nnode-a exporter:\n{}",
        node_a.logs()
    );

    // With the data in: a table that merges several queries joins their rows
    // on the labels, so each query drops the series name and keeps the same
    // labels as the others.
    let mut unmergeable = Vec::new();
    for d in [&node, &fleet] {
        for p in names::panels(d) {
            let merges = p["transformations"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["id"] == "merge"));
            if !merges {
                continue;
            }
            let mut keys: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
            for t in p["targets"].as_array().unwrap() {
                let q = substitute(t["expr"].as_str().unwrap(), "node-a");
                for s in prom.query(&q) {
                    let k: Vec<String> = s["metric"].as_object().unwrap().keys().cloned().collect();
                    keys.entry(k)
                        .or_default()
                        .push(t["refId"].as_str().unwrap().to_string());
                }
            }
            if keys.len() > 1 || keys.keys().any(|k| k.iter().any(|l| l == "__name__")) {
                unmergeable.push(format!("{:?}: {keys:?}", p["title"]));
            }
        }
    }
    assert!(
        unmergeable.is_empty(),
        "merged tables whose queries do not join: {unmergeable:#?}"
    );

    // The fleet table ranks node-a (a hung runtime, a filling disk, a zombie) first.
    let value = |q: &str, inst: &str| -> f64 {
        let r = prom.query(&q.replace("INST", inst));
        r.first()
            .and_then(|s| s["value"][1].as_str()?.parse().ok())
            .unwrap_or_else(|| panic!("{q} for {inst}: {r:?}"))
    };
    let urgency = "instance:sentinel_urgency:score{instance=\"INST\"}";
    let (ua, ub) = (value(urgency, "node-a"), value(urgency, "node-b"));
    eprintln!("urgency: node-a {ua:.3}, node-b {ub:.3}");
    assert!(
        ua >= 3.0 && ua > ub,
        "node-a {ua} should outrank node-b {ub}"
    );
    assert_eq!(
        value(
            "instance:sentinel_runtime_state:max{instance=\"INST\"}",
            "node-a"
        ),
        2.0,
        "Docker reads hung"
    );
    let soonest = value(
        "instance:sentinel_seconds_until_full_or_eviction:min{instance=\"INST\"}",
        "node-a",
    );
    assert!(
        soonest.is_finite() && soonest < 3600.0,
        "the tmpfs (256 MiB at 1 MiB/s) fills within the hour: {soonest}"
    );
    assert!(
        value(
            "instance:sentinel_zombie_processes:sum{instance=\"INST\"}",
            "node-a"
        ) >= 1.0
    );
    let first = prom.query(&substitute(
        "sort_desc(instance:sentinel_urgency:score{job=~\"$job\", instance=~\"$instance\"})",
        ".+",
    ));
    assert_eq!(first[0]["metric"]["instance"], "node-a");

    // What the recording rules save: raw series of node-a against the
    // recorded ones the fleet view reads.
    let count = |q: &str| value(&format!("count({q})"), "");
    eprintln!(
        "node-a: {} raw sentinel_ series, {} recorded per-node series",
        count(r#"{__name__=~"sentinel_.+", instance="node-a"}"#),
        count(r#"{__name__=~"instance[a-z_]*:sentinel_.+", instance="node-a"}"#)
    );

    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    eprintln!(
        "live dashboard check took {:.0}s",
        started.elapsed().as_secs_f64()
    );
}
