//! The exposition is checked by an independent parser: Python prometheus_client's
//! OpenMetrics parser (Debian's python3-prometheus-client), which rejects
//! anything outside the spec (bad counters, duplicate series, missing # EOF).
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

#[test]
fn live_scrape_with_every_collector_parses() {
    let exporter = Exporter::start(&[
        "--collector.docker.interval=1s",
        "--collector.filesystem.interval=1s",
        "--collector.systemd.interval=1s",
        "--collector.processes.interval=1s",
        "--collector.logs.interval=1s",
    ]);
    // Every collector has finished a successful round.
    exporter.wait_for(
        std::time::Duration::from_secs(20),
        "a successful round of every collector",
        |m| {
            (m.find("sentinel_collector_last_success_timestamp_seconds", &[])
                .len()
                == 5)
                .then_some(())
        },
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
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
