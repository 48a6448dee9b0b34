//! The --web.config.file parser and validator on arbitrary text: no input
//! may panic. Run with `cargo +nightly fuzz run web_config`; the corpus in
//! fuzz/corpus/web_config is replayed by `cargo test --lib web_config`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_sentinel::web_config::WebConfig;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        // Relative certificate paths resolve against a directory that does
        // not exist, so the parse never depends on this machine's files.
        let _ = WebConfig::parse(text, std::path::Path::new("/nonexistent/fuzz"));
    }
});
