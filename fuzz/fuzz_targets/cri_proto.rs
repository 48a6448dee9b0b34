//! CRI answers decoded (prost) into the response messages the CRI collector
//! reads: no input may panic. Run with `cargo +nightly fuzz run cri_proto`;
//! the corpus in fuzz/corpus/cri_proto is replayed by
//! `cargo test --lib collectors::cri`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_sentinel::collectors::cri::api;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let _ = api::VersionResponse::decode(data);
    let _ = api::StatusResponse::decode(data);
    let _ = api::ListPodSandboxResponse::decode(data);
    let _ = api::ListContainersResponse::decode(data);
    let _ = api::ContainerStatsResponse::decode(data);
    let _ = api::ImageFsInfoResponse::decode(data);
});
