//! The --collector.logs.path parser (GROUP=GLOB) and the component matcher
//! on arbitrary text: no input may panic or take exponential time. The first
//! line is the flag value, each further line a file name to match. Run with
//! `cargo +nightly fuzz run glob`; the corpus in fuzz/corpus/glob is
//! replayed by `cargo test --lib logs::glob`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_sentinel::collectors::logs::glob;

fuzz_target!(|data: &[u8]| {
    let mut lines = data.split(|b| *b == b'\n');
    let Some(flag) = lines.next().and_then(|l| std::str::from_utf8(l).ok()) else {
        return;
    };
    let Ok(parsed) = glob::parse_group_glob(flag) else {
        return;
    };
    for name in lines {
        for part in &parsed.glob.parts {
            if let glob::Part::Pattern(p) = part {
                let _ = glob::matches(p, name);
            }
        }
    }
});
