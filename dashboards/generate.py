#!/usr/bin/env python3
"""Generate the Grafana dashboards from the panel lists below.

    dashboards/node-sentinel.json        one node: is it about to die, and why
    dashboards/node-sentinel-fleet.json  hundreds of nodes: which are about to die, and why

Run without arguments to rewrite both, with --check to fail if a committed
file is out of date (tests/dashboards.rs does this). Needs only python3.

Node dashboard (the 3 a.m. test): one node at a time (a single-select
`instance`, as node-mixin does), a verdict row first (exporter up, alerts
firing, lowest free space, soonest full or eviction, the runtimes' state, and
every finding that means the node is dying), then tables that name the mount,
unit, process or file, then the Kubernetes view (eviction headroom and time per
signal, pod logs), and collapsed history rows per area. Every critical signal
is in the first rows; the collapsed rows only hold history. Panels link to the
runbook section of their alert (runbookBase of alerts/config.yml).

Fleet dashboard: one table row per node sorted by urgency, read from the
recording rules in alerts/node-sentinel.recording.yml (one series per node)
and the exporter's own per-node gauges, so every query stays cheap with
hundreds of nodes. The node name links to the node dashboard.

Every query selects job=~"$job", instance=~"$instance"; rates use
$__rate_interval. No other Grafana variable appears in a query, so the drills
and tests/dashboards.rs can run each one against Prometheus as it is.
"""
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NODE_OUT = os.path.join(HERE, "node-sentinel.json")
FLEET_OUT = os.path.join(HERE, "node-sentinel-fleet.json")
S = 'job=~"$job", instance=~"$instance"'
DS = {"type": "prometheus", "uid": "${datasource}"}
WEEK = 7 * 86400
YEAR = 365 * 86400
NODE_UID = "node-sentinel"
FLEET_UID = "node-sentinel-fleet"


def runbook_base():
    # The alert rules' runbook_url base, so panel links and alerts agree.
    with open(os.path.join(ROOT, "alerts", "config.yml")) as fh:
        m = re.search(r"^runbookBase:\s*(\S+)\s*$", fh.read(), re.M)
    if not m:
        sys.exit("alerts/config.yml has no runbookBase")
    return m.group(1).rstrip("/")


RUNBOOKS = runbook_base()


def runbook(file, alert=None):
    url = f"{RUNBOOKS}/{file}.md" + (f"#{alert.lower()}" if alert else "")
    return {"title": f"Runbook: {alert or file}", "url": url, "targetBlank": True}


class Ids:
    def __init__(self):
        self.n = 0

    def __call__(self):
        self.n += 1
        return self.n


nid = Ids()


