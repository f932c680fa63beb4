//! The rvsadm command line (popt emulation, compatibility matrix, value
//! checks) exactly as `rvsadm` runs it: `src/bin/rvsadm/request.rs` compiled
//! into this target by `rvs_fuzz`.
//!
//! Input: argv[1..], each word ended by a NUL byte (argv[0] is "rvsadm").
//! Checks: nothing panics; an accepted command's request encodes as a frame;
//! a refusal has a message and a non-zero status.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvs_fuzz::request::{parse, Command};

rvs_fuzz::no_name_lookups!();

fuzz_target!(|data: &[u8]| {
    let argv = rvs_fuzz::argv_from_bytes(data);
    match parse(&argv) {
        Ok(Command::Run(inv)) => {
            if let Some(req) = inv.action.request() {
                rvs::ctl::codec::encode_frame(&req).expect("an accepted request encodes");
            }
        }
        Ok(_) => {}
        Err(e) => {
            assert!(!e.message.is_empty(), "empty error message");
            assert_ne!(e.status, 0, "error with exit status 0");
        }
    }
});
