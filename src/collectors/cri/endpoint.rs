//! Where the CRI runtime is, and the calls themselves: endpoint parsing and
//! detection (kubelet config first, then the well-known sockets that serve
//! `runtime.v1`), the channel over the unix socket, and the mapping of tonic
//! errors onto the fixed failure reasons.

use std::error::Error as StdError;
use std::io::ErrorKind;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

use super::api;
use super::state::{Answer, Listed, Op, Reason, name_of};
use crate::host::Paths;

/// The kubelet's config files, in the order the kubelet collector reads them.
const KUBELET_CONFIGS: [&str; 2] = [
    "/var/lib/kubelet/config.yaml",
    "/etc/kubernetes/kubelet/config.json",
];

/// Well-known CRI sockets, in METRICS.md's order.
pub const CANDIDATES: [&str; 4] = [
    "/run/containerd/containerd.sock",
    "/run/crio/crio.sock",
    "/run/k3s/containerd/containerd.sock",
    "/var/run/cri-dockerd.sock",
];

/// An endpoint (`unix:///path` or a plain absolute path) as a host path.
pub fn parse(endpoint: &str) -> Result<String, &'static str> {
    let path = endpoint.strip_prefix("unix://").unwrap_or(endpoint);
    if path.contains("://") {
        return Err("only unix sockets are supported (unix:///path)");
    }
    if !path.starts_with('/') {
        return Err("the socket path must be absolute");
    }
    Ok(path.to_string())
}

/// `containerRuntimeEndpoint` from a KubeletConfiguration (YAML or JSON).
pub fn kubelet_endpoint(text: &str) -> Option<String> {
    let doc: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
    let e = doc.get("containerRuntimeEndpoint")?.as_str()?;
    parse(e.trim()).ok()
}

