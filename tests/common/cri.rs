//! A private containerd (Debian's 1.6 with its CRI plugin) in a temp dir:
//! its own config, root, state and socket; killed, restarted and cleaned up
//! (shims and mounts included) by the test.
#![allow(dead_code, clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::Signal;

/// A containerd of our own: config, root, state and socket under `dir`.
pub struct Containerd {
    pub dir: PathBuf,
    pub socket: PathBuf,
    child: Option<Child>,
}

impl Containerd {
    /// Start with the socket at `socket` (under `dir` unless given).
    pub fn start(dir: &Path, socket: Option<&Path>) -> Containerd {
        Self::start_with(dir, socket, "")
    }

    /// Start without the CRI plugin, as Docker's own containerd runs.
    pub fn start_without_cri(dir: &Path, socket: Option<&Path>) -> Containerd {
        Self::start_with(
            dir,
            socket,
            "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n",
        )
    }

    fn start_with(dir: &Path, socket: Option<&Path>, extra: &str) -> Containerd {
        let socket = socket
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.join("containerd.sock"));
        std::fs::create_dir_all(dir).expect("containerd dir");
        if let Some(parent) = socket.parent() {
            std::fs::create_dir_all(parent).expect("socket dir");
        }
        let d = |p: &str| dir.join(p).to_string_lossy().to_string();
        // restrict_oom_score_adj: the sandbox asks for a lower oom_score_adj
        // than an unprivileged parent (a CI container) may set, and runc's
        // init then dies without a word; restricted, it keeps ours.
        let config = format!(
            "version = 2\n{extra}root = \"{}\"\nstate = \"{}\"\n[grpc]\n  address = \"{}\"\n[ttrpc]\n  address = \"{}.ttrpc\"\n[metrics]\n  address = \"\"\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"sentinel/pause:latest\"\n  restrict_oom_score_adj = true\n  [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n    snapshotter = \"native\"\n",
            d("root"),
            d("state"),
            socket.display(),
            socket.display()
        );
        std::fs::write(dir.join("config.toml"), config).expect("containerd config");
        let mut c = Containerd {
            dir: dir.to_path_buf(),
            socket,
            child: None,
        };
        c.spawn();
        c
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("containerd.log"))
            .expect("containerd log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(self.dir.join("config.toml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start containerd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.ctr_ok(&["version"]) {
            assert!(
                Instant::now() < deadline,
                "containerd did not answer: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn ctr_ok(&self, args: &[&str]) -> bool {
        Command::new("ctr")
            .arg("--address")
            .arg(&self.socket)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Kill at once (SIGKILL), as a crash would; the socket file stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            common_signal(child.id(), Signal::CONT);
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start again after `kill`, on the same config.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            common_signal(child.id(), Signal::CONT);
            common_signal(child.id(), Signal::TERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // Shims outlive containerd: end ours, found by the state dir in their command line.
        let state = self.dir.to_string_lossy().to_string();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for e in entries.flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd);
                if cmd.contains("containerd-shim") && cmd.contains(&state) {
                    common_signal(pid, Signal::CONT);
                    common_signal(pid, Signal::KILL);
                }
            }
        }
        // Mounts of the native snapshotter's container roots may remain.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "grep -o ' {state}[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l"
            ))
            .status();
    }
}

fn common_signal(pid: u32, sig: Signal) {
    crate::common::signal(pid, sig);
}

/// A busybox-based OCI image archive (one layer: /bin/busybox and a few
/// links) that `ctr images import` takes without a registry, named `name`
/// (e.g. `docker.io/sentinel/bb:latest`) and running `cmd` by default.
pub fn busybox_image(dir: &Path, name: &str, cmd: &[&str]) -> PathBuf {
    let work = dir.join(format!("img-{}", name.replace(['/', ':'], "_")));
    let rootfs = work.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).expect("image dir");
    std::fs::create_dir_all(rootfs.join("etc")).expect("image etc");
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy /bin/busybox");
    for c in ["sh", "sleep", "true", "cat"] {
        let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(c));
    }
    let out = work.join("image.tar");
    let cmd_json = serde_json::to_string(cmd).expect("cmd json");
    let script = r#"
import hashlib, json, os, sys, tarfile
work, name, cmd = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
blobs = os.path.join(work, "oci", "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, d), "wb").write(data)
    return "sha256:" + d, len(data)
layer_path = os.path.join(work, "layer.tar")
with tarfile.open(layer_path, "w") as t:
    t.add(os.path.join(work, "rootfs"), arcname=".")
layer, layer_size = blob(open(layer_path, "rb").read())
config = {"architecture": "amd64", "os": "linux",
          "config": {"Cmd": cmd, "Env": ["PATH=/bin"]},
          "rootfs": {"type": "layers", "diff_ids": [layer]}}
cfg, cfg_size = blob(json.dumps(config).encode())
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": cfg_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}]}
man, man_size = blob(json.dumps(manifest).encode())
index = {"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
         "digest": man, "size": man_size, "annotations": {"io.containerd.image.name": name}}]}
