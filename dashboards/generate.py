#!/usr/bin/env python3
"""Generate dashboards/node-sentinel.json (Grafana) from the panel list below.

Run without arguments to rewrite the JSON, with --check to fail if the
committed file is out of date (the test suite does this). Needs only python3.

Layout: an overview row that answers "is this node about to die, and why" at
a glance, then one collapsed drill-down row per area. Every query selects
job=~"$job", instance=~"$instance"; rates use $__rate_interval.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "node-sentinel.json")
S = 'job=~"$job", instance=~"$instance"'
# Some unit series exist only where they can be non-zero (failed only while
# failed, stranded only for units with a Requires=/BindsTo=): a count of
# them falls back to 0 for every node whose systemd collector answers.
ZERO_BY_INSTANCE = f" or sum by (instance) (sentinel_systemd_up{{{S}}}) * 0"
DS = {"type": "prometheus", "uid": "${datasource}"}
WEEK = 7 * 86400

_next_id = [0]


def nid():
    _next_id[0] += 1
    return _next_id[0]


def target(expr, legend="", ref="A", instant=False):
    t = {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref}
    if instant:
        t["instant"] = True
        t["range"] = False
    return t


def panel(kind, title, desc, unit, targets, w, h, x, y, **extra):
    p = {
        "id": nid(),
        "type": kind,
        "title": title,
        "description": desc,
        "datasource": DS,
        "gridPos": {"h": h, "w": w, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [target(*t) if isinstance(t, tuple) else target(t) for t in targets],
    }
    if kind == "timeseries":
        p["options"] = {"legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull", "max"]},
                        "tooltip": {"mode": "multi"}}
    for k, v in extra.items():
        if k == "thresholds":
            p["fieldConfig"]["defaults"]["thresholds"] = {"mode": "absolute", "steps": v}
            p["fieldConfig"]["defaults"]["color"] = {"mode": "thresholds"}
        elif k == "mappings":
            p["fieldConfig"]["defaults"]["mappings"] = v
        else:
            p[k] = v
    return p


def steps(*pairs):
    return [{"color": c, "value": v} for v, c in pairs]


OKBAD = [{"type": "value", "options": {"0": {"text": "no", "color": "green"}, "1": {"text": "YES", "color": "red"}}}]
UPDOWN = [{"type": "value", "options": {"1": {"text": "up", "color": "green"}, "0": {"text": "DOWN", "color": "red"}}}]
RED_IF_ANY = steps((None, "green"), (1, "red"))


def row(title, y, panels, collapsed=True):
    return {"id": nid(), "type": "row", "title": title, "collapsed": collapsed,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": panels if collapsed else []}


def overview(y):
    y0 = y + 1
    stats = [
        panel("stat", "Docker", "sentinel_docker_up: the latest ping answered in time.", "none",
              [(f"sentinel_docker_up{{{S}}}", "{{instance}}", "A", True)], 3, 4, 0, y0, mappings=UPDOWN),
        panel("stat", "Docker hung", "sentinel_docker_hung: the socket accepts connections but a probe is unanswered past the hang threshold.",
              "none", [(f"sentinel_docker_hung{{{S}}}", "{{instance}}", "A", True)], 3, 4, 3, y0, mappings=OKBAD),
        panel("stat", "Stranded units", "Units stopped by a dependency restart that systemd will not start again (the dependency-restart trap).",
              "none", [(f"sum by (instance) (sentinel_systemd_unit_stranded{{{S}}}){ZERO_BY_INSTANCE}", "{{instance}}", "A", True)], 3, 4, 6, y0, thresholds=RED_IF_ANY),
        panel("stat", "Looping units", "Units whose restarts or activations reached the loop threshold within the loop window.",
              "none", [(f"sum by (instance) (sentinel_systemd_unit_restart_loop{{{S}}})", "{{instance}}", "A", True)], 3, 4, 9, y0, thresholds=RED_IF_ANY),
        panel("stat", "Failed units", "Units in the failed state now.",
              "none", [(f"sum by (instance) (sentinel_systemd_unit_failed{{{S}}}){ZERO_BY_INSTANCE}", "{{instance}}", "A", True)], 3, 4, 12, y0, thresholds=RED_IF_ANY),
        panel("stat", "Zombies", "Defunct processes now, and those whose parent is PID 1 (init not reaping).", "none",
              [(f"sum by (instance) (sentinel_zombie_processes{{{S}}})", "zombies", "A", True),
               (f"sentinel_zombie_processes_reaped_by_init_pending{{{S}}}", "orphans init has not reaped", "B", True)],
              3, 4, 15, y0, thresholds=steps((None, "green"), (10, "orange"))),
        panel("stat", "D state", "Processes in uninterruptible sleep now (hung mounts, storage).", "none",
              [(f"sum by (instance) (sentinel_processes_uninterruptible{{{S}}})", "{{instance}}", "A", True)], 3, 4, 18, y0,
              thresholds=steps((None, "green"), (1, "orange"))),
        panel("stat", "Collectors failing", "Collectors whose latest run failed: their findings are missing.", "none",
              [(f"count by (instance) (sentinel_collector_success{{{S}}} == 0) or sum by (instance) (sentinel_collector_success{{{S}}} * 0)", "{{instance}}", "A", True)],
              3, 4, 21, y0, thresholds=RED_IF_ANY),
    ]
    y1 = y0 + 4
    graphs = [
        panel("bargauge", "Time until full, per mount (capped at 7d)",
              "sentinel_filesystem_seconds_until_full at the fill rate of the trend window; 7d means 7 days or more, or not filling.",
              "s", [(f"sort(clamp_max(sentinel_filesystem_seconds_until_full{{{S}}}, {WEEK}))", "{{mountpoint}}", "A", True)],
              8, 8, 0, y1, thresholds=steps((None, "red"), (14400, "orange"), (86400, "green")),
              options={"displayMode": "lcd", "orientation": "horizontal", "reduceOptions": {"calcs": ["lastNotNull"]}}),
        panel("timeseries", "Docker API p99 latency", "p99 of answered probes per operation, and the age of any unanswered probe (grows while hung).",
              "s", [(f"histogram_quantile(0.99, sum by (operation, le) (rate(sentinel_docker_probe_duration_seconds_bucket{{{S}}}[$__rate_interval])))", "p99 {{operation}}", "A"),
                    (f"max by (operation) (sentinel_docker_probe_in_flight_seconds{{{S}}}) > 0", "unanswered {{operation}}", "B")],
              8, 8, 8, y1),
        panel("bargauge", "Fastest-growing log files", "The top log files by growth over the logs trend window.",
              "Bps", [(f"topk(10, sentinel_log_file_growth_bytes_per_second{{{S}}})", "{{path}}", "A", True)],
              8, 8, 16, y1, thresholds=steps((None, "green"), (102400, "orange"), (1048576, "red")),
              options={"displayMode": "lcd", "orientation": "horizontal", "reduceOptions": {"calcs": ["lastNotNull"]}}),
        panel("timeseries", "Space available per mount", "statvfs available space as a share of the size.",
              "percent", [(f"100 * sentinel_filesystem_avail_bytes{{{S}}} / sentinel_filesystem_size_bytes{{{S}}}", "{{mountpoint}}", "A")],
              8, 7, 0, y1 + 8, thresholds=steps((None, "red"), (5, "orange"), (20, "green"))),
        panel("timeseries", "Space held by deleted-but-open files", "Space df counts and du does not, by mount and holding command.",
              "bytes", [(f"sum by (mountpoint, comm) (sentinel_deleted_open_files_bytes{{{S}}})", "{{comm}} on {{mountpoint}}", "A")],
              8, 7, 8, y1 + 8),
        panel("timeseries", "Collector data age", "Seconds since each collector last succeeded (saw-tooth of its interval when healthy).",
              "s", [(f"time() - sentinel_collector_last_success_timestamp_seconds{{{S}}}", "{{collector}}", "A")],
              8, 7, 16, y1 + 8),
    ]
    return [row("Overview: is this node about to die, and why", y, [], collapsed=False)] + stats + graphs, y1 + 15


def docker_row(y):
    return row("Docker", y, [
        panel("timeseries", "Probe latency p50 / p99", "From the sentinel_docker_probe_duration_seconds histogram, per operation.", "s",
              [(f"histogram_quantile(0.5, sum by (operation, le) (rate(sentinel_docker_probe_duration_seconds_bucket{{{S}}}[$__rate_interval])))", "p50 {{operation}}", "A"),
               (f"histogram_quantile(0.99, sum by (operation, le) (rate(sentinel_docker_probe_duration_seconds_bucket{{{S}}}[$__rate_interval])))", "p99 {{operation}}", "B")],
              12, 8, 0, y + 1),
        panel("timeseries", "Unanswered probe age", "sentinel_docker_probe_in_flight_seconds: 0 when none is outstanding.", "s",
              [(f"sentinel_docker_probe_in_flight_seconds{{{S}}}", "{{operation}}", "A")], 12, 8, 12, y + 1),
        panel("timeseries", "Probe failures", "By operation and reason.", "reqps",
              [(f"sum by (operation, reason) (rate(sentinel_docker_probe_failures_total{{{S}}}[$__rate_interval]))", "{{operation}} {{reason}}", "A")],
              6, 8, 0, y + 9),
        panel("timeseries", "Containers by state", "", "none",
              [(f"sentinel_docker_containers{{{S}}}", "{{state}}", "A")], 6, 8, 6, y + 9),
        panel("timeseries", "Daemon uptime", "Time since the daemon process started; drops to 0 at each restart.", "s",
              [(f"time() - sentinel_docker_daemon_start_time_seconds{{{S}}}", "uptime", "A")], 6, 8, 12, y + 9),
        panel("timeseries", "Daemon restarts", "Restarts seen (PID or start time changed) per $__rate_interval.", "none",
              [(f"increase(sentinel_docker_daemon_restarts_total{{{S}}}[$__rate_interval])", "restarts", "A")], 6, 8, 18, y + 9),
        panel("table", "Docker version", "", "none",
              [(f"sentinel_docker_info{{{S}}}", "", "A", True)], 24, 4, 0, y + 17),
    ])


def cri_row(y):
    return row("Container runtime (CRI)", y, [
        panel("timeseries", "CRI call latency p50 / p99", "From the sentinel_cri_probe_duration_seconds histogram, per operation.", "s",
              [(f"histogram_quantile(0.5, sum by (operation, le) (rate(sentinel_cri_probe_duration_seconds_bucket{{{S}}}[$__rate_interval])))", "p50 {{operation}}", "A"),
               (f"histogram_quantile(0.99, sum by (operation, le) (rate(sentinel_cri_probe_duration_seconds_bucket{{{S}}}[$__rate_interval])))", "p99 {{operation}}", "B")],
              12, 8, 0, y + 1),
        panel("timeseries", "Unanswered CRI call age", "sentinel_cri_probe_in_flight_seconds: 0 when none is outstanding; container_stats is one container's shim.", "s",
              [(f"sentinel_cri_probe_in_flight_seconds{{{S}}}", "{{operation}}", "A")], 12, 8, 12, y + 1),
        panel("timeseries", "CRI call failures", "By operation and reason.", "reqps",
              [(f"sum by (operation, reason) (rate(sentinel_cri_probe_failures_total{{{S}}}[$__rate_interval]))", "{{operation}} {{reason}}", "A")],
              6, 8, 0, y + 9),
        panel("timeseries", "Pods and containers by state", "", "none",
              [(f"sentinel_cri_pod_sandboxes{{{S}}}", "pods {{state}}", "A"),
               (f"sentinel_cri_containers{{{S}}}", "containers {{state}}", "B")], 6, 8, 6, y + 9),
        panel("timeseries", "Runtime conditions and stuck containers", "Status conditions (1 = true) and containers whose shim is hung.", "none",
              [(f"sentinel_cri_runtime_condition{{{S}}}", "{{condition}}", "A"),
               (f"sentinel_cri_container_stuck{{{S}}} == 1", "stuck {{namespace}}/{{pod}}/{{container}}", "B")], 6, 8, 12, y + 9),
        panel("timeseries", "Runtime uptime and restarts", "Time since the runtime process started (drops at each restart), and restarts seen per $__rate_interval.", "s",
              [(f"time() - sentinel_cri_runtime_start_time_seconds{{{S}}}", "uptime", "A"),
               (f"increase(sentinel_cri_runtime_restarts_total{{{S}}}[$__rate_interval])", "restarts", "B")], 6, 8, 18, y + 9),
        panel("timeseries", "Image filesystem used", "sentinel_cri_image_filesystem_used_bytes, from ImageFsInfo.", "bytes",
              [(f"sentinel_cri_image_filesystem_used_bytes{{{S}}}", "{{mountpoint}}", "A")], 12, 4, 0, y + 17),
        panel("table", "Runtime version", "", "none",
              [(f"sentinel_cri_info{{{S}}}", "", "A", True)], 12, 4, 12, y + 17),
    ])


def filesystem_row(y):
    return row("Filesystems", y, [
        panel("timeseries", "Fill rate", "Slope of used bytes over the trend window (robust to bursts); positive = filling.", "Bps",
              [(f"sentinel_filesystem_fill_rate_bytes_per_second{{{S}}}", "{{mountpoint}}", "A")], 12, 8, 0, y + 1),
        panel("timeseries", "Available", "", "bytes",
              [(f"sentinel_filesystem_avail_bytes{{{S}}}", "{{mountpoint}}", "A")], 12, 8, 12, y + 1),
        panel("timeseries", "Inodes free", "", "percent",
              [(f"100 * sentinel_filesystem_files_free{{{S}}} / sentinel_filesystem_files{{{S}}}", "{{mountpoint}}", "A")], 8, 8, 0, y + 9),
        panel("timeseries", "Time until out of inodes (capped at 7d)", "", "s",
              [(f"clamp_max(sentinel_filesystem_inodes_seconds_until_full{{{S}}}, {WEEK})", "{{mountpoint}}", "A")], 8, 8, 8, y + 9),
        panel("timeseries", "Hung or read-only mounts", "1 while statfs has not returned (hung NFS/FUSE); read-only mounts.", "none",
              [(f"sentinel_filesystem_stat_hung{{{S}}}", "hung {{mountpoint}}", "A"),
               (f"sentinel_filesystem_readonly{{{S}}}", "read-only {{mountpoint}}", "B")], 8, 8, 16, y + 9),
    ])


def systemd_row(y):
    return row("systemd units", y, [
        panel("table", "Units needing attention", "Stranded, looping, failed, or restarting without a limit (1 = yes).", "none",
              [(f"sentinel_systemd_unit_stranded{{{S}}} == 1", "stranded", "A", True),
               (f"sentinel_systemd_unit_restart_loop{{{S}}} == 1", "loop", "B", True),
               (f"sentinel_systemd_unit_failed{{{S}}} == 1", "failed", "C", True),
               (f"sentinel_systemd_unit_restart_unbounded{{{S}}} == 1", "unbounded", "D", True)],
              12, 8, 0, y + 1),
        panel("timeseries", "Restarts and activations", "Per unit, over $__rate_interval.", "none",
              [(f"sum by (unit) (increase(sentinel_systemd_unit_restarts_total{{{S}}}[$__rate_interval]))", "restarts {{unit}}", "A"),
               (f"sum by (unit) (increase(sentinel_systemd_unit_activations_total{{{S}}}[$__rate_interval]))", "activations {{unit}}", "B")],
              12, 8, 12, y + 1),
        panel("timeseries", "Units by state", "", "none",
              [(f"count by (state) (sentinel_systemd_unit_state{{{S}}} == 1)", "{{state}}", "A")], 12, 8, 0, y + 9),
        panel("stat", "systemd manager", "The manager answers on the bus.", "none",
              [(f"sentinel_systemd_up{{{S}}}", "{{instance}}", "A", True)], 12, 8, 12, y + 9, mappings=UPDOWN),
    ])


def processes_row(y):
    return row("Processes", y, [
        panel("timeseries", "Zombies by parent", "", "none",
              [(f"sum by (parent_comm) (sentinel_zombie_processes{{{S}}})", "{{parent_comm}}", "A")], 8, 8, 0, y + 1),
        panel("timeseries", "Oldest zombie age", "Time since the exporter first saw the oldest zombie of each parent defunct.", "s",
              [(f"max by (parent_comm) (sentinel_zombie_oldest_age_seconds{{{S}}})", "{{parent_comm}}", "A")], 8, 8, 8, y + 1),
        panel("timeseries", "Longest stay in D state", "Per command name, the longest one process has stayed in D state without leaving it; busy I/O stays near 0, a stuck process climbs (the alert fires at 2m).", "s",
              [(f"sentinel_processes_uninterruptible_oldest_seconds{{{S}}}", "{{comm}}", "A")], 8, 8, 16, y + 1),
    ])


def logs_row(y):
    return row("Logs", y, [
        panel("timeseries", "Log growth by group", "", "Bps",
              [(f"sentinel_log_growth_bytes_per_second{{{S}}}", "{{group}}", "A")], 8, 8, 0, y + 1),
        panel("timeseries", "Log size by group", "", "bytes",
              [(f"sentinel_log_size_bytes{{{S}}}", "{{group}}", "A")], 8, 8, 8, y + 1),
        panel("timeseries", "Time until logs fill their filesystem (capped at 7d)", "", "s",
              [(f"clamp_max(sentinel_log_seconds_until_filesystem_full{{{S}}}, {WEEK})", "{{group}} on {{mountpoint}}", "A")], 8, 8, 16, y + 1),
        panel("timeseries", "Rotations", "", "none",
              [(f"sum by (group) (increase(sentinel_log_rotations_total{{{S}}}[$__rate_interval]))", "{{group}}", "A")], 24, 6, 0, y + 9),
    ])


def kernel_row(y):
    return row("Kernel", y, [
        panel("timeseries", "Kernel problems by reason", "Kernel-facility log records by reason (records processes write to /dev/kmsg never count).", "none",
              [(f"sum by (reason) (increase(sentinel_kernel_problems_total{{{S}}}[$__rate_interval]))", "{{reason}}", "A")], 8, 8, 0, y + 1),
        panel("timeseries", "Hung tasks and OOM kills", "The kernel's own counts: hung_task_detect_count keeps counting after the log goes quiet.", "none",
              [(f"increase(sentinel_kernel_hung_tasks_total{{{S}}}[$__rate_interval])", "hung tasks {{instance}}", "A"),
               (f"increase(sentinel_kernel_oom_kills_total{{{S}}}[$__rate_interval])", "OOM kills {{instance}}", "B")], 8, 8, 8, y + 1),
        panel("table", "Last seen, by reason and process", "When each reason was last logged, with the process it named as hung or killed; 1970 (0) means not since the exporter started.", "dateTimeAsIso",
              [(f"max by (instance, reason, comm) (sentinel_kernel_last_problem_timestamp_seconds{{{S}}}) * 1000", "", "A", True)], 8, 8, 16, y + 1),
        panel("stat", "Kernel log readable", "0: node-sentinel cannot open /dev/kmsg (CAP_SYSLOG, or the device in its container); only the hung-task and OOM counters work.", "none",
              [(f"sentinel_kernel_log_readable{{{S}}}", "{{instance}}", "A", True)], 12, 4, 0, y + 9, mappings=UPDOWN),
        panel("timeseries", "Kernel log records missed (overruns)", "", "none",
              [(f"increase(sentinel_kernel_log_records_missed_total{{{S}}}[$__rate_interval])", "{{instance}}", "A")], 12, 4, 12, y + 9),
    ])


def exporter_row(y):
    return row("node-sentinel itself", y, [
        panel("timeseries", "Collector success", "", "none",
              [(f"sentinel_collector_success{{{S}}}", "{{collector}}", "A")], 8, 8, 0, y + 1),
        panel("timeseries", "Collector run time", "", "s",
              [(f"sentinel_collector_duration_seconds{{{S}}}", "{{collector}}", "A")], 8, 8, 8, y + 1),
        panel("timeseries", "Series dropped at label caps", "", "none",
              [(f"max by (collector) (sentinel_series_dropped{{{S}}})", "{{collector}}", "A")], 8, 8, 16, y + 1),
        panel("table", "Build", "", "none",
              [(f"sentinel_build_info{{{S}}}", "", "A", True)], 24, 4, 0, y + 9),
    ])


def dashboard():
    panels, y = overview(0)
    for build in (docker_row, cri_row, filesystem_row, systemd_row, processes_row, logs_row, kernel_row, exporter_row):
        panels.append(build(y))
        y += 1
    return {
        "uid": "node-sentinel",
        "title": "node-sentinel: node health",
        "description": "Is this node about to die, and why: Docker, disks, units, processes, logs, the kernel (node-sentinel exporter).",
        "tags": ["node-sentinel"],
        "timezone": "",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 38,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "links": [{"title": "Runbooks", "type": "link", "url": "https://github.com/node-sentinel/node-sentinel/blob/main/docs/runbooks"}],
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0, "refresh": 1},
            {"name": "job", "label": "Job", "type": "query", "datasource": DS,
             "query": {"query": "label_values(sentinel_build_info, job)", "refId": "job"},
             "definition": "label_values(sentinel_build_info, job)", "refresh": 2, "current": {}, "hide": 0,
             "includeAll": False, "multi": False, "sort": 1},
            {"name": "instance", "label": "Instance", "type": "query", "datasource": DS,
             "query": {"query": 'label_values(sentinel_build_info{job=~"$job"}, instance)', "refId": "instance"},
             "definition": 'label_values(sentinel_build_info{job=~"$job"}, instance)', "refresh": 2, "current": {},
             "hide": 0, "includeAll": True, "multi": True, "sort": 1},
        ]},
        "annotations": {"list": []},
        "panels": panels,
    }


def render():
    return json.dumps(dashboard(), indent=2) + "\n"


def main():
    text = render()
    if "--check" in sys.argv[1:]:
        with open(OUT) as fh:
            if fh.read() != text:
                sys.exit(f"{OUT} is out of date: run python3 dashboards/generate.py")
    else:
        with open(OUT, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
