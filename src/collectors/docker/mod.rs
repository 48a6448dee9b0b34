//! Docker collector: is the daemon answering, hung, or gone, and what runs on it.
//!
//! Reads: the Docker Engine API over `--collector.docker.host` (unix socket or
//! tcp), GET only: `/_ping`, `/version`, `/info`, `/containers/json?all=1` and
//! `/containers/NAME/json` for one running (or restarting) container per round,
//! round-robin by name. `/_ping` and `/version` keep answering while the
//! container store is locked (kubernetes#17525, moby#18848), so the list and
//! inspect probes are what catch real hangs. The daemon's PID comes from
//! SO_PEERCRED on a plain connection to the socket (checked to be `dockerd` via
//! `--path.procfs`; under socket activation the peer is systemd, so the
//! pidfile is the fallback, resolved inside `--path.rootfs` as the host
//! resolves it), its start time from /proc/PID/stat.
//!
//! Exports `sentinel_docker_up`, `_hung`, `_probe_duration_seconds{operation}`,
//! `_probe_in_flight_seconds{operation}`, `sentinel_docker_probe_failures_total{operation,reason}`,
//! `_last_success_timestamp_seconds{operation}`, `sentinel_docker_daemon_restarts_total`,
//! `_daemon_start_time_seconds`, `_daemon_identity_failures_total`, `_containers{state}`, `_info{version,api_version,storage_driver}`,
//! and per container (capped by `--collector.docker.max-containers`):
//! `sentinel_docker_container_restarts_total` and `_container_health{status}`, labelled
//! `{name}`, or `{namespace,pod,container}` for a container the kubelet made.
//!
//! Privileges: access to the socket (root or the docker group); reading
//! /proc/PID/stat of dockerd (any user) for the restart detection.
//!
//! Rules and their limits:
//! - Not installed (METRICS.md): until there is a sign of Docker (the socket,
//!   `/var/lib/docker` under `--path.rootfs`, or the pidfile naming a live
//!   dockerd) the collector exports only `sentinel_collector_installed{collector="docker"} 0`,
//!   so no Docker alert can fire on a containerd or CRI-O node. Once seen it
//!   is watched for good: a vanished socket is down.
//! - The probe bookkeeping (single-flight, hang spans, the drop guard, the
//!   plain connect and /proc identity) is shared with the cri collector
//!   ([`probing`](crate::collectors::probing)).
//! - Every probe runs as its own task under `--collector.docker.timeout`, at
//!   most one per operation at any time (single-flight): a hung daemon never
//!   collects more than one connection per operation from us. `collect` only
//!   starts tasks and reads their shared results, so it returns at once.
//! - A probe task that panics (a bug) ends as a failed probe of reason `io`,
//!   its in-flight mark released by a drop guard, so it is probed again next
//!   round and never reads as hung; the panic is logged once per operation.
//!   The socket check is guarded the same way.
//! - Hung = the socket accepts connections (a plain connect, no HTTP, a full
//!   backlog counts as accepting) and some operation has gone unanswered for
//!   `--collector.docker.hang-threshold` (across abandoned probes, so a
//!   threshold above the timeout works too). Refused or missing = down, not hung.
//! - A connection to a stopped daemon stays queued in its backlog even after
//!   we close it (the kernel keeps it until dockerd accepts), so the plain
//!   connect pauses while hung; what remains is one new probe connection per
//!   operation per timeout, never an open descriptor more than one per operation.
//! - Per-container values come from inspect, one container per round: with N
//!   containers each is refreshed every N intervals. Container counts, info and
//!   per-container values are the latest answers; their age is in
//!   `_last_success_timestamp_seconds{operation}`.
//! - Kubernetes nodes (dockershim, cri-dockerd): a container with the
//!   kubelet's `io.kubernetes.pod.namespace`, `.pod.name` and
//!   `.container.name` labels is labelled by those, never by its Docker name
//!   (`k8s_C_P_NS_UID_<attempt>` changes at every restart, so it would make a
//!   series per attempt), one series per pod container (the latest attempt
//!   when two run); its restart count is the kubelet's
//!   `io.kubernetes.container.restartCount` from the list (Docker's own stays
//!   0 there), Docker's from inspect when that label is missing.
//! - `version` and `info` are probed at most once a minute while they answer
//!   (dockerd up to 20.10 at least forks `runc --version` on every `/info`),
//!   on the interval while they fail, and at once after a daemon restart;
//!   `ping`, `containers` and `inspect` every interval (see [`state::SLOW_EVERY`]).

