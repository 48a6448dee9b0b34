//! The CRI collector's shared state: what the probe tasks write when they
//! finish and what `collect` reads. Pure logic only (no I/O), so it is
//! table-tested. The per-operation bookkeeping is the shared
//! [`probing::OpState`], as for docker.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::collector::FailureLog;
use crate::collectors::probing::{self, FailureReason, Identity, Socket};

/// The probed CRI calls, in label order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Version,
    Status,
    ListPodSandboxes,
    ListContainers,
    ImageFsInfo,
    ContainerStats,
}

impl Op {
    pub const ALL: [Op; 6] = [
        Op::Version,
        Op::Status,
        Op::ListPodSandboxes,
        Op::ListContainers,
        Op::ImageFsInfo,
        Op::ContainerStats,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Op::Version => "version",
            Op::Status => "status",
            Op::ListPodSandboxes => "list_pod_sandboxes",
            Op::ListContainers => "list_containers",
            Op::ImageFsInfo => "image_fs_info",
            Op::ContainerStats => "container_stats",
        }
    }

    /// Whether a hang of this call is the runtime's: container_stats reaches
    /// one container's shim, whose hang is that container's.
    pub fn runtime_wide(self) -> bool {
        self != Op::ContainerStats
    }
}

/// Why a probe failed: a fixed set, never error text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No answer within `--collector.cri.timeout`.
    Timeout,
    /// The socket is missing, refuses, or may not be opened.
    Connect,
    /// The runtime answered with a gRPC error status (unimplemented, not found...).
    GrpcStatus,
    /// The answer was not HTTP/2 gRPC, or not the message we expect, or the
    /// connection broke mid-exchange.
    Decode,
}

impl Reason {
    pub const ALL: [Reason; 4] = [
        Reason::Timeout,
        Reason::Connect,
        Reason::GrpcStatus,
        Reason::Decode,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Reason::Timeout => "timeout",
            Reason::Connect => "connect",
            Reason::GrpcStatus => "grpc_status",
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
        matches!(self, Reason::GrpcStatus | Reason::Decode)
    }
}

pub type OpState = probing::OpState<4>;

/// `sentinel_cri_pod_sandboxes{state}`, in the CRI enum's order.
pub const SANDBOX_STATES: [&str; 2] = ["ready", "notready"];
/// `sentinel_cri_containers{state}`, in the CRI enum's order.
pub const CONTAINER_STATES: [&str; 4] = ["created", "running", "exited", "unknown"];
/// The Status conditions always exported (others are added as seen, capped).
pub const CONDITIONS: [&str; 2] = ["RuntimeReady", "NetworkReady"];
/// Conditions beyond the two standard ones are runtime-defined: keep a few.
const MAX_CONDITIONS: usize = 8;
/// Image filesystems per runtime: one or two in practice.
const MAX_IMAGE_FS: usize = 8;

/// A running container as `sentinel_cri_container_stuck` names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name {
    pub namespace: String,
    pub pod: String,
    pub container: String,
}

/// One container as the list probe saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub name: Name,
    /// The CRI `ContainerState` value.
    pub state: i32,
}

/// A successful probe's payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Version {
        runtime_name: String,
        runtime_version: String,
        runtime_api_version: String,
    },
    Status(Vec<(String, bool)>),
    Sandboxes(Vec<i32>),
    Containers(Vec<Listed>),
    ImageFs(Vec<(String, u64)>),
    Stats { id: String },
}

/// A running container tracked for the stats round-robin.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub name: Name,
    /// Start of the first stats call in the current run of timeouts.
    pub unanswered_since: Option<Instant>,
}

