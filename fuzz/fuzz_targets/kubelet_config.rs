//! The kubelet config reader (YAML/JSON parse, drop-in merge, eviction
//! thresholds, quantities and percentages) on arbitrary text: no input may
//! panic. A NUL byte separates the main file from its drop-ins. Run with
//! `cargo +nightly fuzz run kubelet_config`; the corpus in
//! fuzz/corpus/kubelet_config is replayed by `cargo test --lib kubelet::config`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_sentinel::collectors::kubelet::config;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let files: Vec<_> = text
            .split('\0')
            .enumerate()
            .map(|(i, t)| (std::path::PathBuf::from(format!("/fuzz/{i}.yaml")), t.to_string()))
            .collect();
        let _ = config::parse_merged(&files);
        for line in text.lines() {
            let _ = config::parse_quantity(line);
        }
    }
});