mod probe;
mod state;
mod transport;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bollard::Docker;
use tokio::task::JoinHandle;

use crate::collector::{CollectError, Collection, Collector, ErrorKind, FailureLog, unix_now};
use crate::host::Paths;
use crate::metrics::{Family, Labels, flag};
use crate::panics;
use crate::values::parse_positive_duration;

use crate::collectors::probing::Ending;
use crate::collectors::probing::daemon::{self, Check, DownKind, Target};
use state::{Health, Op, Reason, STATES, Socket, State};

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Collector: docker")]
#[group(skip)]
pub struct Args {
    /// How often the docker collector probes the daemon.
    #[arg(id = "collector.docker.interval", long = "collector.docker.interval", value_name = "DURATION", default_value = "5s", value_parser = parse_positive_duration)]
    pub interval: Duration,
    /// Docker daemon address (unix:///path or tcp://host:port).
    #[arg(
        id = "collector.docker.host",
        long = "collector.docker.host",
        value_name = "URL",
        env = "DOCKER_HOST",
        default_value = "unix:///var/run/docker.sock"
    )]
    pub host: String,
    /// A probe is abandoned after this long.
    #[arg(id = "collector.docker.timeout", long = "collector.docker.timeout", value_name = "DURATION", default_value = "30s", value_parser = parse_positive_duration)]
    pub timeout: Duration,
    /// A probe unanswered this long while the socket accepts connections means the daemon is hung.
    #[arg(id = "collector.docker.hang-threshold", long = "collector.docker.hang-threshold", value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration)]
    pub hang_threshold: Duration,
    /// At most this many containers (running or restarting, first by name) get
    /// per-container series; the inspect probe cycles through them (0 turns both off).
    #[arg(
        id = "collector.docker.max-containers",
        long = "collector.docker.max-containers",
        value_name = "N",
        default_value = "100"
    )]
    pub max_containers: usize,
    /// dockerd's pidfile (a host path, resolved under --path.rootfs as the host
    /// resolves it), used for the daemon's PID when the socket's peer is not
    /// dockerd (socket activation). Empty disables it.
    #[arg(
        id = "collector.docker.pidfile",
        long = "collector.docker.pidfile",
        value_name = "PATH",
        default_value = "/var/run/docker.pid"
    )]
    pub pidfile: String,
}

/// The plain connect never needs long: a listener answers a connect from the kernel.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Settings shared with the probe tasks.
#[derive(Debug)]
struct Config {
    target: Target,
    timeout: Duration,
    hang_threshold: Duration,
    identify: daemon::Identify,
}

/// Probes the Docker daemon in background tasks; see the module docs.
pub struct DockerCollector {
    config: Arc<Config>,
    shared: Arc<Mutex<State>>,
    client: Option<Docker>,
    /// Bumped whenever the client is rebuilt; version negotiation is per client.
    generation: u64,
    socket_log: FailureLog,
    hung: bool,
    tasks: Vec<JoinHandle<()>>,
    paths: Paths,
    /// Set at the first sign of Docker on the node, and kept.
    installed: bool,
}

/// Docker's state directory: its presence is a sign of Docker even while the daemon is dead.
const STATE_DIR: &str = "/var/lib/docker";

/// A panicking probe task must not take the collector down with it.
fn lock(shared: &Mutex<State>) -> MutexGuard<'_, State> {
    panics::lock(shared)
}

/// The claim of a probe of `op` that has begun. Abandoned, it ends as a failed
/// probe of reason `io`: not a timeout, so never a hang, and the panic or
/// abort dropped the request mid-exchange, which is what `io` counts.
fn probe_claim(
    shared: Arc<Mutex<State>>,
    op: Op,
) -> Ending<State, impl FnOnce(&mut State, Option<String>)> {
    let started = Instant::now();
    Ending::new(shared, move |st: &mut State, panicked| {
        st.finish(op, Err(Reason::Io), started.elapsed(), unix_now());
        if let Some(text) = panicked {
            let detail = format!("the {} probe {text}; counted as reason io", op.label());
            st.op_mut(op).panic_log.failed("docker", "panic", &detail);
        }
    })
}

