//! The exposition is checked by independent parsers: Python prometheus_client's
//! OpenMetrics parser (Debian's python3-prometheus-client), which rejects
//! anything outside the spec (bad counters, duplicate series, missing # EOF),
//! for what Prometheus asks for; and `promtool check metrics`, which lints
//! the classic text format 0.0.4, for what every other client gets.
#![allow(clippy::disallowed_methods)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::Exporter;

const PARSE: &str = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
families = list(text_string_to_metric_families(sys.stdin.read()))
names = {f.name for f in families}
series = sum(len(f.samples) for f in families)
print(len(families), series)
for n in sorted(names):
    print(n)
"#;

/// Parse `text` with Python's OpenMetrics parser; returns the family names.
fn parse_with_python(text: &str) -> Option<Vec<String>> {
    let python = common::require("/usr/bin/python3")?;
    let probe = Command::new(&python)
        .args(["-c", "import prometheus_client"])
        .status()
        .ok()?;
    if !probe.success() {
        assert!(
            !common::ci(),
            "python3-prometheus-client is required under CI"
        );
        eprintln!("SKIP: python3-prometheus-client not installed");
        return None;
    }
    let mut child = Command::new(python)
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("python output");
    assert!(
        out.status.success(),
        "OpenMetrics parser rejected the output: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .map(str::to_string)
            .collect(),
    )
}

#[test]
fn golden_file_parses() {
    let golden = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/filesystem/golden.txt"
    ))
    .expect("golden");
    if let Some(names) = parse_with_python(&golden) {
        assert!(
            names
                .iter()
                .any(|n| n == "sentinel_filesystem_seconds_until_full"),
            "{names:?}"
        );
    }
}

/// Run `promtool check metrics` on `text`; None when promtool is missing.
fn promtool_check(text: &str) -> Option<()> {
    let promtool = common::require("promtool")?;
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool output");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}\n{text}"
    );
    Some(())
}

/// GET /metrics with curl and these headers; `--compressed` decodes gzip.
fn curl_metrics(port: u16, args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-D", "/dev/stderr"])
        .args(args)
        .arg(format!("http://127.0.0.1:{port}/metrics"))
        .output()
        .expect("curl");
    assert!(out.status.success(), "{out:?}");
    (
        String::from_utf8_lossy(&out.stderr).to_ascii_lowercase(),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

fn every_collector() -> Exporter {
    let exporter = Exporter::start(&[
        "--collector.docker.interval=1s",
        "--collector.filesystem.interval=1s",
        "--collector.systemd.interval=1s",
        "--collector.processes.interval=1s",
        "--collector.logs.interval=1s",
    ]);
    exporter.wait_for(
        std::time::Duration::from_secs(20),
        "a successful round of every collector",
        |m| {
            let collectors = m.find("sentinel_collector_success", &[]).len();
            (collectors > 0
                && m.find("sentinel_collector_last_success_timestamp_seconds", &[])
                    .len()
                    == collectors)
                .then_some(())
        },
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    exporter
}

#[test]
fn text_format_passes_promtool_and_gzip_openmetrics_parses() {
    if common::require("curl").is_none() {
        return;
    }
    let exporter = every_collector();
    // No Accept header (or `*/*`): the classic text format.
    let (head, text) = curl_metrics(exporter.port, &[]);
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(
        !text.contains("# EOF") && !text.contains("# UNIT"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE process_cpu_seconds_total counter\n"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE sentinel_build_info gauge\n"),
        "{text}"
    );
    promtool_check(&text);
    // What Prometheus asks for, gzipped as it asks for it, still parses.
    let (head, openmetrics) = curl_metrics(
        exporter.port,
        &[
            "--compressed",
            "-H",
            "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        ],
    );
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert!(head.contains("application/openmetrics-text"), "{head}");
    if let Some(names) = parse_with_python(&openmetrics) {
        for want in [
            "process_cpu_seconds",
            "process_open_fds",
            "sentinel_build_info",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
        }
    }
}

#[test]
fn live_scrape_with_every_collector_parses() {
    // Every collector has finished a successful round.
    let exporter = every_collector();
    let (status, text) = common::http_get(exporter.port, "/metrics").expect("scrape");
    assert_eq!(status, 200);
    if let Some(names) = parse_with_python(&text) {
        for want in [
            "sentinel_build_info",
            "sentinel_collector_success",
            "sentinel_series_dropped",
            "sentinel_filesystem_size_bytes",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from {names:?}\nexporter log:\n{}",
                exporter.logs()
            );
        }
    }
}
