//! The flag value parsers (durations, listen addresses, paths, log levels)
//! and Kubernetes quantities on arbitrary text, one value a line: no input
//! may panic. Run with `cargo +nightly fuzz run values`; the corpus in
//! fuzz/corpus/values is replayed by `cargo test --lib values`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_sentinel::collectors::kubelet::config::parse_quantity;
use node_sentinel::values;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for line in text.lines() {
            let _ = values::parse_duration(line);
            let _ = values::parse_positive_duration(line);
            let _ = values::parse_listen_address(line);
            let _ = values::parse_telemetry_path(line);
            let _ = values::parse_log_level(line);
            let _ = parse_quantity(line);
        }
    }
});
