//! The few CRI messages (`runtime.v1`, k8s.io/cri-api's `api.proto`) the
//! collector reads, declared with prost's derive so a build needs no
//! `protoc`. Field numbers are the proto's; fields we never read are left
//! out (protobuf skips unknown fields), and requests carry no filters.
//!
//! The client is a plain unary caller over one tonic channel: the calls are
//! read-only, each with its own gRPC path.

use std::collections::HashMap;

use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;

#[derive(Clone, PartialEq, prost::Message)]
pub struct VersionRequest {
    #[prost(string, tag = "1")]
    pub version: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct VersionResponse {
    #[prost(string, tag = "1")]
    pub version: String,
    #[prost(string, tag = "2")]
    pub runtime_name: String,
    #[prost(string, tag = "3")]
    pub runtime_version: String,
    #[prost(string, tag = "4")]
    pub runtime_api_version: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusRequest {
    #[prost(bool, tag = "1")]
    pub verbose: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusResponse {
    #[prost(message, optional, tag = "1")]
    pub status: Option<RuntimeStatus>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RuntimeStatus {
    #[prost(message, repeated, tag = "1")]
    pub conditions: Vec<RuntimeCondition>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RuntimeCondition {
    #[prost(string, tag = "1")]
    pub r#type: String,
    #[prost(bool, tag = "2")]
    pub status: bool,
    #[prost(string, tag = "3")]
    pub reason: String,
    #[prost(string, tag = "4")]
    pub message: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListPodSandboxRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListPodSandboxResponse {
    #[prost(message, repeated, tag = "1")]
    pub items: Vec<PodSandbox>,
}

/// `PodSandboxState`: SANDBOX_READY = 0, SANDBOX_NOTREADY = 1.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PodSandbox {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(int32, tag = "3")]
    pub state: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListContainersRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ListContainersResponse {
    #[prost(message, repeated, tag = "1")]
    pub containers: Vec<Container>,
}

/// `ContainerState`: CREATED = 0, RUNNING = 1, EXITED = 2, UNKNOWN = 3.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Container {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub pod_sandbox_id: String,
    #[prost(message, optional, tag = "3")]
    pub metadata: Option<ContainerMetadata>,
    #[prost(int32, tag = "6")]
    pub state: i32,
    #[prost(map = "string, string", tag = "8")]
    pub labels: HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerMetadata {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(uint32, tag = "2")]
    pub attempt: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerStatsRequest {
    #[prost(string, tag = "1")]
    pub container_id: String,
}

/// Only that it answers matters: the call reaches the container's shim.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ContainerStatsResponse {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ImageFsInfoRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ImageFsInfoResponse {
    #[prost(message, repeated, tag = "1")]
    pub image_filesystems: Vec<FilesystemUsage>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FilesystemUsage {
    #[prost(message, optional, tag = "2")]
    pub fs_id: Option<FilesystemIdentifier>,
    #[prost(message, optional, tag = "3")]
    pub used_bytes: Option<UInt64Value>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct FilesystemIdentifier {
    #[prost(string, tag = "1")]
    pub mountpoint: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UInt64Value {
    #[prost(uint64, tag = "1")]
    pub value: u64,
}

/// The largest answer decoded, as the kubelet's own CRI client allows
/// (16 MiB): tonic reads the length prefix first and refuses a larger message
/// before buffering it, so a lying runtime costs no more memory than this.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// A unary call of `method` (`/runtime.v1.RuntimeService/Version`...).
pub async fn call<Req, Resp>(
    channel: &Channel,
    method: &'static str,
    request: Req,
) -> Result<Resp, tonic::Status>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    let mut grpc =
        tonic::client::Grpc::new(channel.clone()).max_decoding_message_size(MAX_ANSWER_BYTES);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::from_error(e.into()))?;
    let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
    let path = PathAndQuery::from_static(method);
    grpc.unary(tonic::Request::new(request), path, codec)
        .await
        .map(tonic::Response::into_inner)
}

pub const VERSION: &str = "/runtime.v1.RuntimeService/Version";
pub const STATUS: &str = "/runtime.v1.RuntimeService/Status";
pub const LIST_POD_SANDBOX: &str = "/runtime.v1.RuntimeService/ListPodSandbox";
pub const LIST_CONTAINERS: &str = "/runtime.v1.RuntimeService/ListContainers";
pub const CONTAINER_STATS: &str = "/runtime.v1.RuntimeService/ContainerStats";
pub const IMAGE_FS_INFO: &str = "/runtime.v1.ImageService/ImageFsInfo";

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// The fuzz target's corpus (fuzz/corpus/cri_proto, grown by
    /// `cargo +nightly fuzz run cri_proto`), replayed the way the target runs it.
    #[test]
    fn the_fuzz_corpus_replays_without_a_panic() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/cri_proto");
        let mut replayed = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            let _ = VersionResponse::decode(data.as_slice());
            let _ = StatusResponse::decode(data.as_slice());
            let _ = ListPodSandboxResponse::decode(data.as_slice());
            let _ = ListContainersResponse::decode(data.as_slice());
            let _ = ContainerStatsResponse::decode(data.as_slice());
            let _ = ImageFsInfoResponse::decode(data.as_slice());
            replayed += 1;
        }
        assert!(replayed >= 5, "{replayed} corpus files in {}", dir.display());
        // The seed "containers" is a containerd-shaped answer, encoded by hand.
        let seed = std::fs::read(dir.join("containers")).unwrap();
        let list = ListContainersResponse::decode(seed.as_slice()).unwrap();
        assert_eq!(list.containers.len(), 2);
        let web = &list.containers[0];
        assert_eq!(web.metadata.as_ref().map(|m| (m.name.as_str(), m.attempt)), Some(("web", 3)));
        assert_eq!(web.labels.get("io.kubernetes.pod.namespace").map(String::as_str), Some("default"));
    }
}
