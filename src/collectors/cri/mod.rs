//! CRI collector: is the container runtime behind the kubelet (containerd,
//! CRI-O, cri-dockerd) answering, hung, or gone, and what runs on it.
//!
//! Reads: the CRI gRPC API (`runtime.v1`) over the runtime's unix socket,
//! read-only calls only: `Version`, `Status`, `ListPodSandbox`,
//! `ListContainers`, `ImageFsInfo`, and `ContainerStats` of one running
//! container per round, round-robin by id. `Status` reports RuntimeReady
//! hard-coded in containerd and CRI-O, so only the latency and timeouts of
//! real calls show a hang; `ListContainers` takes every container's status
//! lock (what the kubelet's PLEG calls every second); `ContainerStats`
//! reaches one container's shim, so a hung shim shows as that container
//! stuck, not as the runtime hung. The runtime's PID comes from SO_PEERCRED
//! on a plain connection to the socket, its start time from /proc/PID/stat
//! (the shared [`probing::daemon`](crate::collectors::probing::daemon) lookup, as for docker).
//!
//! The endpoint: `--collector.cri.endpoint`, else the kubelet's
//! `containerRuntimeEndpoint` (from `/var/lib/kubelet/config.yaml` or
//! `/etc/kubernetes/kubelet/config.json`), else the first of the well-known
//! sockets that answers `Version` (Docker's own containerd answers
//! `unimplemented` and is skipped). All host paths are resolved under
//! `--path.rootfs` as the host resolves them, and again at every connect, so
//! a recreated socket is seen. Until an endpoint is known the runtime is "not
//! installed": no subject series at all, so no runtime alert can fire.
//!
//! Exports `sentinel_cri_up`, `_hung`, `_probe_duration_seconds{operation}`,
//! `_probe_in_flight_seconds{operation}`,
//! `sentinel_cri_probe_failures_total{operation,reason}`,
//! `_last_success_timestamp_seconds{operation}`,
//! `_info{runtime_name,runtime_version,runtime_api_version}`,
//! `_runtime_condition{condition}`, `sentinel_cri_runtime_restarts_total`,
//! `_runtime_start_time_seconds`, `_pod_sandboxes{state}`, `_containers{state}`,
//! `_container_stuck{namespace,pod,container}` (capped by
//! `--collector.cri.max-containers`) and `_image_filesystem_used_bytes{mountpoint}`.
//!
//! Rules, the same as docker's through the same code ([`probing`](crate::collectors::probing)): each call
//! runs as its own task under `--collector.cri.timeout`, at most one per
//! operation (single-flight), so a hung runtime holds at most one call per
//! operation from us, all on one HTTP/2 connection; `collect` only starts
//! tasks and reads their results. Hung = the socket accepts connections and
//! a runtime-wide call has gone unanswered for `--collector.cri.hang-threshold`
//! (across abandoned calls); refused or missing = down, not hung. A panicking
//! probe task ends as a failed probe of reason `decode`, never a hang.

pub mod api;
mod endpoint;
mod state;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::collector::{CollectError, Collection, Collector, ErrorKind, FailureLog, unix_now};
use crate::collectors::probing::daemon::{self, Check, DownKind, Target};
use crate::collectors::probing::{Ending, Socket};
use crate::host::Paths;
use crate::metrics::{Family, Labels, flag};
use crate::panics;
use crate::values::parse_positive_duration;

use state::{CONTAINER_STATES, Op, Reason, SANDBOX_STATES, State};

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Collector: cri")]
#[group(skip)]
pub struct Args {
    /// How often the cri collector probes the runtime.
    #[arg(id = "collector.cri.interval", long = "collector.cri.interval", value_name = "DURATION", default_value = "5s", value_parser = parse_positive_duration)]
    pub interval: Duration,
    /// The CRI runtime's socket (unix:///path or a path, a host path); empty:
    /// the kubelet's containerRuntimeEndpoint, else the first well-known
    /// socket that serves the CRI API.
    #[arg(
        id = "collector.cri.endpoint",
        long = "collector.cri.endpoint",
        value_name = "URL",
        default_value = ""
    )]
    pub endpoint: String,
    /// A call is abandoned after this long.
    #[arg(id = "collector.cri.timeout", long = "collector.cri.timeout", value_name = "DURATION", default_value = "30s", value_parser = parse_positive_duration)]
    pub timeout: Duration,
    /// A call unanswered this long while the socket accepts connections means the runtime is hung.
    #[arg(id = "collector.cri.hang-threshold", long = "collector.cri.hang-threshold", value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration)]
    pub hang_threshold: Duration,
    /// At most this many running containers (first by name) get a
    /// `_container_stuck` series; the stats probe cycles through them (0 turns both off).
    #[arg(
        id = "collector.cri.max-containers",
        long = "collector.cri.max-containers",
        value_name = "N",
        default_value = "100"
    )]
    pub max_containers: usize,
}

