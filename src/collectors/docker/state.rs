//! The collector's shared state: what the probe tasks write when they finish
//! and what `collect` reads. Pure logic only (no I/O), so it is table-tested.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::collector::FailureLog;
use crate::collectors::probing::{self, FailureReason};
pub use crate::collectors::probing::{Identity, Socket};

/// The probed API operations, in label order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Ping,
    Version,
    Info,
    Containers,
    Inspect,
}

impl Op {
    pub const ALL: [Op; 5] = [Op::Ping, Op::Version, Op::Info, Op::Containers, Op::Inspect];

    pub fn label(self) -> &'static str {
        match self {
            Op::Ping => "ping",
            Op::Version => "version",
            Op::Info => "info",
            Op::Containers => "containers",
            Op::Inspect => "inspect",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why a probe failed: a fixed set, never error text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No answer within `--collector.docker.timeout` (or bollard's own header timeout).
    Timeout,
    /// The socket is missing, refuses, or may not be opened (permission).
    Connect,
    /// The daemon answered with a non-success HTTP status.
    HttpStatus,
    /// The connection broke: closed early, reset, incomplete message.
    Io,
    /// The answer was not HTTP or not the JSON we expect.
    Decode,
}

impl Reason {
    pub const ALL: [Reason; 5] = [
        Reason::Timeout,
        Reason::Connect,
        Reason::HttpStatus,
        Reason::Io,
        Reason::Decode,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Reason::Timeout => "timeout",
            Reason::Connect => "connect",
            Reason::HttpStatus => "http_status",
            Reason::Io => "io",
            Reason::Decode => "decode",
        }
    }

}

impl FailureReason for Reason {
    fn index(self) -> usize {
        self as usize
    }

    fn is_timeout(self) -> bool {
        self == Reason::Timeout
    }

    fn answered(self) -> bool {
        matches!(self, Reason::HttpStatus | Reason::Decode)
    }
}

/// Container states reported by `sentinel_docker_containers`, always all six.
pub const STATES: [&str; 6] = [
    "running",
    "paused",
    "restarting",
    "exited",
    "created",
    "dead",
];

/// Health of a container that has a health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Starting,
    Healthy,
    Unhealthy,
}

impl Health {
    pub const ALL: [Health; 3] = [Health::Starting, Health::Healthy, Health::Unhealthy];

    pub fn label(self) -> &'static str {
        match self {
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }
}

/// One container as the list probe saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    /// Index into [`STATES`]; None for states outside the six (removing, stopping).
    pub state: Option<usize>,
    /// Set for a container the kubelet created (its `io.kubernetes.*` labels).
    pub pod: Option<PodContainer>,
}

/// A container the kubelet made, named as Kubernetes names it. The kubelet
/// restarts a container by creating a new one (`k8s_C_P_NS_UID_<attempt>`),
/// so the Docker name changes with every restart and Docker's own restart
/// count stays 0; the kubelet keeps its count in a label instead.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodContainer {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// `io.kubernetes.container.restartCount`; None if missing or not a number.
    pub restart_count: Option<i64>,
}

/// The kubelet's (dockershim's, cri-dockerd's) container labels.
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const POD_NAME: &str = "io.kubernetes.pod.name";
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
pub const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";

impl PodContainer {
    /// From a container's labels: all three names present and non-empty, or none.
    pub fn from_labels(get: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let name = |key: &str| get(key).filter(|v| !v.is_empty());
        Some(PodContainer {
            namespace: name(POD_NAMESPACE)?,
            pod: name(POD_NAME)?,
            container: name(CONTAINER_NAME)?,
            restart_count: get(RESTART_COUNT).and_then(|v| v.trim().parse().ok()),
        })
    }

    fn identity(&self) -> (&str, &str, &str) {
        (&self.namespace, &self.pod, &self.container)
    }
}

/// What the per-container series of one tracked container are labelled by.
pub fn subject_labels(name: &str, pod: Option<&PodContainer>) -> Vec<(&'static str, String)> {
    match pod {
        Some(p) => vec![
            ("container", p.container.clone()),
            ("namespace", p.namespace.clone()),
            ("pod", p.pod.clone()),
        ],
        None => vec![("name", name.to_string())],
    }
}

/// What inspect told us about one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detail {
    pub restart_count: i64,
    pub health: Option<Health>,
}

