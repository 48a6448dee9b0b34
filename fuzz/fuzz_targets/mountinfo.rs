//! The mountinfo parser on arbitrary text: no input may panic. Run with
//! `cargo +nightly fuzz run mountinfo`; the corpus in fuzz/corpus/mountinfo
//! is replayed by `cargo test --lib host::mounts`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_sentinel::host::mounts;

fuzz_target!(|data: &[u8]| {
    // The reader hands the parser a UTF-8 string (read_to_string).
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = mounts::parse(text);
    }
});