/// Everything the collector knows, shared between probe tasks and `collect`.
#[derive(Debug)]
pub struct State {
    pub ops: [OpState; 6],
    pub socket: Socket,
    pub socket_check_in_flight: bool,
    pub check_panic_log: FailureLog,
    pub last_check: Option<probing::daemon::Check>,
    pub identity: Option<Identity>,
    pub restarts: u64,
    pub info: Option<(String, String, String)>,
    pub conditions: BTreeMap<String, bool>,
    pub sandboxes: [u64; 2],
    pub containers: [u64; 4],
    /// Running containers by id, at most the cap (first by name).
    pub tracked: BTreeMap<String, Tracked>,
    /// Running containers left out by the cap in the latest list.
    pub untracked: u64,
    /// The container whose stats call is outstanding.
    pub stats_target: Option<String>,
    /// The id probed last, for round-robin.
    pub cursor: Option<String>,
    pub image_fs: Vec<(String, u64)>,
    cap: usize,
}

impl State {
    pub fn new(cap: usize) -> Self {
        State {
            ops: Default::default(),
            socket: Socket::Unknown,
            socket_check_in_flight: false,
            check_panic_log: FailureLog::default(),
            last_check: None,
            identity: None,
            restarts: 0,
            info: None,
            conditions: CONDITIONS.iter().map(|c| (c.to_string(), false)).collect(),
            sandboxes: [0; 2],
            containers: [0; 4],
            tracked: BTreeMap::new(),
            untracked: 0,
            stats_target: None,
            cursor: None,
            image_fs: Vec::new(),
            cap,
        }
    }

    pub fn op(&self, op: Op) -> &OpState {
        &self.ops[op as usize]
    }

    pub fn op_mut(&mut self, op: Op) -> &mut OpState {
        &mut self.ops[op as usize]
    }

    /// Mark a probe as started; false if one is already outstanding (single-flight).
    pub fn begin(&mut self, op: Op, now: Instant) -> bool {
        self.op_mut(op).begin(now)
    }

    /// Record a finished probe: `elapsed` is the measured call time.
    pub fn finish(&mut self, op: Op, result: Result<Answer, Reason>, elapsed: Duration, unix_now: f64) {
        let started = self.op(op).in_flight;
        let (status, answer) = match result {
            Ok(a) => (Ok(()), Some(a)),
            Err(e) => (Err(e), None),
        };
        self.op_mut(op).finish(status, elapsed, unix_now);
        if op == Op::ContainerStats
            && let Some(id) = self.stats_target.take()
            && let Some(t) = self.tracked.get_mut(&id)
        {
            match status {
                Err(Reason::Timeout) => t.unanswered_since = t.unanswered_since.or(started),
                _ => t.unanswered_since = None,
            }
        }
        if let Some(answer) = answer {
            self.apply(answer);
        }
    }

    fn apply(&mut self, answer: Answer) {
        match answer {
            Answer::Version {
                runtime_name,
                runtime_version,
                runtime_api_version,
            } => self.info = Some((runtime_name, runtime_version, runtime_api_version)),
            Answer::Status(conditions) => {
                for c in self.conditions.values_mut() {
                    *c = false;
                }
                for (name, value) in conditions {
                    if self.conditions.contains_key(&name) || self.conditions.len() < MAX_CONDITIONS {
                        self.conditions.insert(name, value);
                    }
                }
            }
            Answer::Sandboxes(states) => {
                self.sandboxes = [0; 2];
                for s in states {
                    // An unknown enum value is the closest to "not ready".
                    let i = usize::try_from(s).unwrap_or(1).min(1);
                    self.sandboxes[i] += 1;
                }
            }
            Answer::Containers(list) => self.apply_list(list),
            Answer::ImageFs(mut fs) => {
                fs.sort();
                fs.dedup_by(|a, b| a.0 == b.0);
                fs.truncate(MAX_IMAGE_FS);
                self.image_fs = fs;
            }
            Answer::Stats { .. } => {}
        }
    }