/// A successful probe's payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Ping,
    Version {
        version: Option<String>,
        api_version: Option<String>,
    },
    Info {
        storage_driver: Option<String>,
    },
    Containers(Vec<Listed>),
    Inspect {
        name: String,
        detail: Detail,
    },
}

/// `version` and `info` are asked at most this often while they answer: their
/// answers hardly change, and dockerd up to 20.10 at least runs `runc
/// --version` (a fork and exec) on every `/info`. `ping`, `containers` and
/// `inspect` stay on the interval: they are what sees a hang.
pub const SLOW_EVERY: Duration = Duration::from_secs(60);

/// Per-operation bookkeeping, one failure counter per [`Reason`].
pub type OpState = probing::OpState<5>;

/// Everything the collector knows, shared between probe tasks and `collect`.
#[derive(Debug)]
pub struct State {
    pub ops: [OpState; 5],
    /// When each operation's latest probe began.
    begun: [Option<Instant>; 5],
    pub socket: Socket,
    pub socket_check_in_flight: bool,
    /// Logs a panicking socket check once, and its recovery.
    pub check_panic_log: FailureLog,
    /// The latest plain connect's result, for the failure log.
    pub last_check: Option<probing::daemon::Check>,
    /// Generation of the client whose API version was negotiated.
    pub negotiated: u64,
    pub identity: Option<Identity>,
    pub restarts: u64,
    /// Set when the daemon changed: the client is rebuilt and the API version negotiated again.
    pub renegotiate: bool,
    pub version: Option<String>,
    pub api_version: Option<String>,
    pub storage_driver: Option<String>,
    pub counts: [u64; 6],
    /// Running or restarting containers that get per-container series, sorted, at most the cap.
    pub tracked: Vec<String>,
    /// The kubelet's names of the tracked containers it made.
    pub pods: BTreeMap<String, PodContainer>,
    /// Containers left out by the cap in the latest list.
    pub untracked: u64,
    pub details: BTreeMap<String, Detail>,
    /// The name inspected last, for round-robin.
    pub cursor: Option<String>,
    cap: usize,
}

impl State {
    pub fn new(cap: usize) -> Self {
        State {
            ops: Default::default(),
            begun: [None; 5],
            socket: Socket::Unknown,
            socket_check_in_flight: false,
            check_panic_log: FailureLog::default(),
            last_check: None,
            negotiated: 0,
            identity: None,
            restarts: 0,
            renegotiate: false,
            version: None,
            api_version: None,
            storage_driver: None,
            counts: [0; 6],
            tracked: Vec::new(),
            pods: BTreeMap::new(),
            untracked: 0,
            details: BTreeMap::new(),
            cursor: None,
            cap,
        }
    }

    pub fn op(&self, op: Op) -> &OpState {
        &self.ops[op.index()]
    }

    pub fn op_mut(&mut self, op: Op) -> &mut OpState {
        &mut self.ops[op.index()]
    }

    /// Mark a probe as started; false if one is already outstanding (single-flight).
    pub fn begin(&mut self, op: Op, now: Instant) -> bool {
        let started = self.op_mut(op).begin(now);
        if started {
            self.begun[op.index()] = Some(now);
        }
        started
    }

    /// Whether a probe of `op` should start now: none outstanding, and for
    /// `version` and `info` the latest began [`SLOW_EVERY`] ago, or failed
    /// (a failing one is retried on the interval, so its recovery, and the end
    /// of a hang, is seen as soon as for the others).
    pub fn due(&self, op: Op, now: Instant) -> bool {
        let s = self.op(op);
        if s.in_flight.is_some() {
            return false;
        }
        match (op, self.begun[op.index()]) {
            (Op::Version | Op::Info, Some(at)) => {
                !s.last_ok || now.saturating_duration_since(at) >= SLOW_EVERY
            }
            _ => true,
        }
    }

    /// Record a finished probe: `elapsed` is the measured request time.
    pub fn finish(
        &mut self,
        op: Op,
        result: Result<Answer, Reason>,
        elapsed: Duration,
        unix_now: f64,
    ) {
        let (status, answer) = match result {
            Ok(a) => (Ok(()), Some(a)),
            Err(e) => (Err(e), None),
        };
        self.op_mut(op).finish(status, elapsed, unix_now);
        if let Some(answer) = answer {
            self.apply(answer);
        }
    }