impl DockerCollector {
    pub fn new(args: &Args, paths: &Paths) -> Self {
        let target = Target::parse(&args.host);
        let pidfile = match (&target, args.pidfile.is_empty()) {
            (Target::Unix(_), false) => Some(args.pidfile.clone()),
            _ => None,
        };
        DockerCollector {
            config: Arc::new(Config {
                target,
                timeout: args.timeout,
                hang_threshold: args.hang_threshold,
                identify: daemon::Identify::new("docker", &["dockerd"], paths, pidfile),
            }),
            shared: Arc::new(Mutex::new(State::new(args.max_containers))),
            client: None,
            generation: 0,
            socket_log: FailureLog::default(),
            hung: false,
            tasks: Vec::new(),
            paths: paths.clone(),
            installed: false,
        }
    }

    /// Any sign of Docker on the node (METRICS.md's "not installed" rule): a
    /// tcp address (given on purpose), the socket, the state directory under
    /// `--path.rootfs`, or a pidfile naming a live dockerd. A /proc scan for
    /// any dockerd would also see other namespaces' daemons, so it is not one.
    /// systemd's unit list is the systemd collector's, and is not asked here.
    fn sign_of_docker(&self) -> bool {
        match &self.config.target {
            Target::Tcp(_) | Target::Unsupported(_) => true,
            Target::Unix(path) => {
                std::fs::symlink_metadata(path).is_ok()
                    || self
                        .paths
                        .resolve(STATE_DIR)
                        .is_ok_and(|p| std::fs::symlink_metadata(p).is_ok())
                    || self.config.identify.pidfile_names_a_daemon()
            }
        }
    }