    fn apply_list(&mut self, list: Vec<Listed>) {
        self.containers = [0; 4];
        let mut running = Vec::new();
        for c in list {
            let i = usize::try_from(c.state).unwrap_or(3).min(3);
            self.containers[i] += 1;
            if i == 1 {
                running.push((c.name, c.id));
            }
        }
        // The cap keeps the first by name, so the chosen set is stable between rounds.
        running.sort();
        running.dedup_by(|a, b| a.0 == b.0);
        self.untracked = running.len().saturating_sub(self.cap) as u64;
        running.truncate(self.cap);
        let mut old = std::mem::take(&mut self.tracked);
        for (name, id) in running {
            let unanswered_since = old.remove(&id).and_then(|t| t.unanswered_since);
            self.tracked.insert(
                id,
                Tracked {
                    name,
                    unanswered_since,
                },
            );
        }
    }

    /// The next running container to ask for stats, round-robin by id.
    pub fn next_stats(&mut self) -> Option<String> {
        let next = match &self.cursor {
            Some(last) => self
                .tracked
                .range::<String, _>((std::ops::Bound::Excluded(last), std::ops::Bound::Unbounded))
                .next()
                .or_else(|| self.tracked.iter().next()),
            None => self.tracked.iter().next(),
        }
        .map(|(id, _)| id.clone());
        if next.is_some() {
            self.cursor.clone_from(&next);
        }
        next
    }

    /// Whether the tracked container `id`'s stats have gone unanswered for the threshold.
    pub fn stuck(&self, id: &str, t: &Tracked, now: Instant, threshold: Duration) -> bool {
        let in_flight = match (&self.stats_target, self.op(Op::ContainerStats).in_flight) {
            (Some(target), Some(started)) if target == id => Some(started),
            _ => None,
        };
        let since = match (t.unanswered_since, in_flight) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        since.is_some_and(|s| now.saturating_duration_since(s) >= threshold)
    }

    /// Record the runtime behind the socket; counts a restart when PID or start time changed.
    pub fn observe_identity(&mut self, id: Identity) {
        if let Some(prev) = self.identity
            && (prev.pid != id.pid || prev.start_ticks != id.start_ticks)
        {
            self.restarts += 1;
        }
        self.identity = Some(id);
    }

    /// Hung: something accepts connections but a runtime-wide call has gone
    /// unanswered for the threshold.
    pub fn hung(&self, now: Instant, threshold: Duration) -> bool {
        self.socket == Socket::Accepting
            && Op::ALL
                .iter()
                .any(|op| op.runtime_wide() && self.op(*op).unanswered_for(now) >= threshold)
    }

    /// Up: the latest Version answered and none has waited for the hang threshold.
    pub fn up(&self, now: Instant, threshold: Duration) -> bool {
        let v = self.op(Op::Version);
        v.last_ok && v.unanswered_for(now) < threshold
    }
}

