//! The exporter as deployed: in a mount namespace of its own that sees the
//! host the way the DaemonSet's container does (RECIPES.md, "The
//! deployment's view of the host").
//!
//! Inside `unshare -m --propagation private`:
//! - the host `/` rbind-mounted at `DIR/hostroot`, and that top bind (only
//!   it, as in Kubernetes) remounted read-only: `--path.rootfs`;
//! - the host `/proc` and `/sys` rbind-mounted read-only at `DIR/hostproc`
//!   and `DIR/hostsys`: `--path.procfs`, `--path.sysfs` (hostPID: the PIDs
//!   are the host's);
//! - a fresh tmpfs over `/run`: the container's own /run, so a host path
//!   through Debian's absolute `/var/run -> /run` symlink, followed by the
//!   kernel, lands there and not on the host;
//! - then the extra binds the test asks for ([`DeployedView::bind`]), as the
//!   DaemonSet's `hostPath` volumes (the Docker socket at /var/run/docker.sock).
//!
//! `/` is a private mount on these machines, so host mounts made after the
//! namespace exists do not reach it: a test makes the mounts it needs on the
//! host *before* [`DeployedView::start`].
#![allow(dead_code, clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Exporter, free_port, http_get};

/// How to start the exporter in the deployment's view; see the module docs.
pub struct DeployedView {
    dir: PathBuf,
    binds: Vec<(PathBuf, String)>,
}

impl DeployedView {
    /// The view's mountpoints go under `dir` (a temp dir outside /run).
    pub fn new(dir: &Path) -> DeployedView {
        DeployedView {
            dir: dir.to_path_buf(),
            binds: Vec::new(),
        }
    }

    /// `--path.rootfs` of the exporter started from this view.
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("hostroot")
    }

    /// `--path.procfs` of the exporter started from this view.
    pub fn procfs(&self) -> PathBuf {
        self.dir.join("hostproc")
    }

    /// Bind the host's `host` (a file, a socket or a directory) at `inside`
    /// in the container's view, after /run is replaced (so `/run/...` works).
    pub fn bind(mut self, host: &Path, inside: &str) -> DeployedView {
        self.binds.push((host.to_path_buf(), inside.to_string()));
        self
    }

    /// Start the exporter with `args` after the path flags, on a free
    /// loopback port, and wait until it serves. Killed (and its namespace
    /// gone with it) when the returned [`Exporter`] drops.
    pub fn start(&self, args: &[&str]) -> Exporter {
        let unshare = super::require("unshare").expect("unshare (util-linux) is required");
        let root = self.rootfs();
        let proc = self.procfs();
        let sys = self.dir.join("hostsys");
        for d in [&root, &proc, &sys] {
            std::fs::create_dir_all(d).expect("view mountpoint");
        }
        let q = |p: &Path| shell_quote(&p.to_string_lossy());
        let mut script = String::from("set -e\n");
        for (host, at) in [("/", &root), ("/proc", &proc), ("/sys", &sys)] {
            script += &format!(
                "mount --rbind {host} {at}\nmount -o remount,bind,ro {at}\n",
                at = q(at)
            );
        }
        script += "mount -t tmpfs -o size=16m,mode=755 tmpfs /run\n";
        for (host, inside) in &self.binds {
            let inside = shell_quote(inside);
            if host.is_dir() {
                script += &format!("mkdir -p {inside}\n");
            } else {
                script += &format!("mkdir -p \"$(dirname {inside})\"\ntouch {inside}\n");
            }
            script += &format!("mount --bind {} {inside}\n", q(host));
        }
        script += "exec \"$@\"\n";

        let port = free_port();
        let log = std::env::temp_dir().join(format!("sentinel-deployed-{port}.log"));
        let logfile = std::fs::File::create(&log).expect("create log");
        let child = Command::new(unshare)
            .args(["-m", "--propagation", "private", "sh", "-c", &script, "sh"])
            .arg(super::binary())
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--path.rootfs={}", root.display()))
            .arg(format!("--path.procfs={}", proc.display()))
            .arg(format!("--path.sysfs={}", sys.display()))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(logfile)
            .spawn()
            .expect("start the exporter under unshare");
        let mut exporter = Exporter { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = exporter.child.try_wait() {
                panic!(
                    "exporter (deployed view) exited with {status}: {}",
                    exporter.logs()
                );
            }
            if http_get(port, "/-/healthy").is_ok() {
                return exporter;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "exporter (deployed view) did not start: {}",
            exporter.logs()
        );
    }
}

