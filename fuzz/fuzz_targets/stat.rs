//! The /proc/PID/stat, /proc/stat btime and /proc/PID/schedstat parsers on
//! arbitrary bytes: no input may panic. Run with
//! `cargo +nightly fuzz run stat`; the corpus in fuzz/corpus/stat is
//! replayed by `cargo test --lib host::procfs`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_sentinel::host::procfs;

fuzz_target!(|data: &[u8]| {
    let _ = procfs::parse_stat(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = procfs::parse_btime(text);
        let _ = procfs::parse_schedstat_runs(text);
    }
});