/// The image filesystems' mountpoints from the latest ImageFsInfo answer:
/// published for the kubelet collector (its imagefs).
static IMAGE_FILESYSTEMS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The mountpoints (host paths) of the runtime's image filesystems, as
/// ImageFsInfo last answered; empty until it has.
pub fn image_filesystems() -> Vec<String> {
    panics::lock(&IMAGE_FILESYSTEMS).clone()
}

/// The plain connect never needs long: a listener answers a connect from the kernel.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The process names a CRI runtime's socket peer may have (comm, 15 bytes).
const RUNTIME_COMMS: &[&str] = &["containerd", "crio", "cri-dockerd", "k3s-server", "k3s-agent", "k3s"];

/// Settings shared with the probe tasks.
#[derive(Debug)]
struct Config {
    timeout: Duration,
    hang_threshold: Duration,
    paths: Paths,
    identify: daemon::Identify,
}

/// The runtime being watched, once known.
struct Watched {
    /// The socket as a host path.
    host_path: String,
    channel: Channel,
}

/// Probes the CRI runtime in background tasks; see the module docs.
pub struct CriCollector {
    config: Arc<Config>,
    /// `--collector.cri.endpoint`, parsed; `None` = auto-detect.
    configured: Result<Option<String>, String>,
    shared: Arc<Mutex<State>>,
    watched: Option<Watched>,
    /// Set by the detection task when it found the endpoint.
    detected: Arc<Mutex<Option<String>>>,
    detecting: Option<JoinHandle<()>>,
    socket_log: FailureLog,
    hung: bool,
    tasks: Vec<JoinHandle<()>>,
}

fn lock(shared: &Mutex<State>) -> MutexGuard<'_, State> {
    panics::lock(shared)
}

/// The claim of a probe of `op` that has begun; abandoned, it ends as a failed
/// probe of reason `decode` (never a timeout, so never a hang).
fn probe_claim(
    shared: Arc<Mutex<State>>,
    op: Op,
) -> Ending<State, impl FnOnce(&mut State, Option<String>)> {
    let started = Instant::now();
    Ending::new(shared, move |st: &mut State, panicked| {
        st.finish(op, Err(Reason::Decode), started.elapsed(), unix_now());
        if let Some(text) = panicked {
            let detail = format!("the {} probe {text}; counted as reason decode", op.label());
            st.op_mut(op).panic_log.failed("cri", "panic", &detail);
        }
    })
}

impl CriCollector {
    pub fn new(args: &Args, paths: &Paths) -> Self {
        let configured = match args.endpoint.trim() {
            "" => Ok(None),
            e => endpoint::parse(e)
                .map(Some)
                .map_err(|why| format!("--collector.cri.endpoint={e}: {why}")),
        };
        CriCollector {
            config: Arc::new(Config {
                timeout: args.timeout,
                hang_threshold: args.hang_threshold,
                paths: paths.clone(),
                identify: daemon::Identify::new("cri", RUNTIME_COMMS, paths, None),
            }),
            configured,
            shared: Arc::new(Mutex::new(State::new(args.max_containers))),
            watched: None,
            detected: Arc::new(Mutex::new(None)),
            detecting: None,
            socket_log: FailureLog::default(),
            hung: false,
            tasks: Vec::new(),
        }
    }