    /// Start the plain connect (single-flight) that tells accepting from down
    /// and names the daemon process.
    fn start_socket_check(&mut self, now: Instant) {
        {
            let mut st = lock(&self.shared);
            // Once hung, skip it: a stopped daemon never accepts, so each connect
            // would wait in its backlog. Our outstanding probes already prove the
            // listener, and if the daemon dies they fail (not by timeout), which
            // ends the hang and brings the check back.
            if st.socket_check_in_flight || st.hung(now, self.config.hang_threshold) {
                return;
            }
            st.socket_check_in_flight = true;
        }
        let shared = self.shared.clone();
        let config = self.config.clone();
        let ending = Ending::new(shared.clone(), |st: &mut State, panicked| {
            st.socket_check_in_flight = false;
            if let Some(text) = panicked {
                let detail = format!("the socket check {text}");
                st.check_panic_log.failed("docker", "panic", &detail);
            }
        });
        self.tasks.push(tokio::spawn(panics::quiet(async move {
            let timeout = CHECK_TIMEOUT.min(config.timeout);
            let check = daemon::check(&config.target, timeout).await;
            let identity = config.identify.find(check);
            ending.finish(|st| {
                st.socket_check_in_flight = false;
                st.check_panic_log.ok("docker");
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
    fn start_probes(&mut self, now: Instant) {
        let mut st = lock(&self.shared);
        if std::mem::take(&mut st.renegotiate) {
            // A new daemon may speak another API version.
            self.client = None;
        }
        if self.client.is_none() {
            match probe::client(&self.config.target, self.config.timeout) {
                Ok(c) => {
                    self.client = Some(c);
                    self.generation += 1;
                }
                Err(e) => {
                    // Nothing to send a request over: every due probe fails at once.
                    let reason = probe::classify(&e);
                    for op in Op::ALL {
                        if op != Op::Inspect && st.due(op, now) && st.begin(op, now) {
                            st.finish(op, Err(reason), Duration::ZERO, unix_now());
                        }
                    }
                    return;
                }
            }
        }
        let Some(client) = self.client.clone() else {
            return;
        };
        for op in Op::ALL {
            // A new client must negotiate its API version before anything else works.
            let must_negotiate = op == Op::Version && st.negotiated != self.generation;
            let free = st.op(op).in_flight.is_none();
            if !(st.due(op, now) || must_negotiate && free) {
                continue;
            }
            let target = match op {
                Op::Inspect => match st.next_inspect() {
                    Some(name) => Some(name),
                    None => continue,
                },
                _ => None,
            };
            st.begin(op, now);
            let negotiate = op == Op::Version && st.negotiated != self.generation;
            let generation = self.generation;
            let shared = self.shared.clone();
            let docker = client.clone();
            let timeout = self.config.timeout;
            let ending = probe_claim(shared, op);
            self.tasks.push(tokio::spawn(panics::quiet(async move {
                let outcome = tokio::time::timeout(
                    timeout,
                    probe::run(&docker, op, target.as_deref(), negotiate),
                )
                .await;
                // On timeout the request future is dropped here, closing its connection.
                let (result, elapsed) = outcome.unwrap_or((Err(Reason::Timeout), timeout));
                panics::inject_panic("docker", op.label());
                ending.finish(|st| {
                    if negotiate && result.is_ok() {
                        st.negotiated = generation;
                    }
                    if result.is_ok() {
                        st.op_mut(op).panic_log.ok("docker");
                    }
                    st.finish(op, result, elapsed, unix_now());
                });
            })));
        }
    }

    /// Log socket trouble once per change, and hang transitions.
    fn log_changes(&mut self, st: &State, hung: bool) {
        match st.last_check {
            Some(Check::Down(kind)) => {
                let detail = match (&self.config.target, kind) {
                    (Target::Unix(path), DownKind::PermissionDenied) => format!(
                        "cannot connect to {}: permission denied; the exporter needs root or membership in the socket's group (usually docker)",
                        path.display()
                    ),
                    (Target::Unix(path), DownKind::Missing) => {
                        format!("{} does not exist: docker is down", path.display())
                    }
                    (Target::Unix(path), DownKind::Refused) => format!(
                        "{} refuses connections (not a socket, or no daemon listening): docker is down",
                        path.display()
                    ),
                    (target, _) => format!("cannot connect to {target:?}: docker is down"),
                };
                self.socket_log.failed("docker", kind.label(), &detail);
            }
            Some(_) => self.socket_log.ok("docker"),
            None => {}
        }
        if hung != self.hung {
            if hung {
                tracing::warn!(
                    source = "docker",
                    "daemon hung: the socket accepts connections but a probe is unanswered for {:?} or more",
                    self.config.hang_threshold
                );
            } else {
                let why = if st.socket == Socket::Down {
                    "the socket is gone or refuses connections"
                } else {
                    "probes are answered again"
                };
                tracing::info!(source = "docker", "daemon no longer hung: {why}");
            }
            self.hung = hung;
        }
    }

    /// The families from the shared state as of `now`.
    fn snapshot(&mut self, now: Instant) -> Collection {
        let shared = self.shared.clone();
        let st = lock(&shared);
        let threshold = self.config.hang_threshold;
        let hung = st.hung(now, threshold);
        self.log_changes(&st, hung);
        let op_label = |op: Op| -> Labels { vec![("operation", op.label().to_string())] };

        let mut up = Family::gauge(
            "sentinel_docker_up",
            "1 if the latest ping answered OK within the timeout (and no ping has waited for the hang threshold).",
        );
        up.push(vec![], flag(st.up(now, threshold)));
        let mut hung_f = Family::gauge(
            "sentinel_docker_hung",
            "1 if the socket accepts connections but a probe has gone unanswered for at least the hang threshold; 0 when answering or down.",
        );
        hung_f.push(vec![], flag(hung));

        let mut duration = Family::histogram(
            "sentinel_docker_probe_duration_seconds",
            "Latency of answered Docker API probes.",
        );
        let mut in_flight = Family::gauge(
            "sentinel_docker_probe_in_flight_seconds",
            "Age of the outstanding probe, 0 when none; grows while the daemon hangs.",
        );
        let mut failures = Family::counter(
            "sentinel_docker_probe_failures",
            "Failed probes by reason (timeout, connect, http_status, io, decode).",
        );
        let mut last_success = Family::gauge(
            "sentinel_docker_last_success_timestamp_seconds",
            "Unix time of the latest answered probe.",
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

        let mut restarts = Family::counter(
            "sentinel_docker_daemon_restarts",
            "Daemon restarts seen (PID or start time of the process behind the socket changed).",
        );
        restarts.push(vec![], st.restarts as f64);
        let mut identity_failures = Family::counter(
            "sentinel_docker_daemon_identity_failures",
            "Socket checks that could not name the daemon process for a reason other than its absence (/proc or pidfile unreadable or garbled); restarts go unseen meanwhile.",
        );
        identity_failures.push(vec![], self.config.identify.failures() as f64);
        let mut start_time = Family::gauge(
            "sentinel_docker_daemon_start_time_seconds",
            "Unix start time of the daemon process (latest seen).",
        );
        if let Some(id) = st.identity {
            start_time.push(vec![], id.start_unix);
        }

        let mut containers = Family::gauge(
            "sentinel_docker_containers",
            "Containers by state, from the latest list.",
        );
        for (i, state) in STATES.iter().enumerate() {
            containers.push(vec![("state", (*state).to_string())], st.counts[i] as f64);
        }
        let mut info = Family::gauge(
            "sentinel_docker_info",
            "Docker daemon version, API version and storage driver; always 1.",
        );
        if let Some(version) = &st.version {
            info.push(
                vec![
                    ("api_version", st.api_version.clone().unwrap_or_default()),
                    (
                        "storage_driver",
                        st.storage_driver.clone().unwrap_or_default(),
                    ),
                    ("version", version.clone()),
                ],
                1.0,
            );
        }

        let mut container_restarts = Family::counter(
            "sentinel_docker_container_restarts",
            "Restarts of the container: the kubelet's count for a pod's container (io.kubernetes.container.restartCount), else Docker's (capped by --collector.docker.max-containers; Docker's refreshed round-robin).",
        );
        let mut container_health = Family::gauge(
            "sentinel_docker_container_health",
            "1 for the container's current health status (containers with a health check only; capped).",
        );
        for name in &st.tracked {
            let subject = state::subject_labels(name, st.pods.get(name));
            if let Some(n) = st.restart_count(name) {
                container_restarts.push(subject.clone(), n as f64);
            }
            if let Some(current) = st.details.get(name).and_then(|d| d.health) {
                for h in Health::ALL {
                    let mut labels = subject.clone();
                    labels.push(("status", h.label().to_string()));
                    container_health.push(labels, flag(h == current));
                }
            }
        }

        Collection {
            families: vec![
                up,
                hung_f,
                duration,
                in_flight,
                failures,
                last_success,
                restarts,
                identity_failures,
                start_time,
                containers,
                info,
                container_restarts,
                container_health,
            ],
            series_dropped: st.untracked,
        }
    }
}

impl Collector for DockerCollector {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn collect(&mut self) -> Result<Collection, CollectError> {
        if let Target::Unsupported(host) = &self.config.target {
            return Err(CollectError::new(
                ErrorKind::Config,
                format!(
                    "--collector.docker.host={host}: only unix:// and tcp:// (or http://) addresses are supported"
                ),
            ));
        }
        if !self.installed {
            self.installed = self.sign_of_docker();
            if !self.installed {
                // No subject series, so no Docker alert can fire on this node.
                return Ok(crate::collector::not_installed("docker"));
            }
            tracing::info!(source = "docker", "docker is installed on this node: watching it");
        }
        let now = Instant::now();
        self.tasks.retain(|t| !t.is_finished());
        self.start_socket_check(now);
        self.start_probes(now);
        Ok(self.snapshot(now))
    }
}

impl Drop for DockerCollector {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_probe_task_ends_as_an_io_failure_not_a_hang() {
        let shared = Arc::new(Mutex::new(State::new(10)));
        let t0 = Instant::now();
        {
            let mut st = lock(&shared);
            st.socket = Socket::Accepting;
            assert!(st.begin(Op::Info, t0));
        }
        let ending = probe_claim(shared.clone(), Op::Info);
        let task = tokio::spawn(panics::quiet(async move {
            tokio::task::yield_now().await;
            // Panics while holding the lock, too: the claim is still released.
            ending.finish(|_| panic!("decoding went wrong"));
        }));
        assert!(task.await.unwrap_err().is_panic());
        let st = lock(&shared);
        assert_eq!(st.op(Op::Info).in_flight, None);
        assert_eq!(st.op(Op::Info).failures[Reason::Io as usize], 1);
        assert!(!st.hung(t0 + Duration::from_secs(3600), Duration::from_secs(10)));
    }

    #[tokio::test]
    async fn a_finished_probe_leaves_a_later_probe_alone() {
        let shared = Arc::new(Mutex::new(State::new(10)));
        lock(&shared).begin(Op::Ping, Instant::now());
        let ending = probe_claim(shared.clone(), Op::Ping);
        ending.finish(|st| {
            st.finish(Op::Ping, Ok(state::Answer::Ping), Duration::ZERO, 1.0);
            // The next probe begins before this task's claim is dropped.
            assert!(st.begin(Op::Ping, Instant::now()));
        });
        let st = lock(&shared);
        assert!(st.op(Op::Ping).in_flight.is_some());
        assert_eq!(st.op(Op::Ping).failures, [0; 5]);
    }
}