/// The exporter's own mount table (its namespace, read from the host): to
/// check that the view's traps are armed.
pub fn own_mounts(exporter: &Exporter) -> Vec<OwnMount> {
    mounts_of(exporter.pid())
}

/// The mount table of process `pid`'s namespace (a unit's, under systemd).
pub fn mounts_of(pid: u32) -> Vec<OwnMount> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .expect("the exporter's mountinfo");
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            Some(OwnMount {
                mountpoint: f.get(4)?.replace("\\040", " "),
                options: f.get(5)?.to_string(),
                fstype: f.get(sep + 1)?.to_string(),
            })
        })
        .collect()
}

/// One line of [`own_mounts`].
#[derive(Debug, Clone)]
pub struct OwnMount {
    pub mountpoint: String,
    pub options: String,
    pub fstype: String,
}

impl OwnMount {
    pub fn readonly(&self) -> bool {
        self.options.split(',').any(|o| o == "ro")
    }
}

/// A tmpfs mounted on the host (before the view starts); lazily unmounted on drop.
pub struct HostTmpfs {
    pub path: PathBuf,
}

impl HostTmpfs {
    /// Mount a tmpfs at `path` with `options` (e.g. `size=8m` or `ro,size=8m`).
    pub fn mount(path: &Path, options: &str) -> HostTmpfs {
        std::fs::create_dir_all(path).expect("tmpfs mountpoint");
        super::run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                options,
                "tmpfs",
                &path.to_string_lossy(),
            ],
        );
        HostTmpfs {
            path: path.to_path_buf(),
        }
    }

    /// Its mountpoint as a label value (the host's path).
    pub fn label(&self) -> String {
        self.path.to_string_lossy().to_string()
    }
}

impl Drop for HostTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .args(["-l", &self.path.to_string_lossy()])
            .status();
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

// ---------------------------------------------------------------------------
// The DaemonSet's container, run for real: the image built from the
// Dockerfile in a private dockerd, started with what
// deploy/kubernetes/base/daemonset.yaml says, translated here.

/// The Docker CLI of the docker.io package (its API version matches dockerd's).
pub const DOCKER: &str = "/usr/bin/docker";

/// A dockerd of the test's own (RECIPES.md), its socket in `run/`, which
/// stands for the node's /run. Containers removed and the daemon stopped
/// on drop.
pub struct PrivateDockerd {
    dir: PathBuf,
    child: std::process::Child,
}