    fn apply(&mut self, answer: Answer) {
        match answer {
            Answer::Ping => {}
            Answer::Version {
                version,
                api_version,
            } => {
                self.version = version;
                self.api_version = api_version;
            }
            Answer::Info { storage_driver } => self.storage_driver = storage_driver,
            Answer::Containers(list) => self.apply_list(&list),
            Answer::Inspect { name, detail } => {
                // A container may have gone from the list since the probe began.
                if self.tracked.binary_search(&name).is_ok() {
                    self.details.insert(name, detail);
                }
            }
        }
    }

    fn apply_list(&mut self, list: &[Listed]) {
        self.counts = [0; 6];
        let mut candidates: Vec<&Listed> = Vec::new();
        for c in list {
            if let Some(i) = c.state {
                self.counts[i] += 1;
                if STATES[i] == "running" || STATES[i] == "restarting" {
                    candidates.push(c);
                }
            }
        }
        // One series per pod container, whatever its attempt: if two attempts
        // run at once (the old one still stopping), the later one (higher
        // restart count, then the later name) speaks for it.
        candidates.sort_by(|a, b| {
            fn id(c: &Listed) -> Option<(&str, &str, &str)> {
                c.pod.as_ref().map(PodContainer::identity)
            }
            id(a)
                .cmp(&id(b))
                .then(b.pod.as_ref().map(|p| p.restart_count).cmp(&a.pod.as_ref().map(|p| p.restart_count)))
                .then(b.name.cmp(&a.name))
        });
        candidates.dedup_by(|later, kept| match (&later.pod, &kept.pod) {
            (Some(a), Some(b)) => a.identity() == b.identity(),
            (None, None) => later.name == kept.name,
            _ => false,
        });
        candidates.sort_by(|a, b| a.name.cmp(&b.name));
        // The cap keeps the alphabetically first names, so the chosen set is stable between rounds.
        self.untracked = candidates.len().saturating_sub(self.cap) as u64;
        candidates.truncate(self.cap);
        let names: Vec<String> = candidates.iter().map(|c| c.name.clone()).collect();
        self.details.retain(|name, _| names.binary_search(name).is_ok());
        self.pods = candidates
            .iter()
            .filter_map(|c| Some((c.name.clone(), c.pod.clone()?)))
            .collect();
        self.tracked = names;
    }

    /// The per-container restart count of a tracked container: the kubelet's
    /// count for a pod container (Docker's own stays 0 there), else Docker's
    /// from inspect; None until known.
    pub fn restart_count(&self, name: &str) -> Option<i64> {
        self.pods
            .get(name)
            .and_then(|p| p.restart_count)
            .or_else(|| self.details.get(name).map(|d| d.restart_count))
    }

    /// The next container to inspect, round-robin by name; None when none runs.
    pub fn next_inspect(&mut self) -> Option<String> {
        let next = match &self.cursor {
            Some(last) => self
                .tracked
                .iter()
                .find(|n| n.as_str() > last.as_str())
                .or_else(|| self.tracked.first()),
            None => self.tracked.first(),
        }
        .cloned();
        if next.is_some() {
            self.cursor.clone_from(&next);
        }
        next
    }

    /// Record the daemon behind the socket; counts a restart when PID or start time changed.
    pub fn observe_identity(&mut self, id: Identity) {
        if let Some(prev) = self.identity
            && (prev.pid != id.pid || prev.start_ticks != id.start_ticks)
        {
            self.restarts += 1;
            self.renegotiate = true;
            // A new daemon: its version and storage driver are asked at once.
            self.begun = [None; 5];
        }
        self.identity = Some(id);
    }

    /// Hung: something accepts connections but a probe has gone unanswered for the threshold.
    pub fn hung(&self, now: Instant, threshold: Duration) -> bool {
        self.socket == Socket::Accepting
            && self.ops.iter().any(|s| s.unanswered_for(now) >= threshold)
    }

    /// Up: the latest ping answered OK and no ping has been waiting for the hang threshold.
    pub fn up(&self, now: Instant, threshold: Duration) -> bool {
        let ping = self.op(Op::Ping);
        ping.last_ok && ping.unanswered_for(now) < threshold
    }
}

/// The series name of a container: its first name without the leading slash.
/// Docker lists legacy link aliases (`/web/db`) as extra names; skip those.
pub fn container_name(names: &[String]) -> Option<String> {
    let plain = names
        .iter()
        .find(|n| !n.trim_start_matches('/').contains('/'))
        .or_else(|| names.first())?;
    let name = plain.trim_start_matches('/');
    (!name.is_empty()).then(|| name.to_string())
}

