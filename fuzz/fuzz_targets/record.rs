//! The /dev/kmsg record parser, the reason table and the line assembler on
//! arbitrary bytes: no input may panic. Run with
//! `cargo +nightly fuzz run record` (from the repository root); the corpus in
//! fuzz/corpus/record is replayed by `cargo test --lib kernel::record`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node_sentinel::collectors::kernel::record;

fuzz_target!(|data: &[u8]| {
    let mut assembler = record::Assembler::default();
    // One input may hold several records, as consecutive reads would.
    for raw in data.split(|b| *b == 0) {
        if let Ok(rec) = record::parse(raw) {
            let _ = record::classify(&rec.message);
            for whole in assembler.push(rec) {
                let _ = record::classify(&whole.message);
            }
        }
    }
    if let Some(rest) = assembler.flush() {
        let _ = record::classify(&rest.message);
    }
});
