//! Docker API answers decoded into the bollard types the docker collector
//! reads (containers list, inspect, info, version), as bollard decodes them
//! (serde_json from the body bytes): no input may panic. Run with
//! `cargo +nightly fuzz run docker_json`; the corpus in
//! fuzz/corpus/docker_json is replayed by `cargo test --lib collectors::docker`.
#![no_main]

use bollard::models::{ContainerInspectResponse, ContainerSummary, SystemInfo, SystemVersion};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<Vec<ContainerSummary>>(data);
    let _ = serde_json::from_slice::<ContainerInspectResponse>(data);
    let _ = serde_json::from_slice::<SystemInfo>(data);
    let _ = serde_json::from_slice::<SystemVersion>(data);
});