open(os.path.join(work, "oci", "index.json"), "w").write(json.dumps(index))
open(os.path.join(work, "oci", "oci-layout"), "w").write(json.dumps({"imageLayoutVersion": "1.0.0"}))
with tarfile.open(os.path.join(work, "image.tar"), "w") as t:
    t.add(os.path.join(work, "oci"), arcname=".")
"#;
    crate::common::run(
        "python3",
        &["-c", script, &work.to_string_lossy(), name, &cmd_json],
    );
    out
}

impl Containerd {
    /// Import an image archive into the k8s.io namespace (the CRI's).
    pub fn import(&self, archive: &Path) {
        let sock = self.socket.to_string_lossy().to_string();
        crate::common::run(
            "ctr",
            &[
                "--address",
                &sock,
                "-n",
                "k8s.io",
                "images",
                "import",
                &archive.to_string_lossy(),
            ],
        );
    }

    /// The containerd-shim-runc-v2 serving the sandbox `id` (a shim per pod).
    pub fn shim_of(&self, sandbox_id: &str) -> Option<u32> {
        for e in std::fs::read_dir("/proc").ok()?.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<String> = cmd
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).to_string())
                .collect();
            let is_shim = args
                .first()
                .is_some_and(|a| a.ends_with("containerd-shim-runc-v2"));
            let for_id = args.windows(2).any(|w| w[0] == "-id" && w[1] == sandbox_id);
            if is_shim && for_id {
                return Some(pid);
            }
        }
        None
    }
}