/// Index of a container state in [`STATES`].
pub fn state_index(state: &str) -> Option<usize> {
    STATES.iter().position(|s| *s == state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(name: &str, state: &str) -> Listed {
        Listed {
            name: name.into(),
            state: state_index(state),
            pod: None,
        }
    }

    fn pod(name: &str, state: &str, ns: &str, pod: &str, c: &str, restarts: Option<i64>) -> Listed {
        Listed {
            pod: Some(PodContainer {
                namespace: ns.into(),
                pod: pod.into(),
                container: c.into(),
                restart_count: restarts,
            }),
            ..listed(name, state)
        }
    }

    #[test]
    fn pod_containers_from_labels() {
        let labels = |pairs: &[(&str, &str)]| {
            let map: BTreeMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            PodContainer::from_labels(|k| map.get(k).cloned())
        };
        let full = [
            (POD_NAMESPACE, "kube-system"),
            (POD_NAME, "coredns-5d78c9869d-abcde"),
            (CONTAINER_NAME, "coredns"),
            (RESTART_COUNT, "7"),
        ];
        let p = labels(&full).unwrap();
        assert_eq!(
            (p.namespace.as_str(), p.pod.as_str(), p.container.as_str(), p.restart_count),
            ("kube-system", "coredns-5d78c9869d-abcde", "coredns", Some(7))
        );
        // A count that is not a number is unknown, not 0.
        assert_eq!(labels(&[full[0], full[1], full[2], (RESTART_COUNT, "x")]).unwrap().restart_count, None);
        assert_eq!(labels(&full[..3]).unwrap().restart_count, None);
        // Not the kubelet's: a plain container, whatever else it carries.
        assert_eq!(labels(&[]), None);
        assert_eq!(labels(&full[1..]), None);
        assert_eq!(labels(&[(POD_NAMESPACE, ""), full[1], full[2]]), None);
        assert_eq!(labels(&[("com.docker.compose.service", "web")]), None);
        assert_eq!(
            subject_labels("k8s_coredns_x", Some(&p)),
            vec![
                ("container", "coredns".to_string()),
                ("namespace", "kube-system".to_string()),
                ("pod", "coredns-5d78c9869d-abcde".to_string()),
            ]
        );
        assert_eq!(subject_labels("web", None), vec![("name", "web".to_string())]);
    }

    #[test]
    fn one_series_per_pod_container_with_the_kubelets_restart_count() {
        let mut s = State::new(10);
        let attempt = |n: i64, state| {
            pod(&format!("k8s_app_web-0_prod_uid_{n}"), state, "prod", "web-0", "app", Some(n))
        };
        s.finish(
            Op::Containers,
            Ok(Answer::Containers(vec![
                attempt(3, "exited"),
                attempt(4, "running"),
                // The old attempt still shown running while the new one starts.
                attempt(2, "running"),
                pod("k8s_POD_web-0_prod_uid_0", "running", "prod", "web-0", "POD", Some(0)),
                pod("k8s_side_web-0_prod_uid_0", "running", "prod", "web-0", "side", None),
                listed("plain", "running"),
            ])),
            Duration::ZERO,
            1.0,
        );
        assert_eq!(s.counts[0], 5);
        assert_eq!(
            s.tracked,
            vec![
                "k8s_POD_web-0_prod_uid_0",
                "k8s_app_web-0_prod_uid_4",
                "k8s_side_web-0_prod_uid_0",
                "plain"
            ]
        );
        assert_eq!(s.untracked, 0, "an old attempt is not a dropped series");
        // Known from the list at once, before any inspect.
        assert_eq!(s.restart_count("k8s_app_web-0_prod_uid_4"), Some(4));
        assert_eq!(s.restart_count("plain"), None);
        assert_eq!(s.restart_count("k8s_side_web-0_prod_uid_0"), None);
        for name in ["plain", "k8s_side_web-0_prod_uid_0", "k8s_app_web-0_prod_uid_4"] {
            s.finish(
                Op::Inspect,
                Ok(Answer::Inspect {
                    name: name.into(),
                    detail: Detail {
                        restart_count: 2,
                        health: None,
                    },
                }),
                Duration::ZERO,
                1.0,
            );
        }
        assert_eq!(s.restart_count("plain"), Some(2));
        // Without the kubelet's label, Docker's own count is all there is.
        assert_eq!(s.restart_count("k8s_side_web-0_prod_uid_0"), Some(2));
        assert_eq!(s.restart_count("k8s_app_web-0_prod_uid_4"), Some(4));
        // The next attempt replaces the old one under the same subject.
        s.finish(
            Op::Containers,
            Ok(Answer::Containers(vec![attempt(4, "exited"), attempt(5, "running")])),
            Duration::ZERO,
            2.0,
        );
        assert_eq!(s.tracked, vec!["k8s_app_web-0_prod_uid_5"]);
        assert_eq!(s.restart_count("k8s_app_web-0_prod_uid_5"), Some(5));
        assert_eq!(s.pods.len(), 1);
        assert!(s.details.is_empty());
    }

    #[test]
    fn version_and_info_at_most_once_a_minute_while_they_answer() {
        let t0 = Instant::now();
        let at = |secs| t0 + Duration::from_secs(secs);
        let mut s = State::new(10);
        for op in Op::ALL {
            assert!(s.due(op, t0), "{op:?} is due at first");
            assert!(s.begin(op, t0));
            assert!(!s.due(op, t0), "{op:?} is single-flight");
            s.finish(op, Ok(Answer::Ping), Duration::ZERO, 0.0);
        }
        for op in [Op::Ping, Op::Containers, Op::Inspect] {
            assert!(s.due(op, at(5)), "{op:?} stays on the interval");
        }
        for op in [Op::Version, Op::Info] {
            assert!(!s.due(op, at(5)), "{op:?}");
            assert!(!s.due(op, at(59)), "{op:?}");
            assert!(s.due(op, at(60)), "{op:?}");
        }
        // A failed one is retried on the interval.
        assert!(s.begin(Op::Info, at(60)));
        s.finish(Op::Info, Err(Reason::Timeout), Duration::ZERO, 0.0);
        assert!(s.due(Op::Info, at(61)));
        assert!(s.begin(Op::Info, at(61)));
        s.finish(Op::Info, Ok(Answer::Ping), Duration::ZERO, 0.0);
        assert!(!s.due(Op::Info, at(70)));
        // A restarted daemon is asked at once.
        let id = |pid| Identity {
            pid,
            start_ticks: 1,
            start_unix: 0.0,
        };
        s.observe_identity(id(1));
        s.observe_identity(id(2));
        assert!(s.due(Op::Info, at(70)));
        assert!(s.due(Op::Version, at(70)));
    }

    #[test]
    fn list_counts_all_states_and_caps_tracked_names() {
        let mut s = State::new(2);
        s.details.insert(
            "gone".into(),
            Detail {
                restart_count: 1,
                health: None,
            },
        );
        s.finish(
            Op::Containers,
            Ok(Answer::Containers(vec![
                listed("c", "running"),
                listed("a", "running"),
                listed("b", "restarting"),
                listed("d", "exited"),
                listed("e", "dead"),
                listed("f", "removing"),
            ])),
            Duration::from_millis(3),
            100.0,
        );
        assert_eq!(s.counts, [2, 0, 1, 1, 0, 1]);
        assert_eq!(s.tracked, vec!["a", "b"]);
        assert_eq!(s.untracked, 1);
        assert!(
            s.details.is_empty(),
            "details of vanished containers are pruned"
        );
        assert_eq!(s.op(Op::Containers).last_success_unix, Some(100.0));
        assert_eq!(s.op(Op::Containers).duration.count, 1);
    }

    #[test]
    fn inspect_round_robin_wraps_and_survives_removal() {
        let mut s = State::new(10);
        assert_eq!(s.next_inspect(), None);
        s.tracked = vec!["a".into(), "b".into(), "c".into()];
        let order: Vec<_> = (0..4).filter_map(|_| s.next_inspect()).collect();
        assert_eq!(order, vec!["a", "b", "c", "a"]);
        // "b" (next after the cursor "a") is gone: continue with the next name after it.
        s.tracked = vec!["c".into(), "d".into()];
        assert_eq!(s.next_inspect().as_deref(), Some("c"));
    }

    #[test]
    fn single_flight_and_hang_across_abandoned_probes() {
        let t0 = Instant::now();
        let mut s = State::new(10);
        s.socket = Socket::Accepting;
        let threshold = Duration::from_secs(10);
        assert!(s.begin(Op::Containers, t0));
        assert!(
            !s.begin(Op::Containers, t0),
            "a second probe must not start"
        );
        assert!(!s.hung(t0 + Duration::from_secs(9), threshold));
        assert!(s.hung(t0 + Duration::from_secs(10), threshold));
        // Abandoned after a timeout shorter than the threshold: the hang keeps its start.
        s.finish(Op::Containers, Err(Reason::Timeout), Duration::ZERO, 0.0);
        assert!(s.begin(Op::Containers, t0 + Duration::from_secs(6)));
        assert_eq!(
            s.op(Op::Containers)
                .in_flight_for(t0 + Duration::from_secs(8)),
            Duration::from_secs(2)
        );
        assert!(s.hung(t0 + Duration::from_secs(11), threshold));
        // Down is never hung.
        s.socket = Socket::Down;
        assert!(!s.hung(t0 + Duration::from_secs(11), threshold));
        s.socket = Socket::Accepting;
        // Any answer ends the hang.
        s.finish(Op::Containers, Ok(Answer::Ping), Duration::ZERO, 0.0);
        assert!(!s.hung(t0 + Duration::from_secs(12), threshold));
        assert_eq!(s.op(Op::Containers).failures[Reason::Timeout as usize], 1);
    }

    #[test]
    fn non_timeout_failures_are_not_hangs_but_count() {
        let t0 = Instant::now();
        let mut s = State::new(10);
        s.socket = Socket::Accepting;
        for reason in [
            Reason::Connect,
            Reason::Io,
            Reason::Decode,
            Reason::HttpStatus,
        ] {
            assert!(s.begin(Op::Ping, t0));
            s.finish(Op::Ping, Err(reason), Duration::from_millis(1), 0.0);
        }
        assert!(!s.hung(t0 + Duration::from_secs(100), Duration::from_secs(1)));
        assert!(!s.up(t0, Duration::from_secs(1)));
        assert_eq!(s.op(Op::Ping).failures, [0, 1, 1, 1, 1]);
        // Only answered failures have a latency.
        assert_eq!(s.op(Op::Ping).duration.count, 2);
    }

    #[test]
    fn up_needs_an_ok_ping_and_no_long_wait() {
        let t0 = Instant::now();
        let th = Duration::from_secs(3);
        let mut s = State::new(10);
        assert!(!s.up(t0, th));
        s.begin(Op::Ping, t0);
        s.finish(Op::Ping, Ok(Answer::Ping), Duration::ZERO, 1.0);
        assert!(s.up(t0, th));
        s.begin(Op::Ping, t0);
        assert!(s.up(t0 + Duration::from_secs(2), th));
        assert!(!s.up(t0 + Duration::from_secs(3), th));
    }

    #[test]
    fn restarts_count_pid_or_start_time_changes_only() {
        let id = |pid, ticks| Identity {
            pid,
            start_ticks: ticks,
            start_unix: 0.0,
        };
        let mut s = State::new(10);
        s.observe_identity(id(10, 500));
        s.observe_identity(id(10, 500));
        assert_eq!(s.restarts, 0);
        assert!(!s.renegotiate);
        s.observe_identity(id(11, 900));
        // PID reuse with a new start time is a restart too.
        s.observe_identity(id(11, 950));
        assert_eq!(s.restarts, 2);
        assert!(s.renegotiate);
    }

    #[test]
    fn inspect_of_an_untracked_name_is_ignored() {
        let mut s = State::new(1);
        s.tracked = vec!["a".into()];
        let detail = Detail {
            restart_count: 3,
            health: Some(Health::Unhealthy),
        };
        for name in ["a", "zz"] {
            s.begin(Op::Inspect, Instant::now());
            s.finish(
                Op::Inspect,
                Ok(Answer::Inspect {
                    name: name.into(),
                    detail,
                }),
                Duration::ZERO,
                0.0,
            );
        }
        assert_eq!(s.details.len(), 1);
        assert_eq!(s.details.get("a"), Some(&detail));
    }

    #[test]
    fn container_names() {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(container_name(&v(&["/web"])).as_deref(), Some("web"));
        assert_eq!(
            container_name(&v(&["/web/db", "/db"])).as_deref(),
            Some("db")
        );
        assert_eq!(container_name(&v(&["/a/b"])).as_deref(), Some("a/b"));
        assert_eq!(container_name(&v(&[])), None);
        assert_eq!(container_name(&v(&["/"])), None);
        assert_eq!(state_index("dead"), Some(5));
        assert_eq!(state_index("removing"), None);
    }
}