/// A lazily connecting channel to the socket at `host_path`, resolved under
/// `--path.rootfs` at every connect (a recreated socket, a symlinked /var/run).
pub fn channel(paths: &Paths, host_path: &str) -> Channel {
    let paths = paths.clone();
    let host_path = host_path.to_string();
    // The URI is a placeholder: the connector ignores it.
    Endpoint::from_static("http://cri.sock").connect_with_connector_lazy(tower::service_fn(
        move |_: tonic::codegen::http::Uri| {
            let resolved = paths.resolve(&host_path);
            async move {
                let path = resolved.map_err(|e| {
                    std::io::Error::new(e.io_kind().unwrap_or(ErrorKind::NotFound), e.to_string())
                })?;
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        },
    ))
}

/// The endpoint to watch: the kubelet's, else the first candidate that
/// answers `Version` within `timeout`. `None`: not installed (yet).
pub async fn detect(paths: &Paths, timeout: Duration) -> Option<String> {
    for config in KUBELET_CONFIGS {
        let Ok(path) = paths.resolve(config) else {
            continue;
        };
        // Bounded like the kubelet collector's own read of the same file.
        if let Ok(bytes) = crate::host::procfs::read_bounded(&path, crate::collectors::kubelet::config::MAX_FILE_BYTES)
            && let Ok(text) = String::from_utf8(bytes)
            && let Some(e) = kubelet_endpoint(&text)
        {
            return Some(e);
        }
    }
    for candidate in CANDIDATES {
        match paths.resolve(candidate) {
            Ok(p) if p.exists() => {}
            _ => continue,
        }
        let channel = channel(paths, candidate);
        let answer = tokio::time::timeout(timeout, run(&channel, Op::Version, None)).await;
        if matches!(answer, Ok(Ok(_))) {
            return Some(candidate.to_string());
        }
    }
    None
}

/// One call of `op` (`stats` names the container for container_stats).
/// The caller bounds the whole future with its timeout.
pub async fn run(channel: &Channel, op: Op, stats: Option<String>) -> Result<Answer, Reason> {
    let answer = match op {
        Op::Version => {
            let v: api::VersionResponse = api::call(
                channel,
                api::VERSION,
                api::VersionRequest {
                    version: "v1".into(),
                },
            )
            .await
            .map_err(|e| classify(&e))?;
            Answer::Version {
                runtime_name: v.runtime_name,
                runtime_version: v.runtime_version,
                runtime_api_version: v.runtime_api_version,
            }
        }
        Op::Status => {
            let s: api::StatusResponse =
                api::call(channel, api::STATUS, api::StatusRequest { verbose: false })
                    .await
                    .map_err(|e| classify(&e))?;
            let conditions = s
                .status
                .map(|s| s.conditions)
                .unwrap_or_default()
                .into_iter()
                .map(|c| (c.r#type, c.status))
                .collect();
            Answer::Status(conditions)
        }
        Op::ListPodSandboxes => {
            let r: api::ListPodSandboxResponse =
                api::call(channel, api::LIST_POD_SANDBOX, api::ListPodSandboxRequest {})
                    .await
                    .map_err(|e| classify(&e))?;
            Answer::Sandboxes(r.items.into_iter().map(|p| p.state).collect())
        }
        Op::ListContainers => {
            let r: api::ListContainersResponse =
                api::call(channel, api::LIST_CONTAINERS, api::ListContainersRequest {})
                    .await
                    .map_err(|e| classify(&e))?;
            Answer::Containers(
                r.containers
                    .into_iter()
                    .map(|c| Listed {
                        name: name_of(
                            &c.labels,
                            c.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or(&c.id),
                        ),
                        id: c.id,
                        state: c.state,
                    })
                    .collect(),
            )
        }
        Op::ImageFsInfo => {
            let r: api::ImageFsInfoResponse =
                api::call(channel, api::IMAGE_FS_INFO, api::ImageFsInfoRequest {})
                    .await
                    .map_err(|e| classify(&e))?;
            Answer::ImageFs(
                r.image_filesystems
                    .into_iter()
                    .map(|f| {
                        (
                            f.fs_id.map(|i| i.mountpoint).unwrap_or_default(),
                            f.used_bytes.map(|u| u.value).unwrap_or(0),
                        )
                    })
                    .collect(),
            )
        }
        Op::ContainerStats => {
            let id = stats.unwrap_or_default();
            let _: api::ContainerStatsResponse = api::call(
                channel,
                api::CONTAINER_STATS,
                api::ContainerStatsRequest {
                    container_id: id.clone(),
                },
            )
            .await
            .map_err(|e| classify(&e))?;
            Answer::Stats { id }
        }
    };
    Ok(answer)
}

/// Map a tonic status onto a fixed reason. A status made on our side from a
/// transport failure carries its cause as the source; one the runtime sent
/// has none.
pub fn classify(status: &tonic::Status) -> Reason {
    let mut source = status.source();
    let transport = source.is_some();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                ErrorKind::NotFound
                | ErrorKind::ConnectionRefused
                | ErrorKind::PermissionDenied
                | ErrorKind::AddrNotAvailable
                // The runtime went away mid-call.
                | ErrorKind::ConnectionReset
                | ErrorKind::BrokenPipe
                | ErrorKind::NotConnected => Reason::Connect,
                ErrorKind::TimedOut => Reason::Timeout,
                _ => Reason::Decode,
            };
        }
        source = e.source();
    }
    if transport {
        // Not HTTP/2 at all (HTTP/1 garbage), a protocol error, or a
        // connection closed before any answer.
        return Reason::Decode;
    }
    // tonic reports a body that is not the message as an internal status of its own.
    if status.code() == tonic::Code::Internal && status.message().contains("decode") {
        return Reason::Decode;
    }
    // An answer over MAX_ANSWER_BYTES, refused by tonic's decoder before it
    // is read: a bad answer, not a status the runtime sent.
    if status.code() == tonic::Code::OutOfRange && status.message().contains("message length too large") {
        return Reason::Decode;
    }
    Reason::GrpcStatus
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(parse("unix:///run/containerd/containerd.sock"), Ok("/run/containerd/containerd.sock".into()));
        assert_eq!(parse("/run/crio/crio.sock"), Ok("/run/crio/crio.sock".into()));
        assert!(parse("tcp://127.0.0.1:1").is_err());
        assert!(parse("npipe:////./pipe/x").is_err());
        assert!(parse("run/x.sock").is_err());
        let yaml = "kind: KubeletConfiguration\ncontainerRuntimeEndpoint: unix:///run/crio/crio.sock\n";
        assert_eq!(kubelet_endpoint(yaml).as_deref(), Some("/run/crio/crio.sock"));
        let json = r#"{"kind":"KubeletConfiguration","containerRuntimeEndpoint":"unix:///var/run/cri-dockerd.sock"}"#;
        assert_eq!(kubelet_endpoint(json).as_deref(), Some("/var/run/cri-dockerd.sock"));
        assert_eq!(kubelet_endpoint("kind: KubeletConfiguration\n"), None);
        assert_eq!(kubelet_endpoint(": : garbage"), None);
    }

    #[test]
    fn runtime_statuses_are_grpc_status() {
        assert_eq!(classify(&tonic::Status::unimplemented("no runtime.v1")), Reason::GrpcStatus);
        assert_eq!(classify(&tonic::Status::not_found("gone")), Reason::GrpcStatus);
        assert_eq!(
            classify(&tonic::Status::internal("failed to decode Protobuf message")),
            Reason::Decode
        );
        // tonic's own refusal of an answer over MAX_ANSWER_BYTES (its text in tonic 0.14).
        let oversized = tonic::Status::out_of_range(format!(
            "Error, decoded message length too large: found 104857600 bytes, the limit is: {} bytes",
            super::super::api::MAX_ANSWER_BYTES
        ));
        assert_eq!(classify(&oversized), Reason::Decode);
        assert_eq!(classify(&tonic::Status::out_of_range("page past the end")), Reason::GrpcStatus);
        let refused = tonic::Status::from_error(Box::new(std::io::Error::from(ErrorKind::ConnectionRefused)));
        assert_eq!(classify(&refused), Reason::Connect);
    }
}