/// The name a container's Kubernetes labels give it; its CRI metadata name
/// when the labels are missing (a container not made by the kubelet).
pub fn name_of(labels: &HashMap<String, String>, metadata_name: &str) -> Name {
    let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
    let container = labels
        .get("io.kubernetes.container.name")
        .cloned()
        .unwrap_or_else(|| metadata_name.to_string());
    Name {
        namespace: get("io.kubernetes.pod.namespace"),
        pod: get("io.kubernetes.pod.name"),
        container,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(id: &str, name: &str, state: i32) -> Listed {
        Listed {
            id: id.into(),
            name: Name {
                namespace: "ns".into(),
                pod: "p".into(),
                container: name.into(),
            },
            state,
        }
    }

    #[test]
    fn lists_count_states_and_cap_running_containers() {
        let mut s = State::new(2);
        s.begin(Op::ListContainers, Instant::now());
        s.finish(
            Op::ListContainers,
            Ok(Answer::Containers(vec![
                listed("3", "c", 1),
                listed("1", "a", 1),
                listed("2", "b", 1),
                listed("4", "d", 2),
                listed("5", "e", 0),
                listed("6", "f", 9),
            ])),
            Duration::from_millis(2),
            1.0,
        );
        assert_eq!(s.containers, [1, 3, 1, 1]);
        assert_eq!(s.tracked.keys().collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(s.untracked, 1);
        s.finish(Op::ListPodSandboxes, Ok(Answer::Sandboxes(vec![0, 0, 1, 7])), Duration::ZERO, 1.0);
        assert_eq!(s.sandboxes, [2, 2]);
    }

    #[test]
    fn a_hung_shim_is_that_containers_not_the_runtimes() {
        let t0 = Instant::now();
        let th = Duration::from_secs(2);
        let mut s = State::new(10);
        s.socket = Socket::Accepting;
        s.apply_list(vec![listed("a", "a", 1), listed("b", "b", 1)]);
        let id = s.next_stats().unwrap();
        assert_eq!(id, "a");
        s.stats_target = Some(id);
        assert!(s.begin(Op::ContainerStats, t0));
        let later = t0 + Duration::from_secs(3);
        let a = s.tracked["a"].clone();
        assert!(s.stuck("a", &a, later, th));
        assert!(!s.hung(later, th), "a shim hang is not the runtime's");
        s.finish(Op::ContainerStats, Err(Reason::Timeout), Duration::from_secs(3), 0.0);
        // The next round asks b, which answers; a stays stuck until it answers.
        assert_eq!(s.next_stats().as_deref(), Some("b"));
        s.stats_target = Some("b".into());
        s.begin(Op::ContainerStats, later);
        s.finish(Op::ContainerStats, Ok(Answer::Stats { id: "b".into() }), Duration::ZERO, 0.0);
        let a = s.tracked["a"].clone();
        let b = s.tracked["b"].clone();
        assert!(s.stuck("a", &a, later, th));
        assert!(!s.stuck("b", &b, later, th));
        // A new list keeps a's hang; an answer ends it.
        s.apply_list(vec![listed("a", "a", 1), listed("b", "b", 1)]);
        assert!(s.tracked["a"].unanswered_since.is_some());
        assert_eq!(s.next_stats().as_deref(), Some("a"));
        s.stats_target = Some("a".into());
        s.begin(Op::ContainerStats, later);
        s.finish(Op::ContainerStats, Ok(Answer::Stats { id: "a".into() }), Duration::ZERO, 0.0);
        let a = s.tracked["a"].clone();
        assert!(!s.stuck("a", &a, later, th));
    }

    #[test]
    fn runtime_wide_hang_up_and_conditions() {
        let t0 = Instant::now();
        let th = Duration::from_secs(2);
        let mut s = State::new(10);
        s.socket = Socket::Accepting;
        s.begin(Op::Version, t0);
        s.finish(
            Op::Version,
            Ok(Answer::Version {
                runtime_name: "containerd".into(),
                runtime_version: "1.6".into(),
                runtime_api_version: "v1".into(),
            }),
            Duration::ZERO,
            1.0,
        );
        assert!(s.up(t0, th));
        s.begin(Op::ListContainers, t0);
        assert!(s.hung(t0 + th, th));
        assert!(s.up(t0 + th, th), "up follows Version only");
        s.socket = Socket::Down;
        assert!(!s.hung(t0 + th, th));
        s.finish(
            Op::Status,
            Ok(Answer::Status(vec![("RuntimeReady".into(), true)])),
            Duration::ZERO,
            1.0,
        );
        assert_eq!(s.conditions.get("RuntimeReady"), Some(&true));
        assert_eq!(s.conditions.get("NetworkReady"), Some(&false), "absent reads as false");
    }

    #[test]
    fn names_from_kubernetes_labels_or_metadata() {
        let mut labels = HashMap::new();
        assert_eq!(name_of(&labels, "x").container, "x");
        labels.insert("io.kubernetes.pod.namespace".into(), "kube-system".into());
        labels.insert("io.kubernetes.pod.name".into(), "dns-1".into());
        labels.insert("io.kubernetes.container.name".into(), "coredns".into());
        let n = name_of(&labels, "x");
        assert_eq!((n.namespace.as_str(), n.pod.as_str(), n.container.as_str()), ("kube-system", "dns-1", "coredns"));
    }
}