    /// Pick the endpoint: the flag's at once, else the result of a
    /// background detection (single-flight), retried each round until found.
    fn select(&mut self) {
        if self.watched.is_some() {
            return;
        }
        let chosen = match &self.configured {
            Ok(Some(path)) => Some(path.clone()),
            _ => panics::lock(&self.detected).take(),
        };
        if let Some(host_path) = chosen {
            tracing::info!(source = "cri", "watching the CRI runtime at {host_path}");
            let channel = endpoint::channel(&self.config.paths, &host_path);
            self.watched = Some(Watched { host_path, channel });
            return;
        }
        if self.detecting.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let paths = self.config.paths.clone();
        let timeout = self.config.timeout.min(Duration::from_secs(5));
        let detected = self.detected.clone();
        self.detecting = Some(tokio::spawn(panics::quiet(async move {
            if let Some(found) = endpoint::detect(&paths, timeout).await {
                *panics::lock(&detected) = Some(found);
            }
        })));
    }

    fn start_socket_check(&mut self, now: Instant, host_path: &str) {
        {
            let mut st = lock(&self.shared);
            // Once hung, skip it: a stopped runtime never accepts, so each
            // connect would wait in its backlog (as for docker).
            if st.socket_check_in_flight || st.hung(now, self.config.hang_threshold) {
                return;
            }
            st.socket_check_in_flight = true;
        }
        let shared = self.shared.clone();
        let config = self.config.clone();
        let host_path = host_path.to_string();
        let ending = Ending::new(shared, |st: &mut State, panicked| {
            st.socket_check_in_flight = false;
            if let Some(text) = panicked {
                st.check_panic_log.failed("cri", "panic", &format!("the socket check {text}"));
            }
        });
        self.tasks.push(tokio::spawn(panics::quiet(async move {
            let timeout = CHECK_TIMEOUT.min(config.timeout);
            let check = match config.paths.resolve(&host_path) {
                Ok(path) => daemon::check(&Target::Unix(path), timeout).await,
                Err(e) => match e.io_kind() {
                    Some(std::io::ErrorKind::PermissionDenied) => Check::Down(DownKind::PermissionDenied),
                    Some(std::io::ErrorKind::NotFound) => Check::Down(DownKind::Missing),
                    _ => Check::Down(DownKind::Other),
                },
            };
            let identity = config.identify.find(check);
            ending.finish(|st| {
                st.socket_check_in_flight = false;
                st.check_panic_log.ok("cri");
                st.socket = match check {
                    Check::Accepting { .. } | Check::Backlogged => Socket::Accepting,
                    Check::Down(_) => Socket::Down,
                };
                st.last_check = Some(check);
                if let Some(id) = identity {
                    st.observe_identity(id);
                }
            });
        })));
    }

    /// Start one probe per operation that has none outstanding.
    fn start_probes(&mut self, now: Instant, channel: &Channel) {
        let mut st = lock(&self.shared);
        for op in Op::ALL {
            if st.op(op).in_flight.is_some() {
                continue;
            }
            let target = match op {
                Op::ContainerStats => match st.next_stats() {
                    Some(id) => Some(id),
                    None => continue,
                },
                _ => None,
            };
            if op == Op::ContainerStats {
                st.stats_target.clone_from(&target);
            }
            st.begin(op, now);
            let channel = channel.clone();
            let timeout = self.config.timeout;
            let ending = probe_claim(self.shared.clone(), op);
            self.tasks.push(tokio::spawn(panics::quiet(async move {
                let started = Instant::now();
                let outcome =
                    tokio::time::timeout(timeout, endpoint::run(&channel, op, target)).await;
                // On timeout the call's future is dropped here, resetting its stream.
                let result = outcome.unwrap_or(Err(Reason::Timeout));
                let elapsed = started.elapsed();
                panics::inject_panic("cri", op.label());
                ending.finish(|st| {
                    if result.is_ok() {
                        st.op_mut(op).panic_log.ok("cri");
                    }
                    st.finish(op, result, elapsed, unix_now());
                });
            })));
        }
    }

