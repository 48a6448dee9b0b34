//! The standard `process_*` self-metrics, as every Prometheus client library
//! exports them, read from this process's own `/proc/self` (not
//! `--path.procfs`, which is the host's). They show the exporter's own
//! trouble coming: `process_open_fds` against `process_max_fds` (connection
//! floods), `process_threads` (threads stranded on hung mounts),
//! `process_start_time_seconds` (restarts behind gaps).
//!
//! Read per scrape: `/proc/self/stat` and the size of `/proc/self/fd`,
//! through a handle opened once.

use std::sync::OnceLock;

use procfs::process::Process;

use crate::metrics::Family;

/// The seven `process_*` families; any that cannot be read are left out.
pub fn families() -> Vec<Family> {
    let mut out = Vec::with_capacity(7);
    let mut gauge = |name: &'static str, help: &'static str, value: Option<f64>| {
        if let Some(v) = value {
            let mut f = Family::gauge(name, help);
            f.push(vec![], v);
            out.push(f);
        }
    };
    static ME: OnceLock<Option<Process>> = OnceLock::new();
    let me = ME.get_or_init(|| Process::myself().ok()).as_ref();
    let stat = me.and_then(|p| p.stat().ok());
    let ticks = procfs::ticks_per_second() as f64;
    gauge(
        "process_max_fds",
        "Maximum number of open file descriptors.",
        rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .map(|n| n as f64),
    );
    gauge(
        "process_open_fds",
        "Number of open file descriptors.",
        me.and_then(|p| p.fd_count().ok()).map(|n| n as f64),
    );
    gauge(
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        stat.as_ref()
            .map(|s| s.rss as f64 * procfs::page_size() as f64),
    );
    gauge(
        "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        stat.as_ref().and_then(|s| {
            let boot = procfs::boot_time_secs().ok()? as f64;
            Some(boot + s.starttime as f64 / ticks)
        }),
    );
    gauge(
        "process_threads",
        "Number of OS threads in the process.",
        stat.as_ref().map(|s| s.num_threads as f64),
    );
    gauge(
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        stat.as_ref().map(|s| s.vsize as f64),
    );
    if let Some(s) = &stat {
        let mut cpu = Family::counter(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
        );
        cpu.push(vec![], (s.utime + s.stime) as f64 / ticks);
        out.insert(0, cpu);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_seven_from_proc_self() {
        let families = families();
        let names: Vec<_> = families.iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "process_cpu_seconds",
                "process_max_fds",
                "process_open_fds",
                "process_resident_memory_bytes",
                "process_start_time_seconds",
                "process_threads",
                "process_virtual_memory_bytes",
            ]
        );
        let value =
            |name: &str| match families.iter().find(|f| f.name == name).unwrap().samples[0].value {
                crate::metrics::Value::Number(v) => v,
                _ => unreachable!(),
            };
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_max_fds") >= value("process_open_fds"));
        assert!(value("process_resident_memory_bytes") > 1e6);
        let now = crate::collector::unix_now();
        let start = value("process_start_time_seconds");
        assert!(
            start <= now + 1.0 && start > now - 86_400.0,
            "{start} vs {now}"
        );
        assert!(value("process_threads") >= 1.0);
    }
}