/// The CRI calls a kubelet makes to run a pod, declared here with prost's
/// derive (field numbers from k8s.io/cri-api's api.proto).
pub mod api {
    use std::collections::HashMap;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PodSandboxMetadata {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub uid: String,
        #[prost(string, tag = "3")]
        pub namespace: String,
        #[prost(uint32, tag = "4")]
        pub attempt: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NamespaceOption {
        /// NamespaceMode: POD = 0, CONTAINER = 1, NODE = 2.
        #[prost(int32, tag = "1")]
        pub network: i32,
        #[prost(int32, tag = "2")]
        pub pid: i32,
        #[prost(int32, tag = "3")]
        pub ipc: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LinuxSandboxSecurityContext {
        #[prost(message, optional, tag = "1")]
        pub namespace_options: Option<NamespaceOption>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LinuxPodSandboxConfig {
        #[prost(string, tag = "1")]
        pub cgroup_parent: String,
        #[prost(message, optional, tag = "2")]
        pub security_context: Option<LinuxSandboxSecurityContext>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PodSandboxConfig {
        #[prost(message, optional, tag = "1")]
        pub metadata: Option<PodSandboxMetadata>,
        #[prost(string, tag = "2")]
        pub hostname: String,
        #[prost(string, tag = "3")]
        pub log_directory: String,
        #[prost(map = "string, string", tag = "6")]
        pub labels: HashMap<String, String>,
        #[prost(message, optional, tag = "8")]
        pub linux: Option<LinuxPodSandboxConfig>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RunPodSandboxRequest {
        #[prost(message, optional, tag = "1")]
        pub config: Option<PodSandboxConfig>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RunPodSandboxResponse {
        #[prost(string, tag = "1")]
        pub pod_sandbox_id: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerMetadata {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(uint32, tag = "2")]
        pub attempt: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ImageSpec {
        #[prost(string, tag = "1")]
        pub image: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ContainerConfig {
        #[prost(message, optional, tag = "1")]
        pub metadata: Option<ContainerMetadata>,
        #[prost(message, optional, tag = "2")]
        pub image: Option<ImageSpec>,
        #[prost(string, repeated, tag = "3")]
        pub command: Vec<String>,
        #[prost(map = "string, string", tag = "9")]
        pub labels: HashMap<String, String>,
        #[prost(string, tag = "11")]
        pub log_path: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CreateContainerRequest {
        #[prost(string, tag = "1")]
        pub pod_sandbox_id: String,
        #[prost(message, optional, tag = "2")]
        pub config: Option<ContainerConfig>,
        #[prost(message, optional, tag = "3")]
        pub sandbox_config: Option<PodSandboxConfig>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CreateContainerResponse {
        #[prost(string, tag = "1")]
        pub container_id: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StartContainerRequest {
        #[prost(string, tag = "1")]
        pub container_id: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Empty {}
}

/// A test-side CRI client on its own small runtime.
pub struct Client {
    rt: tokio::runtime::Runtime,
    channel: tonic::transport::Channel,
}

impl Client {
    pub fn new(socket: &Path) -> Client {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let socket = socket.to_path_buf();
        let channel = rt
            .block_on(
                tonic::transport::Endpoint::from_static("http://cri.sock").connect_with_connector(
                    tower::service_fn(move |_: tonic::codegen::http::Uri| {
                        let socket = socket.clone();
                        async move {
                            let s = tokio::net::UnixStream::connect(socket).await?;
                            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
                        }
                    }),
                ),
            )
            .expect("connect to the CRI socket");
        Client { rt, channel }
    }

    fn call<Req, Resp>(&self, method: &'static str, req: Req) -> Resp
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        self.rt
            .block_on(async {
                grpc.ready()
                    .await
                    .map_err(|e| tonic::Status::unknown(e.to_string()))?;
                let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
                let path = tonic::codegen::http::uri::PathAndQuery::from_static(method);
                let call = grpc.unary(tonic::Request::new(req), path, codec);
                match tokio::time::timeout(Duration::from_secs(60), call).await {
                    Ok(r) => r.map(tonic::Response::into_inner),
                    Err(_) => Err(tonic::Status::deadline_exceeded(method)),
                }
            })
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// A host-network pod sandbox (no CNI needed), as the kubelet asks for it.
    pub fn run_pod(
        &self,
        dir: &Path,
        namespace: &str,
        name: &str,
    ) -> (String, api::PodSandboxConfig) {
        let logs = dir.join("pods").join(name);
        std::fs::create_dir_all(&logs).expect("pod log dir");
        let config = api::PodSandboxConfig {
            metadata: Some(api::PodSandboxMetadata {
                name: name.into(),
                uid: format!("uid-{name}"),
                namespace: namespace.into(),
                attempt: 0,
            }),
            // A host-network pod shares the node's UTS namespace: no hostname of its own.
            hostname: String::new(),
            log_directory: logs.to_string_lossy().to_string(),
            labels: [
                (
                    "io.kubernetes.pod.namespace".to_string(),
                    namespace.to_string(),
                ),
                ("io.kubernetes.pod.name".to_string(), name.to_string()),
            ]
            .into(),
            linux: Some(api::LinuxPodSandboxConfig {
                cgroup_parent: String::new(),
                security_context: Some(api::LinuxSandboxSecurityContext {
                    namespace_options: Some(api::NamespaceOption {
                        network: 2,
                        pid: 0,
                        ipc: 0,
                    }),
                }),
            }),
        };
        let r: api::RunPodSandboxResponse = self.call(
            "/runtime.v1.RuntimeService/RunPodSandbox",
            api::RunPodSandboxRequest {
                config: Some(config.clone()),
            },
        );
        (r.pod_sandbox_id, config)
    }

    /// Stop and remove a pod sandbox and its containers, as the kubelet does.
    pub fn remove_pod(&self, id: &str) {
        for method in [
            "/runtime.v1.RuntimeService/StopPodSandbox",
            "/runtime.v1.RuntimeService/RemovePodSandbox",
        ] {
            let _: api::Empty = self.call(
                method,
                api::StartContainerRequest {
                    container_id: id.to_string(),
                },
            );
        }
    }

    /// Create a container in the pod (labelled as the kubelet labels them); start it if `start`.
    pub fn container(
        &self,
        pod: &(String, api::PodSandboxConfig),
        name: &str,
        image: &str,
        command: &[&str],
        start: bool,
    ) -> String {
        let meta = pod.1.metadata.clone().unwrap_or_default();
        let config = api::ContainerConfig {
            metadata: Some(api::ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(api::ImageSpec {
                image: image.into(),
            }),
            command: command.iter().map(|s| s.to_string()).collect(),
            labels: [
                (
                    "io.kubernetes.pod.namespace".to_string(),
                    meta.namespace.clone(),
                ),
                ("io.kubernetes.pod.name".to_string(), meta.name.clone()),
                ("io.kubernetes.container.name".to_string(), name.to_string()),
            ]
            .into(),
            log_path: format!("{name}.log"),
        };
        let r: api::CreateContainerResponse = self.call(
            "/runtime.v1.RuntimeService/CreateContainer",
            api::CreateContainerRequest {
                pod_sandbox_id: pod.0.clone(),
                config: Some(config),
                sandbox_config: Some(pod.1.clone()),
            },
        );
        if start {
            let _: api::Empty = self.call(
                "/runtime.v1.RuntimeService/StartContainer",
                api::StartContainerRequest {
                    container_id: r.container_id.clone(),
                },
            );
        }
        r.container_id
    }
}