    fn log_changes(&mut self, st: &State, hung: bool, host_path: &str) {
        match st.last_check {
            Some(Check::Down(kind)) => {
                let detail = match kind {
                    DownKind::PermissionDenied => format!(
                        "cannot connect to {host_path}: permission denied; the exporter needs root to reach the CRI socket"
                    ),
                    DownKind::Missing => format!("{host_path} does not exist: the CRI runtime is down"),
                    _ => format!("{host_path} refuses connections: the CRI runtime is down"),
                };
                self.socket_log.failed("cri", kind.label(), &detail);
            }
            Some(_) => self.socket_log.ok("cri"),
            None => {}
        }
        if hung != self.hung {
            if hung {
                tracing::warn!(
                    source = "cri",
                    "runtime hung: the socket accepts connections but a CRI call is unanswered for {:?} or more",
                    self.config.hang_threshold
                );
            } else {
                tracing::info!(source = "cri", "runtime no longer hung");
            }
            self.hung = hung;
        }
    }

    fn snapshot(&mut self, now: Instant, host_path: &str) -> Collection {
        let shared = self.shared.clone();
        let st = lock(&shared);
        let threshold = self.config.hang_threshold;
        let hung = st.hung(now, threshold);
        self.log_changes(&st, hung, host_path);
        let op_label = |op: Op| -> Labels { vec![("operation", op.label().to_string())] };

        let mut up = Family::gauge(
            "sentinel_cri_up",
            "1 if the latest CRI Version call answered and none has waited for the hang threshold.",
        );
        up.push(vec![], flag(st.up(now, threshold)));
        let mut hung_f = Family::gauge(
            "sentinel_cri_hung",
            "1 if the socket accepts connections but a runtime-wide CRI call has gone unanswered for the hang threshold.",
        );
        hung_f.push(vec![], flag(hung));
        let mut duration = Family::histogram(
            "sentinel_cri_probe_duration_seconds",
            "Latency of answered CRI calls.",
        );
        let mut in_flight = Family::gauge(
            "sentinel_cri_probe_in_flight_seconds",
            "Age of the outstanding call, 0 when none; grows while the runtime hangs.",
        );
        let mut failures = Family::counter(
            "sentinel_cri_probe_failures",
            "Failed CRI calls by reason (timeout, connect, grpc_status, decode).",
        );
        let mut last_success = Family::gauge(
            "sentinel_cri_last_success_timestamp_seconds",
            "Unix time of the latest answered call.",
        );
        for op in Op::ALL {
            let s = st.op(op);
            duration.push_histogram(op_label(op), s.duration.clone());
            in_flight.push(op_label(op), s.in_flight_for(now).as_secs_f64());
            for reason in Reason::ALL {
                let mut labels = op_label(op);
                labels.push(("reason", reason.label().to_string()));
                failures.push(labels, s.failures[reason as usize] as f64);
            }
            if let Some(t) = s.last_success_unix {
                last_success.push(op_label(op), t);
            }
        }
        let mut info = Family::gauge(
            "sentinel_cri_info",
            "The CRI runtime's name, version and API version; always 1.",
        );
        if let Some((name, version, api)) = &st.info {
            info.push(
                vec![
                    ("runtime_api_version", api.clone()),
                    ("runtime_name", name.clone()),
                    ("runtime_version", version.clone()),
                ],
                1.0,
            );
        }
        let mut conditions = Family::gauge(
            "sentinel_cri_runtime_condition",
            "The runtime's Status conditions, 1 = true (RuntimeReady, NetworkReady).",
        );
        for (c, v) in &st.conditions {
            conditions.push(vec![("condition", c.clone())], flag(*v));
        }
        let mut restarts = Family::counter(
            "sentinel_cri_runtime_restarts",
            "Runtime restarts seen (PID or start time of the process behind the socket changed).",
        );
        restarts.push(vec![], st.restarts as f64);
        let mut start_time = Family::gauge(
            "sentinel_cri_runtime_start_time_seconds",
            "Unix start time of the runtime process (latest seen).",
        );
        if let Some(id) = st.identity {
            start_time.push(vec![], id.start_unix);
        }
        let mut sandboxes = Family::gauge(
            "sentinel_cri_pod_sandboxes",
            "Pod sandboxes by state, from the latest list.",
        );
        for (i, s) in SANDBOX_STATES.iter().enumerate() {
            sandboxes.push(vec![("state", (*s).to_string())], st.sandboxes[i] as f64);
        }
        let mut containers = Family::gauge(
            "sentinel_cri_containers",
            "Containers by state, from the latest list.",
        );
        for (i, s) in CONTAINER_STATES.iter().enumerate() {
            containers.push(vec![("state", (*s).to_string())], st.containers[i] as f64);
        }
        let mut stuck = Family::gauge(
            "sentinel_cri_container_stuck",
            "1 while this container's ContainerStats call has gone unanswered for the hang threshold (a hung shim); capped by --collector.cri.max-containers.",
        );
        for (id, t) in &st.tracked {
            stuck.push(
                vec![
                    ("container", t.name.container.clone()),
                    ("namespace", t.name.namespace.clone()),
                    ("pod", t.name.pod.clone()),
                ],
                flag(st.stuck(id, t, now, threshold)),
            );
        }
        let mut image_fs = Family::gauge(
            "sentinel_cri_image_filesystem_used_bytes",
            "Bytes the runtime's images use on each image filesystem, from ImageFsInfo.",
        );
        for (mountpoint, used) in &st.image_fs {
            image_fs.push(vec![("mountpoint", mountpoint.clone())], *used as f64);
        }
        if !st.image_fs.is_empty() {
            *panics::lock(&IMAGE_FILESYSTEMS) = st.image_fs.iter().map(|(m, _)| m.clone()).collect();
        }
        Collection {
            families: vec![
                up, hung_f, duration, in_flight, failures, last_success, info, conditions,
                restarts, start_time, sandboxes, containers, stuck, image_fs,
            ],
            series_dropped: st.untracked,
        }
    }
}