impl PrivateDockerd {
    /// Start it under `dir` and wait until it answers.
    pub fn start(dir: &Path) -> PrivateDockerd {
        let run = dir.join("run");
        std::fs::create_dir_all(&run).expect("run dir");
        let d = |p: &str| dir.join(p).to_string_lossy().to_string();
        let log = std::fs::File::create(dir.join("dockerd.log")).expect("dockerd log");
        let child = Command::new("/usr/sbin/dockerd")
            .args(["--host", &format!("unix://{}/docker.sock", run.display())])
            .args(["--data-root", &d("root"), "--exec-root", &d("exec")])
            .args(["--pidfile", &d("run/docker.pid")])
            .args(["--iptables=false", "--bridge=none", "--storage-driver=vfs"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let mut dockerd = PrivateDockerd {
            dir: dir.to_path_buf(),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = dockerd.child.try_wait() {
                panic!("dockerd exited with {status}: {}", dockerd.log());
            }
            let ok = Command::new(DOCKER)
                .args(["-H", &dockerd.host(), "version"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return dockerd;
            }
            assert!(Instant::now() < deadline, "dockerd: {}", dockerd.log());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The directory standing for the node's /run (docker.sock is in it).
    pub fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    pub fn host(&self) -> String {
        format!("unix://{}/docker.sock", self.run_dir().display())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    /// The Docker CLI against this daemon.
    pub fn docker(&self) -> Command {
        let mut c = Command::new(DOCKER);
        c.args(["-H", &self.host()]);
        c
    }

    /// Run the CLI; panics with its stderr on failure; returns stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker().args(args).output().expect("docker CLI");
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// The image from the repository's Dockerfile, as its header says to
    /// build it without registries: a base of only the libraries `ldd`
    /// lists for `binary` (and the loader), `docker import`ed, and the
    /// binary (its debug info stripped) as the `prebuilt` stage. Tagged
    /// `tag`; returns the image's size in bytes.
    pub fn build_image(&self, binary: &Path, tag: &str) -> u64 {
        let base = self.dir.join("base");
        let ldd = super::run("ldd", &[&binary.to_string_lossy()]);
        for line in ldd.lines() {
            let lib = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next(),
                None => line.split_whitespace().next(),
            };
            let Some(lib) = lib.filter(|l| l.starts_with('/')) else {
                continue;
            };
            let to = base.join(lib.trim_start_matches('/'));
            std::fs::create_dir_all(to.parent().expect("a library in a directory"))
                .expect("base dir");
            std::fs::copy(lib, &to).unwrap_or_else(|e| panic!("copy {lib}: {e}"));
        }
        let tar = self.dir.join("base.tar");
        super::run(
            "tar",
            &[
                "-C",
                &base.to_string_lossy(),
                "-cf",
                &tar.to_string_lossy(),
                ".",
            ],
        );
        self.docker_ok(&["import", &tar.to_string_lossy(), "node-sentinel-base:test"]);

        let ctx = self.dir.join("context");
        std::fs::create_dir_all(&ctx).expect("context dir");
        super::run(
            "strip",
            &[
                "--strip-debug",
                "-o",
                &ctx.join("node-sentinel").to_string_lossy(),
                &binary.to_string_lossy(),
            ],
        );
        let dockerfile = Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile");
        let out = self
            .docker()
            .env("DOCKER_BUILDKIT", "1")
            .arg("build")
            .arg("-f")
            .arg(&dockerfile)
            .args(["--build-arg", "BINARY=prebuilt"])
            .args(["--build-arg", "BASE_IMAGE=node-sentinel-base:test"])
            .args(["-t", tag])
            .arg(&ctx)
            .output()
            .expect("docker build");
        assert!(
            out.status.success(),
            "docker build: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        self.docker_ok(&["image", "inspect", "-f", "{{.Size}}", tag])
            .trim()
            .parse()
            .expect("image size")
    }
}

impl Drop for PrivateDockerd {
    fn drop(&mut self) {
        super::signal(self.child.id(), rustix::process::Signal::CONT);
        if let Ok(out) = self.docker().args(["ps", "-aq"]).output() {
            let ids = String::from_utf8_lossy(&out.stdout).to_string();
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let _ = self
                    .docker()
                    .args(["rm", "-f"])
                    .args(&ids)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        super::signal(self.child.id(), rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // dockerd leaves mounts behind (its netns file under the exec root):
        // unmount whatever is still mounted under our directory, deepest first.
        let prefix = format!("{}/", self.dir.display());
        let mut left: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|mp| mp.starts_with(&prefix))
            .map(str::to_string)
            .collect();
        left.sort_by_key(|mp| std::cmp::Reverse(mp.len()));
        for mp in left {
            let _ = Command::new("umount")
                .args(["-l", &mp])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `docker run` for the DaemonSet's only container: what the manifest says,
/// translated field by field. A field this does not know fails the test, so
/// the manifest cannot grow something the test silently leaves out.
#[derive(Debug)]
pub struct PodRun {
    /// `docker run` options (namespaces, user, capabilities, volumes...).
    pub options: Vec<String>,
    pub image: String,
    /// The container's args, exactly as in the manifest.
    pub args: Vec<String>,
    /// The probes' paths and port name: (readiness, liveness).
    pub probes: (String, String),
}

/// Fields that mean nothing on one node without a kubelet or API server
/// (scheduling, service accounts, DNS, rollout).
const POD_ONLY: &[&str] = &[
    "serviceAccountName",
    "automountServiceAccountToken",
    "dnsPolicy",
    "priorityClassName",
    "tolerations",
    "terminationGracePeriodSeconds",
];

impl PodRun {
    /// Translate `manifest` (a DaemonSet). `host_paths` redirects a
    /// hostPath to a directory of the test (the node's /run to the private
    /// dockerd's), every other hostPath is the host's own.
    pub fn from_daemonset(manifest: &Path, host_paths: &[(&str, &Path)]) -> PodRun {
        let text = std::fs::read_to_string(manifest).expect("read the DaemonSet");
        let ds: serde_yaml::Value = serde_yaml::from_str(&text).expect("DaemonSet YAML");
        assert_eq!(ds["kind"], "DaemonSet");
        let pod = &ds["spec"]["template"]["spec"];
        let str_of = |v: &serde_yaml::Value| v.as_str().map(str::to_string);
        let mut options: Vec<String> = Vec::new();
        let map = pod.as_mapping().expect("pod spec");
        for (k, v) in map {
            let k = k.as_str().expect("key");
            match k {
                "hostPID" if v == &serde_yaml::Value::Bool(true) => {
                    options.push("--pid=host".into())
                }
                "hostNetwork" if v == &serde_yaml::Value::Bool(true) => {
                    options.push("--network=host".into())
                }
                "securityContext" => {
                    for (sk, sv) in sv_map(v) {
                        match sk.as_str() {
                            // Docker's default profile is the runtime's default.
                            "seccompProfile" if sv["type"] == "RuntimeDefault" => {}
                            other => panic!("pod securityContext.{other} is not translated"),
                        }
                    }
                }
                "containers" | "volumes" => {}
                k if POD_ONLY.contains(&k) => {}
                other => panic!("pod spec field {other} is not translated"),
            }
        }
        let containers = pod["containers"].as_sequence().expect("containers");
        assert_eq!(containers.len(), 1, "one container");
        let c = &containers[0];
        let mut image = String::new();
        let mut args = Vec::new();
        let mut probes = (String::new(), String::new());
        for (k, v) in sv_map(c) {
            match k.as_str() {
                "name" => {}
                "image" => image = str_of(v).expect("image"),
                "args" => {
                    args = v
                        .as_sequence()
                        .expect("args")
                        .iter()
                        .map(|a| str_of(a).expect("arg"))
                        .collect()
                }
                // hostNetwork: the port is the host's.
                "ports" => {}
                "readinessProbe" => probes.0 = str_of(&v["httpGet"]["path"]).expect("probe"),
                "livenessProbe" => probes.1 = str_of(&v["httpGet"]["path"]).expect("probe"),
                "resources" => {
                    for (rk, rv) in sv_map(v) {
                        match rk.as_str() {
                            "limits" => {
                                for (lk, lv) in sv_map(rv) {
                                    match lk.as_str() {
                                        "memory" => options.push(format!(
                                            "--memory={}",
                                            quantity_bytes(&str_of(lv).expect("memory"))
                                        )),
                                        other => panic!("limits.{other} is not translated"),
                                    }
                                }
                            }
                            // Scheduling only (and the CPU share, which
                            // changes nothing on an idle test machine).
                            "requests" => {}
                            other => panic!("resources.{other} is not translated"),
                        }
                    }
                }
                "securityContext" => {
                    for (sk, sv) in sv_map(v) {
                        let b = sv.as_bool();
                        match sk.as_str() {
                            "runAsUser" => options.push(format!("--user={}", sv_u64(sv))),
                            "runAsGroup" => {
                                let user = options.iter().position(|o| o.starts_with("--user="));
                                let user = user.expect("runAsGroup after runAsUser");
                                options[user] += &format!(":{}", sv_u64(sv));
                            }
                            "runAsNonRoot" => assert_eq!(b, Some(false), "runAsNonRoot"),
                            "privileged" => {
                                if b == Some(true) {
                                    options.push("--privileged".into())
                                }
                            }
                            "allowPrivilegeEscalation" => {
                                if b == Some(false) {
                                    options.push("--security-opt=no-new-privileges".into())
                                }
                            }
                            "readOnlyRootFilesystem" => {
                                if b == Some(true) {
                                    options.push("--read-only".into())
                                }
                            }
                            "capabilities" => {
                                for (ck, cv) in sv_map(sv) {
                                    let flag = match ck.as_str() {
                                        "drop" => "--cap-drop",
                                        "add" => "--cap-add",
                                        other => panic!("capabilities.{other}"),
                                    };
                                    for cap in cv.as_sequence().expect("capabilities") {
                                        options.push(format!(
                                            "{flag}={}",
                                            str_of(cap).expect("capability")
                                        ));
                                    }
                                }
                            }
                            other => panic!("container securityContext.{other} is not translated"),
                        }
                    }
                }
                "volumeMounts" => {}
                other => panic!("container field {other} is not translated"),
            }
        }
        // Volumes: each hostPath bound where its mount says, read-only as it
        // says, with its propagation.
        let volumes = pod["volumes"].as_sequence().expect("volumes");
        for m in c["volumeMounts"].as_sequence().expect("volumeMounts") {
            let name = str_of(&m["name"]).expect("mount name");
            let at = str_of(&m["mountPath"]).expect("mountPath");
            let v = volumes
                .iter()
                .find(|v| v["name"].as_str() == Some(name.as_str()))
                .unwrap_or_else(|| panic!("no volume {name}"));
            for (vk, _) in sv_map(v) {
                assert!(
                    ["name", "hostPath"].contains(&vk.as_str()),
                    "volume {name}: {vk}"
                );
            }
            let path = str_of(&v["hostPath"]["path"]).expect("hostPath");
            let host = host_paths
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, to)| to.to_path_buf())
                .unwrap_or_else(|| PathBuf::from(&path));
            match v["hostPath"]["type"].as_str().unwrap_or("") {
                "Directory" => {
                    assert!(host.is_dir(), "hostPath {} is no directory", host.display())
                }
                "DirectoryOrCreate" => std::fs::create_dir_all(&host).expect("DirectoryOrCreate"),
                other => panic!("hostPath type {other:?} is not translated"),
            }
            let mut mode = Vec::new();
            for (mk, mv) in sv_map(m) {
                match mk.as_str() {
                    "name" | "mountPath" => {}
                    "readOnly" => {
                        if mv.as_bool() == Some(true) {
                            mode.push("ro")
                        }
                    }
                    "mountPropagation" => mode.push(match mv.as_str() {
                        Some("HostToContainer") => "rslave",
                        Some("Bidirectional") => "rshared",
                        Some("None") => "rprivate",
                        other => panic!("mountPropagation {other:?}"),
                    }),
                    other => panic!("volumeMount field {other} is not translated"),
                }
            }
            let mode = if mode.is_empty() {
                String::new()
            } else {
                format!(":{}", mode.join(","))
            };
            options.push(format!("--volume={}:{at}{mode}", host.display()));
        }
        PodRun {
            options,
            image,
            args,
            probes,
        }
    }
}

fn sv_map(v: &serde_yaml::Value) -> Vec<(String, &serde_yaml::Value)> {
    v.as_mapping()
        .expect("a mapping")
        .iter()
        .map(|(k, v)| (k.as_str().expect("key").to_string(), v))
        .collect()
}

fn sv_u64(v: &serde_yaml::Value) -> u64 {
    v.as_u64().expect("a number")
}

/// A Kubernetes memory quantity (`128Mi`, `1Gi`, `500M`) in bytes.
pub fn quantity_bytes(q: &str) -> u64 {
    let split = q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len());
    let (n, unit) = q.split_at(split);
    let n: u64 = n.parse().unwrap_or_else(|_| panic!("quantity {q}"));
    n * match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "k" => 1000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        other => panic!("quantity unit {other}"),
    }
}

/// Mount propagation from the host into containers needs `/` shared (it is
/// private on these machines: RECIPES.md); put back as it was on drop.
pub struct SharedRoot {
    was: String,
}

impl SharedRoot {
    pub fn make() -> SharedRoot {
        let was = super::run("findmnt", &["-n", "-o", "PROPAGATION", "/"])
            .trim()
            .to_string();
        super::run("mount", &["--make-shared", "/"]);
        SharedRoot { was }
    }
}

impl Drop for SharedRoot {
    fn drop(&mut self) {
        let flag = match self.was.as_str() {
            "private" => "--make-private",
            "slave" => "--make-slave",
            "unbindable" => "--make-unbindable",
            _ => return,
        };
        let _ = Command::new("mount").args([flag, "/"]).status();
    }
}

/// Appends `rate` bytes a second to `path` in 100 ms steps, fsynced, until dropped.
pub struct FillWriter {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FillWriter {
    pub fn start(path: PathBuf, rate: u64) -> FillWriter {
        use std::io::Write;
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .expect("fill file");
            let chunk = vec![0x5au8; (rate / 10) as usize];
            let start = Instant::now();
            let mut step = 0u32;
            while !flag.load(Ordering::Relaxed) {
                if f.write_all(&chunk).and_then(|_| f.sync_data()).is_err() {
                    return;
                }
                step += 1;
                // Paced against the start, so a slow write does not slow the rate.
                let next = start + Duration::from_millis(100) * step;
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
        });
        FillWriter {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FillWriter {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
