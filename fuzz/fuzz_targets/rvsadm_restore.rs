//! `rvsadm -R`: the restore tokenizer and per-line parser
//! (`src/bin/rvsadm/restore.rs`, compiled into this target by `rvs_fuzz`).
//!
//! Input: what `rvsadm -R` reads on stdin. Checks: nothing panics; an
//! accepted input becomes a batch that encodes as a frame; a refusal names a
//! line that exists.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs::ctl::proto::Request;
use rvs_fuzz::restore::parse_input;

rvs_fuzz::no_name_lookups!();

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    match parse_input("rvsadm", &input) {
        Ok(lines) => {
            let batch = Request::Batch(lines.into_iter().map(|l| l.request).collect());
            rvs::ctl::codec::encode_frame(&batch).expect("an accepted batch encodes");
        }
        Err(e) => {
            assert!(e.number >= 1 && e.number <= input.split('\n').count());
            assert!(!e.message().is_empty());
        }
    }
});