impl Collector for CriCollector {
    fn name(&self) -> &'static str {
        "cri"
    }

    async fn collect(&mut self) -> Result<Collection, CollectError> {
        if let Err(message) = &self.configured {
            return Err(CollectError::new(ErrorKind::Config, message.clone()));
        }
        self.tasks.retain(|t| !t.is_finished());
        self.select();
        let Some(watched) = &self.watched else {
            // Not installed: no subject series, so no runtime alert can fire.
            return Ok(crate::collector::not_installed("cri"));
        };
        let (host_path, channel) = (watched.host_path.clone(), watched.channel.clone());
        let now = Instant::now();
        self.start_socket_check(now, &host_path);
        self.start_probes(now, &channel);
        Ok(self.snapshot(now, &host_path))
    }
}

impl Drop for CriCollector {
    fn drop(&mut self) {
        for task in self.tasks.iter().chain(&self.detecting) {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_probe_task_ends_as_a_failure_not_a_hang() {
        let shared = Arc::new(Mutex::new(State::new(10)));
        let t0 = Instant::now();
        {
            let mut st = lock(&shared);
            st.socket = Socket::Accepting;
            assert!(st.begin(Op::ListContainers, t0));
        }
        let ending = probe_claim(shared.clone(), Op::ListContainers);
        let task = tokio::spawn(panics::quiet(async move {
            tokio::task::yield_now().await;
            ending.finish(|_| panic!("decoding went wrong"));
        }));
        assert!(task.await.unwrap_err().is_panic());
        let st = lock(&shared);
        assert_eq!(st.op(Op::ListContainers).in_flight, None);
        assert_eq!(st.op(Op::ListContainers).failures[Reason::Decode as usize], 1);
        assert!(!st.hung(t0 + Duration::from_secs(3600), Duration::from_secs(10)));
    }

    #[tokio::test]
    async fn without_an_endpoint_nothing_is_exported() {
        let base = std::env::temp_dir().join(format!("sentinel-cri-none-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        let paths = Paths {
            rootfs: base.clone(),
            ..Paths::default()
        };
        let args = Args {
            interval: Duration::from_secs(1),
            endpoint: String::new(),
            timeout: Duration::from_secs(1),
            hang_threshold: Duration::from_secs(1),
            max_containers: 10,
        };
        let mut c = CriCollector::new(&args, &paths);
        for _ in 0..3 {
            let got = c.collect().await.unwrap();
            assert!(got.families.iter().any(|f| f.name == crate::collector::INSTALLED));
            assert!(got.families.iter().all(|f| !f.name.starts_with("sentinel_cri_")));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        std::fs::remove_dir_all(&base).unwrap();
    }
}