def target(expr, legend="", ref="A", instant=False, table=False):
    t = {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref}
    if instant:
        t["instant"] = True
        t["range"] = False
    if table:
        t["format"] = "table"
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
    if kind == "stat":
        p["options"] = {"colorMode": "background", "graphMode": "none", "textMode": "value_and_name",
                        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    defaults = p["fieldConfig"]["defaults"]
    for k, v in extra.items():
        if k == "thresholds":
            defaults["thresholds"] = {"mode": "absolute", "steps": v}
            defaults["color"] = {"mode": "thresholds"}
            if kind == "timeseries":
                defaults["custom"] = {"thresholdsStyle": {"mode": "dashed"}}
        elif k == "mappings":
            defaults["mappings"] = v
        elif k == "no_value":
            defaults["noValue"] = v
        elif k == "overrides":
            p["fieldConfig"]["overrides"] = v
        elif k == "options":
            p["options"].update(v)
        else:
            p[k] = v
    return p


def table(title, desc, unit, targets, w, h, x, y, columns, hide=(), sort=None, **extra):
    """An instant table of one or more queries merged on their labels.

    columns maps a query's refId (its value column) or a label to a header."""
    rename = {}
    for key, header in columns.items():
        rename[f"Value #{key}" if len(key) == 1 else key] = header
    if len(targets) == 1:
        only = targets[0][2] if isinstance(targets[0], tuple) and len(targets[0]) > 2 else "A"
        if only in columns:
            rename["Value"] = columns[only]
    excluded = {"Time": True, "job": True, "__name__": True}
    excluded.update({h: True for h in hide})
    transformations = [{"id": "merge", "options": {}}] if len(targets) > 1 else []
    transformations.append({"id": "organize", "options": {"excludeByName": excluded, "renameByName": rename}})
    options = {"showHeader": True, "cellHeight": "sm"}
    if sort:
        options["sortBy"] = [{"displayName": sort[0], "desc": sort[1]}]
    ts = []
    for t in targets:
        expr, legend, ref = (t + ("", "A"))[:3] if isinstance(t, tuple) else (t, "", "A")
        ts.append((expr, legend, ref, True, True))
    return panel("table", title, desc, unit, ts, w, h, x, y, transformations=transformations, options=options, **extra)


def column(name, unit=None, mappings=None, thresholds=None, links=None, color=False, decimals=None):
    props = []
    if unit:
        props.append({"id": "unit", "value": unit})
    if decimals is not None:
        props.append({"id": "decimals", "value": decimals})
    if mappings:
        props.append({"id": "mappings", "value": mappings})
    if thresholds:
        props.append({"id": "thresholds", "value": {"mode": "absolute", "steps": thresholds}})
        props.append({"id": "color", "value": {"mode": "thresholds"}})
    if color or thresholds or mappings:
        props.append({"id": "custom.cellOptions", "value": {"type": "color-background"}})
    if links:
        props.append({"id": "links", "value": links})
    return {"matcher": {"id": "byName", "options": name}, "properties": props}


def steps(*pairs):
    return [{"color": c, "value": v} for v, c in pairs]


def value_map(options):
    return [{"type": "value", "options": {k: {"text": t, "color": c, "index": i}
                                          for i, (k, (t, c)) in enumerate(options.items())}}]


OKBAD = value_map({"0": ("no", "green"), "1": ("YES", "red")})
UPDOWN = value_map({"1": ("up", "green"), "0": ("DOWN", "red")})
# Runtime state code: 2 * hung + (1 - up) * (1 - hung), as instance:sentinel_runtime_state:max records it.
RUNTIME = value_map({"0": ("answering", "green"), "1": ("DOWN", "red"), "2": ("HUNG", "red")})
# A time clamped to a year reads "not filling" (+Inf: the exporter sees no fill).
NOT_FILLING = [{"type": "range", "options": {"from": YEAR, "to": 1e300, "result": {"text": "not filling", "color": "green", "index": 0}}}]
# No series: the subject is not on the node (METRICS.md), or the exporter is
# not scraped (the Exporter stat says which).
NOT_INSTALLED = "not installed / no data"
RED_IF_ANY = steps((None, "green"), (1, "red"))
ORANGE_IF_ANY = steps((None, "green"), (1, "orange"))
TIME_LEFT = steps((None, "red"), (3600, "orange"), (14400, "yellow"), (86400, "green"))
FREE_RATIO = steps((None, "red"), (0.05, "orange"), (0.1, "yellow"), (0.15, "green"))


def row(title, y, panels, collapsed=True):
    return {"id": nid(), "type": "row", "title": title, "collapsed": collapsed,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": panels if collapsed else []}


# ------------------------------------------------------------------ node


def verdict(y):
    """The first rows: is this node about to die, and why, without scrolling or expanding."""
    y0 = y + 1
    fs_ratio = (f"sentinel_filesystem_avail_bytes{{{S}}} / (sentinel_filesystem_size_bytes{{{S}}} > 0)"
                f" unless sentinel_filesystem_readonly{{{S}}} == 1")
    clocks = (f'label_replace(sentinel_filesystem_seconds_until_full{{{S}}}, "clock", "full", "", "")'
              f' or label_replace(sentinel_filesystem_inodes_seconds_until_full{{{S}}}, "clock", "out of inodes", "", "")'
              f' or label_replace(sentinel_kubelet_seconds_until_eviction{{{S}}}, "clock", "eviction ($1)", "signal", "(.*)")')
    first = [
        panel("stat", "Exporter", "up of this node's node-sentinel target: DOWN or \"not scraped\" means every other panel is stale or empty.",
              "none", [(f"up{{{S}}}", "scrape", "A", True)], 4, 4, 0, y0, mappings=UPDOWN, no_value="NOT SCRAPED",
              thresholds=steps((None, "red"), (1, "green")), links=[runbook("exporter", "SentinelExporterDown")]),
        panel("stat", "Alerts firing", "node-sentinel alerts firing for this node, by severity (ALERTS{instance=...}); the Findings row lists them.",
              "none", [(f'count by (severity) (ALERTS{{alertstate="firing", {S}}}) or on () label_replace(vector(0), "severity", "none firing", "", "")',
                        "{{severity}}", "A", True)],
              4, 4, 4, y0, thresholds=RED_IF_ANY),
        panel("stat", "Lowest free space", "The writable mount with the least space available (read-only mounts are full by nature and left out); the Filesystems table lists all.",
              "percentunit", [(f"bottomk(1, {fs_ratio})", "{{mountpoint}}", "A", True)],
              4, 4, 8, y0, thresholds=FREE_RATIO, links=[runbook("filesystem", "SentinelFilesystemAlmostFull")]),
        panel("stat", "Soonest full or eviction", "The first clock to run out: a mount full in bytes or inodes, or the kubelet evicting on a signal, at the trend window's fill rate.",
              "s", [(f"clamp_max(bottomk(1, {clocks}), {YEAR})", "{{mountpoint}} {{clock}}", "A", True)],
              4, 4, 12, y0, thresholds=TIME_LEFT, mappings=NOT_FILLING, links=[runbook("filesystem", "SentinelFilesystemFillingUp")]),
        panel("stat", "Docker", "sentinel_docker_up / _hung: HUNG = the socket accepts connections but a probe is unanswered past the hang threshold; nothing = not installed.",
              "none", [(f"2 * sentinel_docker_hung{{{S}}} + (1 - sentinel_docker_up{{{S}}}) * (1 - sentinel_docker_hung{{{S}}})", "docker", "A", True)],
              4, 4, 16, y0, mappings=RUNTIME, no_value=NOT_INSTALLED, thresholds=RED_IF_ANY,
              links=[runbook("docker", "SentinelDockerHung"), runbook("docker", "SentinelDockerDown")]),
        panel("stat", "CRI runtime", "sentinel_cri_up / _hung for the runtime behind the kubelet (containerd, CRI-O); nothing = not installed.",
              "none", [(f"2 * sentinel_cri_hung{{{S}}} + (1 - sentinel_cri_up{{{S}}}) * (1 - sentinel_cri_hung{{{S}}})", "cri", "A", True)],
              4, 4, 20, y0, mappings=RUNTIME, no_value=NOT_INSTALLED, thresholds=RED_IF_ANY,
              links=[runbook("cri", "SentinelCriRuntimeHung"), runbook("cri", "SentinelCriRuntimeDown")]),
    ]
    y1 = y0 + 4
    second = [
        panel("stat", "Stranded units", "Units stopped by a dependency restart that systemd will not start again (the dependency-restart trap); the Units table names them.",
              "none", [(f"sum(sentinel_systemd_unit_stranded{{{S}}}) or sum(sentinel_systemd_up{{{S}}}) * 0", "stranded", "A", True)],
              4, 4, 0, y1, thresholds=RED_IF_ANY, no_value="no systemd", links=[runbook("systemd", "SentinelUnitStranded")]),
        panel("stat", "Hung mounts", "Mounts whose statvfs has not returned (hung NFS/FUSE): anything touching them hangs in D state.",
              "none", [(f"sum(sentinel_filesystem_stat_hung{{{S}}})", "hung", "A", True)],
              4, 4, 4, y1, thresholds=RED_IF_ANY, links=[runbook("filesystem", "SentinelFilesystemStatHung")]),
        panel("stat", "Zombies", "Defunct processes now, and those whose parent is PID 1 (init not reaping); any is worth a look, the Processes table names their parents.",
              "none", [(f"sum(sentinel_zombie_processes{{{S}}}) or sum(sentinel_zombie_processes_reaped_by_init_pending{{{S}}}) * 0", "zombies", "A", True),
                       (f"sentinel_zombie_processes_reaped_by_init_pending{{{S}}}", "init not reaping", "B", True)],
              4, 4, 8, y1, thresholds=ORANGE_IF_ANY,
              links=[runbook("processes", "SentinelZombiesAccumulating"), runbook("processes", "SentinelInitNotReaping")]),
        panel("stat", "Longest in D state", "The longest one process has stayed in uninterruptible sleep without leaving it; busy I/O stays near 0, a stuck process climbs (the alert fires at 2 min).",
              "s", [(f"max(sentinel_processes_uninterruptible_oldest_seconds{{{S}}}) or sum(sentinel_zombie_processes_reaped_by_init_pending{{{S}}}) * 0", "longest", "A", True)],
              4, 4, 12, y1, thresholds=steps((None, "green"), (30, "orange"), (120, "red")),
              links=[runbook("processes", "SentinelProcessesStuckInDState")]),
        panel("stat", "Collectors failing", "Collectors whose latest round failed: their findings are missing, so every other green panel of that area is blind.",
              "none", [(f"count(sentinel_collector_success{{{S}}} == 0) or sum(sentinel_collector_success{{{S}}}) * 0", "failing", "A", True)],
              4, 4, 16, y1, thresholds=RED_IF_ANY, links=[runbook("exporter", "SentinelCollectorFailing")]),
        panel("stat", "Kubelet", "sentinel_kubelet_healthz_up: the kubelet's healthz answered ok; nothing = not a Kubernetes node.",
              "none", [(f"sentinel_kubelet_healthz_up{{{S}}}", "healthz", "A", True)],
              4, 4, 20, y1, mappings=UPDOWN, no_value=NOT_INSTALLED, thresholds=steps((None, "red"), (1, "green")),
              links=[runbook("kubelet")]),
    ]
    return [row("Verdict: is this node about to die, and why", y, [], collapsed=False)] + first + second, y1 + 4


def findings(y):
    """Tables that name the subject of every finding."""
    y0 = y + 1
    alerts = table(
        "Alerts firing on this node", "Every node-sentinel alert firing for this instance, with its subject labels; each alert's runbook_url names its section.",
        "none", [(f'ALERTS{{alertstate="firing", {S}}}', "", "A")], 12, 8, 0, y0,
        columns={"alertname": "Alert", "severity": "Severity"}, hide=("alertstate", "instance", "Value"),
        sort=("Severity", False), no_value="none firing")
    m = "mountpoint"
    fs = table(
        "Filesystems", "Per mount: space and inodes available, time until full at the trend window's fill rate (not filling = +Inf), a statvfs that hangs, read-only, and space held by deleted-but-open files.",
        "none", [
            (f"max by ({m}) (sentinel_filesystem_avail_bytes{{{S}}} / (sentinel_filesystem_size_bytes{{{S}}} > 0))", "", "A"),
            (f"min by ({m}) (clamp_max(sentinel_filesystem_seconds_until_full{{{S}}}, {YEAR}))", "", "B"),
            (f"max by ({m}) (sentinel_filesystem_files_free{{{S}}} / (sentinel_filesystem_files{{{S}}} > 0))", "", "C"),
            (f"min by ({m}) (clamp_max(sentinel_filesystem_inodes_seconds_until_full{{{S}}}, {YEAR}))", "", "D"),
            (f"max by ({m}) (sentinel_filesystem_stat_hung{{{S}}})", "", "E"),
            (f"max by ({m}) (sentinel_filesystem_readonly{{{S}}})", "", "F"),
        ], 12, 8, 12, y0,
        columns={"mountpoint": "Mount", "A": "Free", "B": "Full in", "C": "Inodes free", "D": "Inodes out in", "E": "Hung", "F": "Read-only"},
        sort=("Full in", False),
        links=[runbook("filesystem", "SentinelFilesystemFillingUp")],
        overrides=[column("Free", "percentunit", thresholds=FREE_RATIO), column("Inodes free", "percentunit", thresholds=FREE_RATIO),
                   column("Full in", "s", mappings=NOT_FILLING, thresholds=TIME_LEFT),
                   column("Inodes out in", "s", mappings=NOT_FILLING, thresholds=TIME_LEFT),
                   column("Hung", mappings=OKBAD), column("Read-only", mappings=value_map({"0": ("no", "transparent"), "1": ("read-only", "blue")}))])
    y1 = y0 + 8
    units_expr = " or ".join([
        f'label_replace(sentinel_systemd_unit_stranded{{{S}}} == 1, "finding", "stranded: stopped when $1 restarted, not started again", "dependency", "(.*)")',
        f'label_replace(sentinel_systemd_unit_restart_loop{{{S}}} == 1, "finding", "restart loop", "", "")',
        f'label_replace(sentinel_systemd_unit_failed{{{S}}} == 1, "finding", "failed ($1)", "result", "(.*)")',
        f'label_replace(sentinel_systemd_unit_start_limit_hit{{{S}}} == 1, "finding", "start limit hit: systemd gave up", "", "")',
        f'label_replace(sentinel_systemd_unit_restart_unbounded{{{S}}} == 1, "finding", "restarts without a limit (config)", "", "")',
    ])
    units = table(
        "Units needing attention", "Stranded, looping, failed, given up on, or restarting without a start limit: one row per unit and finding.",
        "none", [(f"max by (unit, finding) ({units_expr})", "", "A")], 8, 8, 0, y1,
        columns={"unit": "Unit", "finding": "Finding"}, hide=("Value",), no_value="none",
        links=[runbook("systemd", "SentinelUnitStranded"), runbook("systemd", "SentinelUnitRestartLoop"), runbook("systemd", "SentinelUnitFailed")])
    zombies = table(
        "Zombies by command and parent", "Defunct processes per command and parent command, and how long the oldest has been a zombie (since the exporter first saw it).",
        "none", [(f"sum by (comm, parent_comm) (sentinel_zombie_processes{{{S}}})", "", "A"),
                 (f"max by (comm, parent_comm) (sentinel_zombie_oldest_age_seconds{{{S}}})", "", "B")], 8, 8, 8, y1,
        columns={"comm": "Zombie", "parent_comm": "Parent (does not reap)", "A": "Count", "B": "Oldest"},
        sort=("Count", True), no_value="none", links=[runbook("processes", "SentinelZombiesAccumulating")],
        overrides=[column("Oldest", "s")])
    dstate = table(
        "Processes in D state", "Per command: processes in uninterruptible sleep now, and the longest one has stayed there (a stuck process climbs; the alert fires at 2 min).",
        "none", [(f"sum by (comm) (sentinel_processes_uninterruptible{{{S}}})", "", "A"),
                 (f"max by (comm) (sentinel_processes_uninterruptible_oldest_seconds{{{S}}})", "", "B")], 8, 8, 16, y1,
        columns={"comm": "Command", "A": "Now", "B": "Longest stay"},
        sort=("Longest stay", True), no_value="none", links=[runbook("processes", "SentinelProcessesStuckInDState")],
        overrides=[column("Longest stay", "s", thresholds=steps((None, "green"), (30, "orange"), (120, "red")))])
    y2 = y1 + 8
    logs = table(
        "Log files growing fastest", "The top log files by write rate over the logs trend window, by group and path (pod logs also by namespace, pod and container).",
        "Bps", [(f"topk(10, sentinel_log_file_growth_bytes_per_second{{{S}}})", "", "A")], 12, 8, 0, y2,
        columns={"group": "Group", "path": "File", "A": "Growth"}, hide=("instance",), sort=("Growth", True),
        links=[runbook("logs", "SentinelLogFileGrowthRunaway")],
        overrides=[column("Growth", "Bps", thresholds=steps((None, "green"), (102400, "orange"), (1048576, "red")))])
    logfs = table(
        "Log groups filling their filesystem", "Per log group and mount: net growth (rotation and size caps count against it; a group held at its cap is not growing) and the time until it fills the filesystem.",
        "none", [(f"max by (group, mountpoint) (clamp_max(sentinel_log_seconds_until_filesystem_full{{{S}}}, {YEAR}))", "", "A"),
                 # the group's growth on each of its mounts, so both columns merge on (group, mountpoint)
                 (f"max by (group, mountpoint) (0 * clamp_max(sentinel_log_seconds_until_filesystem_full{{{S}}}, 1)"
                  f" + on (job, instance, group) group_left sentinel_log_growth_bytes_per_second{{{S}}})", "", "B")], 12, 8, 12, y2,
        columns={"group": "Group", "mountpoint": "Mount", "A": "Fills it in", "B": "Net growth"}, sort=("Fills it in", False),
        links=[runbook("logs", "SentinelLogsFillingDisk")],
        overrides=[column("Fills it in", "s", mappings=NOT_FILLING, thresholds=TIME_LEFT), column("Net growth", "Bps")])
    return [row("Findings: which mount, unit, process, file", y, [], collapsed=False),
            alerts, fs, units, zombies, dstate, logs, logfs], y2 + 8


def kubelet_row(y):
    """The kubelet's limits: it evicts pods at its thresholds, long before a disk is full."""
    y0 = y + 1
    sig = "signal"
    evict = table(
        "Eviction signals", "Per eviction signal: the hard threshold resolved against its filesystem, the headroom left above it (negative = evicting now), the time until eviction at the trend's fill rate, and signals the config leaves without a threshold (a partial evictionHard resets the others to 0).",
        "none", [
            (f'max by ({sig}) (sentinel_kubelet_eviction_threshold_bytes{{{S}, kind="hard"}} or sentinel_kubelet_eviction_threshold_inodes{{{S}, kind="hard"}})', "", "A"),
            (f"min by ({sig}) (sentinel_kubelet_eviction_headroom_bytes{{{S}}} or sentinel_kubelet_eviction_headroom_inodes{{{S}}})", "", "B"),
            (f"min by ({sig}) (clamp_max(sentinel_kubelet_seconds_until_eviction{{{S}}}, {YEAR}))", "", "C"),
            (f"max by ({sig}) (sentinel_kubelet_eviction_signal_disabled{{{S}}})", "", "D"),
        ], 12, 8, 0, y0,
        columns={"signal": "Signal", "A": "Threshold", "B": "Headroom", "C": "Evicts in", "D": "Disabled"},
        sort=("Evicts in", False), no_value="not a Kubernetes node", links=[runbook("kubelet")],
        overrides=[column("Threshold", "short"), column("Headroom", "short", thresholds=steps((None, "red"), (0, "green"))),
                   column("Evicts in", "s", mappings=NOT_FILLING, thresholds=TIME_LEFT), column("Disabled", mappings=OKBAD)])
    pods = table(
        "Pod logs growing fastest", "The pods group's top files by write rate, named by namespace, pod and container (from /var/log/pods/<namespace>_<pod>_<uid>/<container>/).",
        "Bps", [(f'topk(10, sentinel_log_file_growth_bytes_per_second{{{S}, group="pods"}})', "", "A")], 12, 8, 12, y0,
        columns={"namespace": "Namespace", "pod": "Pod", "container": "Container", "path": "File", "A": "Growth"},
        hide=("instance", "group"), sort=("Growth", True), no_value="no pod logs", links=[runbook("logs", "SentinelLogFileGrowthRunaway")],
        overrides=[column("Growth", "Bps", thresholds=steps((None, "green"), (102400, "orange"), (1048576, "red")))])
    y1 = y0 + 8
    graphs = [
        panel("timeseries", "Time until eviction per signal (capped at 7d)", "sentinel_kubelet_seconds_until_eviction; 7d means 7 days or more, or not filling.", "s",
              [(f"clamp_max(sentinel_kubelet_seconds_until_eviction{{{S}}}, {WEEK})", "{{signal}} on {{mountpoint}}", "A")], 8, 8, 0, y1,
              thresholds=TIME_LEFT, links=[runbook("kubelet")]),
        panel("timeseries", "Eviction headroom (bytes)", "Available minus the hard threshold, per byte signal; below 0 the kubelet evicts pods.", "bytes",
              [(f"sentinel_kubelet_eviction_headroom_bytes{{{S}}}", "{{signal}} on {{mountpoint}}", "A")], 8, 8, 8, y1,
              thresholds=steps((None, "red"), (0, "green"))),
        panel("timeseries", "Eviction headroom (inodes) and image GC headroom", "Inodes above the hard threshold, per inode signal; bytes until image usage reaches imageGCHighThresholdPercent.", "short",
              [(f"sentinel_kubelet_eviction_headroom_inodes{{{S}}}", "inodes {{signal}}", "A"),
               (f"sentinel_kubelet_image_gc_headroom_bytes{{{S}}}", "image GC bytes {{mountpoint}}", "B")], 8, 8, 16, y1),
        panel("timeseries", "Kubelet healthz", "1 when the kubelet's healthz answers ok, and the age of an unanswered probe (grows while the kubelet hangs).", "s",
              [(f"sentinel_kubelet_healthz_up{{{S}}}", "up", "A"),
               (f"sentinel_kubelet_healthz_in_flight_seconds{{{S}}}", "unanswered", "B")], 12, 6, 0, y1 + 8),
        panel("table", "Kubelet config read", "The KubeletConfiguration file the thresholds come from.", "none",
              [(f"sentinel_kubelet_config_info{{{S}}}", "", "A", True, True)], 12, 6, 12, y1 + 8),
    ]
    return [row("Kubernetes node", y, [], collapsed=False), evict, pods] + graphs, y1 + 14


def docker_row(y):
    return row("Docker (history)", y, [
        panel("timeseries", "Probe latency p50 / p99", "From the sentinel_docker_probe_duration_seconds histogram, per operation.", "s",
              [(f"histogram_quantile(0.5, sum by (operation, le) (rate(sentinel_docker_probe_duration_seconds_bucket{{{S}}}[$__rate_interval])))", "p50 {{operation}}", "A"),
               (f"histogram_quantile(0.99, sum by (operation, le) (rate(sentinel_docker_probe_duration_seconds_bucket{{{S}}}[$__rate_interval])))", "p99 {{operation}}", "B")],
              12, 8, 0, y + 1, thresholds=steps((None, "green"), (1, "orange")), links=[runbook("docker", "SentinelDockerApiSlow")]),
        panel("timeseries", "Unanswered probe age", "sentinel_docker_probe_in_flight_seconds: 0 when none is outstanding; climbs while hung.", "s",
              [(f"sentinel_docker_probe_in_flight_seconds{{{S}}}", "{{operation}}", "A")], 12, 8, 12, y + 1,
              thresholds=steps((None, "green"), (10, "red")), links=[runbook("docker", "SentinelDockerHung")]),
        panel("timeseries", "Probe failures", "By operation and reason.", "reqps",
              [(f"sum by (operation, reason) (rate(sentinel_docker_probe_failures_total{{{S}}}[$__rate_interval]))", "{{operation}} {{reason}}", "A")],
              6, 8, 0, y + 9),
        panel("timeseries", "Containers by state", "", "none",
              [(f"sentinel_docker_containers{{{S}}}", "{{state}}", "A")], 6, 8, 6, y + 9),
        panel("timeseries", "Daemon uptime", "Time since the daemon process started; drops to 0 at each restart.", "s",
              [(f"time() - sentinel_docker_daemon_start_time_seconds{{{S}}}", "uptime", "A")], 6, 8, 12, y + 9),
        panel("timeseries", "Daemon restarts", "Restarts seen (PID or start time changed) per $__rate_interval.", "none",
              [(f"increase(sentinel_docker_daemon_restarts_total{{{S}}}[$__rate_interval])", "restarts", "A")], 6, 8, 18, y + 9,
              links=[runbook("docker", "SentinelDockerDaemonRestarting")]),
        panel("table", "Docker version", "", "none",
              [(f"sentinel_docker_info{{{S}}}", "", "A", True, True)], 24, 4, 0, y + 17),
    ])


def cri_row(y):
    return row("Container runtime (CRI, history)", y, [
        panel("timeseries", "CRI call latency p50 / p99", "From the sentinel_cri_probe_duration_seconds histogram, per operation.", "s",
              [(f"histogram_quantile(0.5, sum by (operation, le) (rate(sentinel_cri_probe_duration_seconds_bucket{{{S}}}[$__rate_interval])))", "p50 {{operation}}", "A"),
               (f"histogram_quantile(0.99, sum by (operation, le) (rate(sentinel_cri_probe_duration_seconds_bucket{{{S}}}[$__rate_interval])))", "p99 {{operation}}", "B")],
              12, 8, 0, y + 1, thresholds=steps((None, "green"), (1, "orange")), links=[runbook("cri", "SentinelCriRuntimeSlow")]),
        panel("timeseries", "Unanswered CRI call age", "sentinel_cri_probe_in_flight_seconds: 0 when none is outstanding; container_stats is one container's shim.", "s",
              [(f"sentinel_cri_probe_in_flight_seconds{{{S}}}", "{{operation}}", "A")], 12, 8, 12, y + 1,
              thresholds=steps((None, "green"), (10, "red")), links=[runbook("cri", "SentinelCriRuntimeHung")]),
        panel("timeseries", "CRI call failures", "By operation and reason.", "reqps",
              [(f"sum by (operation, reason) (rate(sentinel_cri_probe_failures_total{{{S}}}[$__rate_interval]))", "{{operation}} {{reason}}", "A")],
              6, 8, 0, y + 9),
        panel("timeseries", "Pods and containers by state", "", "none",
              [(f"sentinel_cri_pod_sandboxes{{{S}}}", "pods {{state}}", "A"),
               (f"sentinel_cri_containers{{{S}}}", "containers {{state}}", "B")], 6, 8, 6, y + 9),
        panel("timeseries", "Runtime conditions and stuck containers", "Status conditions (1 = true) and containers whose shim is hung.", "none",
              [(f"sentinel_cri_runtime_condition{{{S}}}", "{{condition}}", "A"),
               (f"sentinel_cri_container_stuck{{{S}}} == 1", "stuck {{namespace}}/{{pod}}/{{container}}", "B")], 6, 8, 12, y + 9,
              links=[runbook("cri", "SentinelCriNetworkNotReady"), runbook("cri", "SentinelCriContainerStuck")]),
        panel("timeseries", "Runtime uptime and restarts", "Time since the runtime process started (drops at each restart), and restarts seen per $__rate_interval.", "s",
              [(f"time() - sentinel_cri_runtime_start_time_seconds{{{S}}}", "uptime", "A"),
               (f"increase(sentinel_cri_runtime_restarts_total{{{S}}}[$__rate_interval])", "restarts", "B")], 6, 8, 18, y + 9),
        panel("timeseries", "Image filesystem used", "sentinel_cri_image_filesystem_used_bytes, from ImageFsInfo.", "bytes",
              [(f"sentinel_cri_image_filesystem_used_bytes{{{S}}}", "{{mountpoint}}", "A")], 12, 4, 0, y + 17),
        panel("table", "Runtime version", "", "none",
              [(f"sentinel_cri_info{{{S}}}", "", "A", True, True)], 12, 4, 12, y + 17),
    ])


def filesystem_row(y):
    return row("Filesystems (history)", y, [
        panel("timeseries", "Space available per mount", "statvfs available space as a share of the size.", "percentunit",
              [(f"sentinel_filesystem_avail_bytes{{{S}}} / (sentinel_filesystem_size_bytes{{{S}}} > 0)", "{{mountpoint}}", "A")],
              12, 8, 0, y + 1, thresholds=FREE_RATIO),
        panel("timeseries", "Fill rate", "Slope of used bytes over the trend window (robust to bursts); positive = filling.", "Bps",
              [(f"sentinel_filesystem_fill_rate_bytes_per_second{{{S}}}", "{{mountpoint}}", "A")], 12, 8, 12, y + 1),
        panel("timeseries", "Time until full (capped at 7d)", "7d means 7 days or more, or not filling.", "s",
              [(f"clamp_max(sentinel_filesystem_seconds_until_full{{{S}}}, {WEEK})", "{{mountpoint}}", "A")], 8, 8, 0, y + 9, thresholds=TIME_LEFT),
        panel("timeseries", "Inodes free", "", "percentunit",
              [(f"sentinel_filesystem_files_free{{{S}}} / (sentinel_filesystem_files{{{S}}} > 0)", "{{mountpoint}}", "A")], 8, 8, 8, y + 9, thresholds=FREE_RATIO),
        panel("timeseries", "Space held by deleted-but-open files", "Space df counts and du does not, by mount and holding command.", "bytes",
              [(f"sum by (mountpoint, comm) (sentinel_deleted_open_files_bytes{{{S}}})", "{{comm}} on {{mountpoint}}", "A")],
              8, 8, 16, y + 9, links=[runbook("processes", "SentinelDeletedFilesHoldingSpace")]),
    ])


def systemd_row(y):
    return row("systemd units (history)", y, [
        panel("timeseries", "Restarts and activations", "Per unit, over $__rate_interval.", "none",
              [(f"sum by (unit) (increase(sentinel_systemd_unit_restarts_total{{{S}}}[$__rate_interval])) > 0", "restarts {{unit}}", "A"),
               (f"sum by (unit) (increase(sentinel_systemd_unit_activations_total{{{S}}}[$__rate_interval])) > 0", "activations {{unit}}", "B")],
              12, 8, 0, y + 1, links=[runbook("systemd", "SentinelUnitRestartLoop")]),
        panel("timeseries", "Units by state", "", "none",
              [(f"count by (state) (sentinel_systemd_unit_state{{{S}}} == 1)", "{{state}}", "A")], 8, 8, 12, y + 1),
        panel("stat", "systemd manager", "The manager answers on the bus.", "none",
              [(f"sentinel_systemd_up{{{S}}}", "manager", "A", True)], 4, 8, 20, y + 1, mappings=UPDOWN,
              links=[runbook("systemd", "SentinelSystemdUnreachable")]),
    ])


def processes_row(y):
    return row("Processes (history)", y, [
        panel("timeseries", "Zombies by parent", "", "none",
              [(f"sum by (parent_comm) (sentinel_zombie_processes{{{S}}})", "{{parent_comm}}", "A")], 8, 8, 0, y + 1),
        panel("timeseries", "Oldest zombie age", "Time since the exporter first saw the oldest zombie of each parent defunct.", "s",
              [(f"max by (parent_comm) (sentinel_zombie_oldest_age_seconds{{{S}}})", "{{parent_comm}}", "A")], 8, 8, 8, y + 1),
        panel("timeseries", "Longest stay in D state", "Per command name, the longest one process has stayed in D state without leaving it; busy I/O stays near 0, a stuck process climbs (the alert fires at 2m).", "s",
              [(f"sentinel_processes_uninterruptible_oldest_seconds{{{S}}}", "{{comm}}", "A")], 8, 8, 16, y + 1,
              thresholds=steps((None, "green"), (120, "red"))),
    ])


def logs_row(y):
    return row("Logs (history)", y, [
        panel("timeseries", "Log growth by group", "Net growth: what the group adds to its disk; groups may overlap (varlog holds the journal), do not sum them.", "Bps",
              [(f"sentinel_log_growth_bytes_per_second{{{S}}}", "{{group}}", "A")], 8, 8, 0, y + 1),
        panel("timeseries", "Log size by group", "", "bytes",
              [(f"sentinel_log_size_bytes{{{S}}}", "{{group}}", "A")], 8, 8, 8, y + 1),
        panel("timeseries", "Time until logs fill their filesystem (capped at 7d)", "", "s",
              [(f"clamp_max(sentinel_log_seconds_until_filesystem_full{{{S}}}, {WEEK})", "{{group}} on {{mountpoint}}", "A")], 8, 8, 16, y + 1,
              thresholds=TIME_LEFT),
        panel("timeseries", "Rotations", "", "none",
              [(f"sum by (group) (increase(sentinel_log_rotations_total{{{S}}}[$__rate_interval]))", "{{group}}", "A")], 24, 6, 0, y + 9),
    ])


def kernel_row(y):
    return row("Kernel", y, [
        panel("timeseries", "Kernel problems by reason", "Kernel-facility log records by reason (records processes write to /dev/kmsg never count).", "none",
              [(f"sum by (reason) (increase(sentinel_kernel_problems_total{{{S}}}[$__rate_interval]))", "{{reason}}", "A")], 8, 8, 0, y + 1,
              links=[runbook("kernel")]),
        panel("timeseries", "Hung tasks and OOM kills", "The kernel's own counts: hung_task_detect_count keeps counting after the log goes quiet.", "none",
              [(f"increase(sentinel_kernel_hung_tasks_total{{{S}}}[$__rate_interval])", "hung tasks", "A"),
               (f"increase(sentinel_kernel_oom_kills_total{{{S}}}[$__rate_interval])", "OOM kills", "B")], 8, 8, 8, y + 1,
              links=[runbook("kernel", "SentinelKernelTaskHung"), runbook("kernel", "SentinelKernelOomKill")]),
        panel("table", "Last seen, by reason and process", "When each reason was last logged, with the process it named as hung or killed; 1970 (0) means not since the exporter started.", "dateTimeAsIso",
              [(f"max by (reason, comm) (sentinel_kernel_last_problem_timestamp_seconds{{{S}}}) * 1000", "", "A", True, True)], 8, 8, 16, y + 1),
        panel("stat", "Kernel log readable", "0: node-sentinel cannot open /dev/kmsg (CAP_SYSLOG, or the device in its container); only the hung-task and OOM counters work.", "none",
              [(f"sentinel_kernel_log_readable{{{S}}}", "kmsg", "A", True)], 12, 4, 0, y + 9, mappings=UPDOWN,
              links=[runbook("kernel", "SentinelKernelLogUnreadable")]),
        panel("timeseries", "Kernel log records missed (overruns)", "", "none",
              [(f"increase(sentinel_kernel_log_records_missed_total{{{S}}}[$__rate_interval])", "missed", "A")], 12, 4, 12, y + 9),
    ])


def exporter_row(y):
    return row("node-sentinel itself", y, [
        panel("timeseries", "Collector success", "", "none",
              [(f"sentinel_collector_success{{{S}}}", "{{collector}}", "A")], 6, 8, 0, y + 1, links=[runbook("exporter", "SentinelCollectorFailing")]),
        panel("timeseries", "Collector data age", "Seconds since each collector last succeeded (a saw-tooth of its interval when healthy).", "s",
              [(f"time() - sentinel_collector_last_success_timestamp_seconds{{{S}}}", "{{collector}}", "A")], 6, 8, 6, y + 1,
              thresholds=steps((None, "green"), (300, "red")), links=[runbook("exporter", "SentinelCollectorStale")]),
        panel("timeseries", "Collector run time", "", "s",
              [(f"sentinel_collector_duration_seconds{{{S}}}", "{{collector}}", "A")], 6, 8, 12, y + 1),
        panel("timeseries", "Series dropped at label caps", "Series the label caps cut in the latest round.", "none",
              [(f"max by (collector) (sentinel_series_dropped{{{S}}})", "{{collector}}", "A")], 6, 8, 18, y + 1,
              links=[runbook("exporter", "SentinelSeriesDropped")]),
        panel("table", "Build", "", "none",
              [(f"sentinel_build_info{{{S}}}", "", "A", True, True)], 24, 4, 0, y + 9),
    ])


def variables(multi_instance):
    instance = {"name": "instance", "label": "Node", "type": "query", "datasource": DS,
                "query": {"query": 'label_values(up{job=~"$job"}, instance)', "refId": "instance"},
                "definition": 'label_values(up{job=~"$job"}, instance)', "refresh": 2, "hide": 0, "sort": 1}
    if multi_instance:
        instance.update({"includeAll": True, "multi": True, "allValue": ".+",
                         "current": {"selected": True, "text": ["All"], "value": ["$__all"]}})
    else:
        # One node at a time: a panel never sums nodes, and an empty current
        # value makes Grafana pick the first node.
        instance.update({"includeAll": False, "multi": False, "current": {}})
    return {"list": [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0, "refresh": 1},
        {"name": "job", "label": "Job", "type": "query", "datasource": DS,
         "query": {"query": "label_values(sentinel_build_info, job)", "refId": "job"},
         "definition": "label_values(sentinel_build_info, job)", "refresh": 2, "current": {}, "hide": 0,
         "includeAll": False, "multi": False, "sort": 1},
        instance,
    ]}


ALERT_ANNOTATIONS = {"list": [{
    "name": "node-sentinel alerts", "datasource": DS, "enable": True, "iconColor": "red",
    "expr": f'ALERTS{{alertstate="firing", {S}}}', "step": "60s",
    "titleFormat": "{{alertname}}", "tagKeys": "severity,instance", "textFormat": "{{severity}}",
}]}


def node_dashboard():
    nid.n = 0
    panels, y = verdict(0)
    more, y = findings(y)
    panels += more
    more, y = kubelet_row(y)
    panels += more
    for build in (docker_row, cri_row, filesystem_row, systemd_row, processes_row, logs_row, kernel_row, exporter_row):
        panels.append(build(y))
        y += 1
    return {
        "uid": NODE_UID,
        "title": "node-sentinel: node health",
        "description": "Is this node about to die, and why: verdict first, then the mount, unit, process and file behind each finding (node-sentinel exporter).",
        "tags": ["node-sentinel"],
        "timezone": "",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 38,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "links": [
            {"title": "Fleet overview", "type": "link", "url": f"/d/{FLEET_UID}?var-job=$job", "targetBlank": False},
            {"title": "Runbooks", "type": "link", "url": RUNBOOKS, "targetBlank": True},
        ],
        "templating": variables(multi_instance=False),
        "annotations": ALERT_ANNOTATIONS,
        "panels": panels,
    }


# ----------------------------------------------------------------- fleet

F = S  # the same selector; $instance is a multi-select here (All = ".+")


URGENCY_HELP = (
    "Most urgent first. Urgency (instance:sentinel_urgency:score) is the worst tier of any finding: 3 dying now (exporter down, a runtime hung or down, "
    "a critical alert firing, a mount full or an eviction within 1 h, under 5 % free); 2 soon (within 4 h, under 10 % free, "
    "units stranded); 1 look (within 24 h, under 15 % free, a warning firing, zombies, failed or looping units, a process "
    "stuck in D for 2 min, a collector failing); 0 fine. The decimals rank a sooner clock first within a tier. Every "
    "column reads one series per node (alerts/node-sentinel.recording.yml); an empty cell means that collector does not "
    "run there. Click a node for its dashboard.")


def fleet_table(y):
    # Each column drops the series name, so the merge joins them on job and instance.
    by = "job, instance"
    node_link = [{"title": "Open the node dashboard",
                  "url": f"/d/{NODE_UID}?var-job=$job&var-instance=${{__value.raw}}&${{__url_time_range}}"}]
    return table(
        "Nodes by urgency", URGENCY_HELP,
        "none", [
            (f"max by ({by}) (instance:sentinel_urgency:score{{{F}}})", "", "A"),
            (f"max by ({by}) (up{{{F}}})", "", "B"),
            (f'count by ({by}) (ALERTS{{alertstate="firing", severity="critical", {F}}}) or 0 * max by ({by}) (up{{{F}}})', "", "C"),
            (f'count by ({by}) (ALERTS{{alertstate="firing", severity="warning", {F}}}) or 0 * max by ({by}) (up{{{F}}})', "", "D"),
            (f"clamp_max(instance:sentinel_seconds_until_full_or_eviction:min{{{F}}}, {YEAR})", "", "E"),
            (f"max by ({by}) (instance:sentinel_filesystem_avail_bytes:min_ratio{{{F}}})", "", "F"),
            (f"max by ({by}) (instance:sentinel_runtime_state:max{{{F}}})", "", "G"),
            (f"max by ({by}) (instance:sentinel_systemd_unit_stranded:sum{{{F}}})", "", "H"),
            (f"instance:sentinel_systemd_unit_failed:sum{{{F}}} + instance:sentinel_systemd_unit_restart_loop:sum{{{F}}}", "", "I"),
            (f"max by ({by}) (instance:sentinel_zombie_processes:sum{{{F}}})", "", "J"),
            (f"max by ({by}) (instance:sentinel_processes_uninterruptible_oldest_seconds:max{{{F}}})", "", "K"),
            (f"max by ({by}) (instance:sentinel_collector_success:failing{{{F}}})", "", "L"),
        ], 24, 14, 0, y,
        columns={"instance": "Node", "A": "Urgency", "B": "Exporter", "C": "Critical", "D": "Warning",
                 "E": "Soonest full/eviction", "F": "Lowest free", "G": "Runtime", "H": "Stranded units",
                 "I": "Failed/looping units", "J": "Zombies", "K": "Longest in D", "L": "Collectors failing"},
        sort=("Urgency", True), no_value="no node-sentinel targets",
        links=[runbook("exporter"), runbook("filesystem", "SentinelFilesystemFillingUp"), runbook("docker", "SentinelDockerHung"),
               runbook("systemd", "SentinelUnitStranded")],
        overrides=[
            column("Node", links=node_link),
            column("Urgency", decimals=2, thresholds=steps((None, "green"), (1, "yellow"), (2, "orange"), (3, "red"))),
            column("Exporter", mappings=UPDOWN),
            column("Critical", thresholds=RED_IF_ANY), column("Warning", thresholds=ORANGE_IF_ANY),
            column("Soonest full/eviction", "s", mappings=NOT_FILLING, thresholds=TIME_LEFT),
            column("Lowest free", "percentunit", thresholds=FREE_RATIO),
            column("Runtime", mappings=RUNTIME),
            column("Stranded units", thresholds=RED_IF_ANY), column("Failed/looping units", thresholds=ORANGE_IF_ANY),
            column("Zombies", thresholds=ORANGE_IF_ANY),
            column("Longest in D", "s", thresholds=steps((None, "green"), (30, "orange"), (120, "red"))),
            column("Collectors failing", thresholds=ORANGE_IF_ANY),
        ])


def fleet_dashboard():
    nid.n = 0
    by = "job, instance"
    node_link = [{"title": "Open the node dashboard",
                  "url": f"/d/{NODE_UID}?var-job=$job&var-instance=${{__value.raw}}&${{__url_time_range}}"}]
    y0 = 1
    stats = [
        panel("stat", "Nodes watched", "node-sentinel targets Prometheus scrapes (compare with your node count: a node without a target is not watched).",
              "none", [(f"count(up{{{F}}})", "nodes", "A", True)], 4, 4, 0, y0),
        panel("stat", "Exporters down", "Targets whose scrape fails: those nodes are blind.",
              "none", [(f"count(up{{{F}}} == 0) or vector(0)", "down", "A", True)], 4, 4, 4, y0, thresholds=RED_IF_ANY,
              links=[runbook("exporter", "SentinelExporterDown")]),
        panel("stat", "Nodes with a critical alert", "Nodes with at least one critical node-sentinel alert firing.",
              "none", [(f'count(count by ({by}) (ALERTS{{alertstate="firing", severity="critical", {F}}})) or vector(0)', "nodes", "A", True)],
              4, 4, 8, y0, thresholds=RED_IF_ANY),
        panel("stat", "Runtimes hung or down", "Nodes whose Docker or CRI runtime is hung or down.",
              "none", [(f"count(instance:sentinel_runtime_state:max{{{F}}} > 0) or vector(0)", "nodes", "A", True)], 4, 4, 12, y0, thresholds=RED_IF_ANY,
              links=[runbook("docker", "SentinelDockerHung"), runbook("cri", "SentinelCriRuntimeHung")]),
        panel("stat", "Nodes full or evicting within 4 h", "Nodes whose soonest clock (a mount full in bytes or inodes, a kubelet eviction signal) runs out within 4 h.",
              "none", [(f"count(instance:sentinel_seconds_until_full_or_eviction:min{{{F}}} < 14400) or vector(0)", "nodes", "A", True)], 4, 4, 16, y0, thresholds=RED_IF_ANY,
              links=[runbook("filesystem", "SentinelFilesystemFillingUp")]),
        panel("stat", "Nodes partly blind", "Nodes with at least one collector whose latest round failed.",
              "none", [(f"count(instance:sentinel_collector_success:failing{{{F}}} > 0) or vector(0)", "nodes", "A", True)], 4, 4, 20, y0,
              thresholds=ORANGE_IF_ANY, links=[runbook("exporter", "SentinelCollectorFailing")]),
    ]
    y1 = y0 + 4
    main = fleet_table(y1)
    y2 = y1 + 14
    lists = [
        table("Mounts soonest full (top 20)", "Mounts full in bytes or inodes within 7 days, soonest first (a few series: instance_mountpoint:...:filling).",
              "s", [(f"bottomk(20, instance_mountpoint:sentinel_filesystem_seconds_until_full:filling{{{F}}})", "", "A")], 12, 8, 0, y2,
              columns={"instance": "Node", "mountpoint": "Mount", "A": "Full in"}, sort=("Full in", False), no_value="nothing filling within 7 days",
              links=[runbook("filesystem", "SentinelFilesystemFillingUp")],
              overrides=[column("Node", links=node_link), column("Full in", "s", thresholds=TIME_LEFT)]),
        table("Evictions soonest (top 20)", "Kubelet eviction signals due within 7 days, soonest first; 0 = evicting now.",
              "s", [(f"bottomk(20, instance_signal:sentinel_kubelet_seconds_until_eviction:filling{{{F}}})", "", "A")], 12, 8, 12, y2,
              columns={"instance": "Node", "signal": "Signal", "mountpoint": "Mount", "A": "Evicts in"}, sort=("Evicts in", False),
              no_value="no eviction due within 7 days", links=[runbook("kubelet")],
              overrides=[column("Node", links=node_link), column("Evicts in", "s", thresholds=TIME_LEFT)]),
    ]
    y3 = y2 + 8
    rest = [
        table("Alerts firing across the fleet", "node-sentinel alerts firing now, by name and severity, with how many nodes each.",
              "none", [(f'count by (alertname, severity) (count by (alertname, severity, instance) (ALERTS{{alertstate="firing", {F}}}))', "", "A")],
              12, 8, 0, y3, columns={"alertname": "Alert", "severity": "Severity", "A": "Nodes"}, sort=("Nodes", True), no_value="none firing"),
        table("Exporter versions", "node-sentinel versions running across the fleet (one sentinel_build_info series per node).",
              "none", [(f"count by (version, revision) (sentinel_build_info{{{F}}})", "", "A")],
              12, 8, 12, y3, columns={"version": "Version", "revision": "Revision", "A": "Nodes"}, sort=("Nodes", True)),
        panel("timeseries", "Nodes by urgency tier", "How many nodes sit in each urgency tier over time (3 dying now, 2 soon, 1 look).", "none",
              [(f'count_values("tier", floor(instance:sentinel_urgency:score{{{F}}}) > 0)', "tier {{tier}}", "A")],
              24, 8, 0, y3 + 8),
    ]
    return {
        "uid": FLEET_UID,
        "title": "node-sentinel: fleet overview",
        "description": "Which nodes are about to die, and why: one row per node, most urgent first, from one series per node (recording rules in alerts/node-sentinel.recording.yml).",
        "tags": ["node-sentinel"],
        "timezone": "",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "1m",
        "schemaVersion": 38,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "links": [
            {"title": "Node dashboard", "type": "link", "url": f"/d/{NODE_UID}?var-job=$job", "targetBlank": False},
            {"title": "Runbooks", "type": "link", "url": RUNBOOKS, "targetBlank": True},
        ],
        "templating": variables(multi_instance=True),
        "annotations": {"list": []},
        "panels": [row("Fleet: which nodes are about to die, and why", 0, [], collapsed=False)] + stats + [main] + lists + rest,
    }


def render(dashboard):
    return json.dumps(dashboard, indent=2) + "\n"


def main():
    outputs = {NODE_OUT: render(node_dashboard()), FLEET_OUT: render(fleet_dashboard())}
    check = "--check" in sys.argv[1:]
    for path, text in outputs.items():
        if check:
            try:
                with open(path) as fh:
                    same = fh.read() == text
            except FileNotFoundError:
                same = False
            if not same:
                sys.exit(f"{path} is out of date: run python3 dashboards/generate.py")
        else:
            with open(path, "w") as fh:
                fh.write(text)


if __name__ == "__main__":
    main()
