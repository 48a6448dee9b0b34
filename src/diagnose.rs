//! `node-sentinel diagnose`: the enabled collectors watch the node for a few
//! seconds, then the findings are printed in words for the person on the box.
//!
//! The findings are the bundled alert rules' own conditions (see
//! [`crate::findings`]), so the exit code is 3 exactly when a bundled
//! critical or warning alert would be pending or firing on what the exporter
//! sees; info alerts are printed and leave it 0. Alerts that need
//! Prometheus's history are named at the end, so "nothing found" is not read
//! as "no alert can fire".

use std::fmt::Write;
use std::time::Duration;

use crate::collectors;
use crate::config::Cli;
use crate::findings::{self, Severity};
use crate::scheduler::Scheduler;
use crate::store::Status;

/// Watch for `watch`, then return the report and whether anything critical or
/// warning was found.
pub async fn run(cli: &Cli, watch: Duration) -> (String, bool) {
    let mut scheduler = Scheduler::new();
    collectors::start(&cli.collectors, &cli.paths, &mut scheduler);
    let store = scheduler.store();
    tokio::time::sleep(watch).await;
    let current: Vec<_> = store.slots().iter().map(|s| s.current()).collect();
    drop(scheduler);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "node-sentinel {} diagnose: watched for {:?}",
        crate::build_info::VERSION,
        watch
    );
    for (slot, p) in store.slots().iter().zip(&current) {
        let status = match (p.status(), &p.last_error) {
            (Status::Failing, Some(e)) => format!("{}: {e}", Status::Failing.word()),
            (status, _) => status.word().to_string(),
        };
        let _ = writeln!(out, "  collector {:<11} {status}", slot.name);
    }
    let found = findings::evaluate(current.iter().flat_map(|p| p.families.iter()));
    if found.is_empty() {
        let _ = writeln!(out, "Nothing wrong found.");
    }
    for f in &found {
        let _ = writeln!(
            out,
            "{:<9} {} [{}]",
            f.severity.as_str().to_uppercase(),
            f.text,
            f.alert
        );
    }
    let _ = writeln!(
        out,
        "Fill and growth rates need a tenth of their trend window ({:?} for filesystems, {:?} for logs) of samples: a running exporter reports them.",
        cli.collectors.filesystem.trend_window / 10,
        cli.collectors.logs.trend_window / 10
    );
    let mut history: Vec<&str> = findings::history_only()
        .iter()
        .map(|(n, _, _)| *n)
        .collect();
    history.dedup();
    let _ = writeln!(
        out,
        "Alerts only Prometheus can judge (they need its history): {}.",
        history.join(", ")
    );
    // Info alerts are configuration hygiene: shown, but not a finding to act on.
    let serious = found.iter().any(|f| f.severity != Severity::Info);
    (out, serious)
}
